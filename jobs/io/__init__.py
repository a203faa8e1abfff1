"""The I/O of the jobs, apart from what the jobs compute.

- `output`: every path a job touches on the driver (Hadoop's FileSystem through the
  session: local, file://, hdfs://, s3a://, gs://), the one atomic-output scheme and the
  never-lose-data rules (no output overlaps an input, replace only our own outputs, the
  old output stays until the new one is complete), reports and sidecars.
- `laion`: the reader of LAION parquet parts (`read_laion`) and their `laion_index`.
- `metadata`: the authors' published LAIONet metadata (the LAION index as pandas index).
- `tables`: jsonl / TSV / parquet inputs read by column; class-frequency files and plots.
"""

"""Writing a `mapInArrow` job's output: our parquet sink against what Spark offers.

    .venv/bin/python bench/bench_parquet_sink.py [--rows 1000000] [--parts 4] [--master local[2]] [--repeat 3]

The job is `curate laionet label` on generated LAION parts (read, match, write: the job the
sink was made for). Only its last step changes, side by side in one process, alternating
rounds so a noisy machine slows all alike, best round kept:

- sink: `jobs.io.output.write_parquet_in_tasks` on a local path (the Python workers write
  the parquet with pyarrow, `udfs/parquet_sink.py`; the driver commits one file per
  partition);
- spark: Spark's own parquet writer (`mapInArrow(...).write.parquet`: the rows go back to
  the JVM, parquet-mr encodes them; what the job does for hdfs:// and s3a://);
- datasource: Spark 4's Python data source writer (`DataSourceArrowWriter`: the JVM hands
  Arrow batches to a Python writer that writes them with pyarrow; commit and abort by
  Spark).

Prints each variant's rows/s, its ratio to the fastest, and checks that all three wrote
the same rows. The issue's rule: keep the simplest within 10 % of the best.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))


def register_datasource(spark) -> str:
    """A minimal Python data source that writes each task's Arrow batches to one parquet
    file under `path/_tmp`, moved into place by Spark's commit (deleted by abort)."""
    from dataclasses import dataclass

    from pyspark.sql.datasource import DataSource, DataSourceArrowWriter, WriterCommitMessage

    @dataclass
    class Written(WriterCommitMessage):
        path: str
        partition: int

    class ArrowParquetWriter(DataSourceArrowWriter):
        def __init__(self, path: str):
            self.path = path

        def write(self, iterator):
            import pyarrow.parquet as pq
            from pyspark import TaskContext

            partition = TaskContext.get().partitionId()
            tmp = os.path.join(self.path, "_tmp")
            os.makedirs(tmp, exist_ok=True)
            target = os.path.join(tmp, f"part-{partition:05d}-{uuid.uuid4().hex}.parquet")
            writer = None
            for batch in iterator:
                if writer is None:
                    writer = pq.ParquetWriter(target, batch.schema)
                writer.write_batch(batch)
            if writer is None:
                return Written("", partition)
            writer.close()
            return Written(target, partition)

        def commit(self, messages):
            for m in messages:
                if m is not None and m.path:
                    os.replace(m.path, os.path.join(self.path, f"part-{m.partition:05d}.parquet"))
            shutil.rmtree(os.path.join(self.path, "_tmp"), ignore_errors=True)

        def abort(self, messages):
            shutil.rmtree(os.path.join(self.path, "_tmp"), ignore_errors=True)

    class ArrowParquet(DataSource):
        @classmethod
        def name(cls):
            return "bench_arrow_parquet"

        def writer(self, schema, overwrite):
            return ArrowParquetWriter(self.options["path"])

    spark.dataSource.register(ArrowParquet)
    return ArrowParquet.name()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import pandas as pd

    from bench_label import ensure_data
    from jobs.io import output
    from jobs.laionet_label import MatchConfig, run_label
    from jobs.framework.session import create_session
    from udfs.parquet_sink import plain

    work = tempfile.mkdtemp(prefix="bench-sink-")
    sink = output.write_parquet_in_tasks

    def spark_writer(spark, df, batch_function, schema, out, row_group_rows=None):
        df.mapInArrow(plain(batch_function), schema).write.parquet(out)

    try:
        data = ensure_data(os.path.join(work, "laion"), args.rows, args.parts, args.seed)
        spark = create_session(args.master, app_name="bench-parquet-sink")
        fmt = register_datasource(spark)

        def datasource_writer(spark, df, batch_function, schema, out, row_group_rows=None):
            df.mapInArrow(plain(batch_function), schema).write.format(fmt).mode("append").save(out)

        variants = {"sink": sink, "spark": spark_writer, "datasource": datasource_writer}
        times = {name: [] for name in variants}
        outs = {}
        for i in range(args.repeat + 1):  # round 0 warms the JVM and the Python workers
            for name, writer in variants.items():
                out = os.path.join(work, f"{name}{i}")
                output.write_parquet_in_tasks = writer
                try:
                    t0 = time.perf_counter()
                    run_label(spark, MatchConfig(laion=data, out=out))
                    elapsed = time.perf_counter() - t0
                finally:
                    output.write_parquet_in_tasks = sink
                if i:
                    times[name].append(elapsed)
                outs[name] = out
        spark.stop()

        def rows(path):
            return (pd.read_parquet(path, columns=["laion_index", "wnid", "lemma"])
                    .astype({"wnid": str, "lemma": str}).sort_values(["laion_index", "lemma"]).reset_index(drop=True))

        reference = rows(outs["sink"])
        same = {name: rows(path).equals(reference) for name, path in outs.items()}
        best = min(min(t) for t in times.values())
        print(f"\nparquet sink benchmark: label job on {args.rows:,} rows in {args.parts} parts, "
              f"{len(reference):,} output rows, master {args.master}, load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} cores")
        for name, t in times.items():
            print(f"  {name:11s} {args.rows / min(t):12,.0f} rows/s  best {min(t):6.2f} s  "
                  f"{min(t) / best:5.2f}x the fastest  same rows: {same[name]}   "
                  f"runs {', '.join(f'{x:.2f}' for x in t)}")
        return 0 if all(same.values()) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

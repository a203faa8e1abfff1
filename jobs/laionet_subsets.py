"""`curate laionet subsets`: LAIONet subsets by similarity threshold and scale.

Reads the success metadata of a LAIONet download (`arrange`'s `<name>_success<N>.parquet`:
LAION columns + `laion_index`, `wnid`, the similarity column), decides which rows to keep
with `curation.laionet_subsets.select_subset` (threshold, `--frac` or exact `--n`, class
preservation, top-10 trimming; seeded by `laion_index`, or with `--sampling original`
`select_subset_original`: pandas' `sample` over the rows in file order, as the original), and writes

- `<out-dir>/laionet_thresh<t>[_frac<f>]_<N>.tsv`: `filepath<TAB>label<TAB>caption`, rows in
  `laion_index` order, filepath `<images-root>/<wnid>/<laion_index>.jpg`, caption = `TEXT`
  with \\r \\n \\t replaced by spaces;
- `<freq-dir>/class_frequency_laionet_thresh<t>[_frac<f>|_n<n>]_ori.txt` and its plot.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from curation.errors import ConfigError, InputError
from curation.report import StageReport
from curation.sampling import SAMPLING_MODES
from jobs.framework.base import Job, main_for
from jobs.framework.config import check_roots, opt

SIMILARITY_COL = "text_to_name_def_wnid_similarity"


@dataclass
class SubsetsConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"df": "input", "out_dir": "output_dir", "freq_dir": "output_dir"}
    df: str = opt(None, "LAIONet success metadata (parquet file, folder or glob; laion_index as a "
                        "column or as the pandas index of a published file)", required=True)
    out_dir: str = opt(None, "folder for the TSV", required=True)
    freq_dir: Optional[str] = opt(None, "folder for the class-frequency file and plot [default: --out-dir]")
    thresh: float = opt(0.7, "keep rows with similarity >= thresh (in [-1, 1])")
    frac: float = opt(1.0, "fraction of the thresholded rows to sample, in (0, 1]")
    n: Optional[int] = opt(None, "exact number of rows to keep (instead of --frac)")
    seed: int = opt(42, "random seed")
    sampling: str = opt("keyed", "keyed: samples are hashes of laion_index and --seed (any row order); original: "
                        "the original script's DataFrame.sample(frac|n, random_state=seed) over the rows in file "
                        "order (files in path order)", choices=SAMPLING_MODES)
    images_root: str = opt("../datasets/laionet", "image folder written into filepath (<root>/<wnid>/<laion_index>.jpg)")
    similarity_col: str = opt(SIMILARITY_COL, "similarity column to threshold")

    def validate(self):
        if not -1.0 <= self.thresh <= 1.0:
            raise ConfigError("thresh", f"must be a cosine similarity in [-1, 1], got {self.thresh}")
        if not 0.0 < self.frac <= 1.0:
            raise ConfigError("frac", f"must be in (0, 1], got {self.frac}")
        if self.n is not None and self.n < 1:
            raise ConfigError("n", f"must be at least 1, got {self.n}")
        if self.n is not None and self.frac != 1.0:
            raise ConfigError("n", "give --frac or --n, not both")
        check_roots(self, "images_root")


def _similarity(meta, column: str):
    """The similarity column as stored when it is a float column (a float32 column is then
    compared with the threshold in float32, as pandas compares it), else cast to double."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType

    col = F.col(column)
    return col if isinstance(meta.schema[column].dataType, (FloatType, DoubleType)) else col.cast("double")


def _file_order(meta, path: str):
    """Columns `_file` (the file's number in path order) and `_row` (the row's index in its
    file) that order the rows as pandas' `read_parquet` reads them, from the scan's
    `_metadata` (so they do not depend on how Spark splits the files into tasks)."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    try:
        files = sorted(r[0] for r in meta.select(F.col("_metadata.file_path")).distinct().collect())
    except AnalysisException as e:
        raise InputError(f"success metadata {path}: --sampling original needs the rows' file positions, "
                         f"which this input does not give ({str(e).splitlines()[0]})") from None
    number = F.array_position(F.array(*[F.lit(f) for f in files]), F.col("_metadata.file_path"))
    return [number.alias("_file"), F.col("_metadata.row_index").alias("_row")]


def run_subsets(spark, cfg: SubsetsConfig):
    import pandas as pd
    from pyspark.sql import functions as F

    from curation.laionet_subsets import output_names, select_subset
    from jobs.io import output
    from jobs.classes import wnid_label
    from jobs.io.tables import write_frequency_and_plot

    from jobs.io.metadata import read_metadata

    meta = read_metadata(spark, cfg.df, "success metadata")
    missing = [c for c in ("laion_index", "wnid", "TEXT", cfg.similarity_col) if c not in meta.columns]
    if missing:
        raise InputError(f"success metadata {cfg.df} has no column {', '.join(map(repr, missing))}; "
                         f"its columns: {', '.join(meta.columns)}")
    meta = meta.withColumn("label", wnid_label(F.col("wnid")))
    decide = meta.select("laion_index", "label", _similarity(meta, cfg.similarity_col).alias("similarity"),
                         *(_file_order(meta, cfg.df) if cfg.sampling == "original" else ()))
    try:
        if cfg.sampling == "original":
            from curation.concepts import wnids
            from curation.laionet_subsets import select_subset_original

            rows = decide.toPandas().sort_values(["_file", "_row"], kind="stable").reset_index(drop=True)
            selection = select_subset_original(rows, cfg.thresh, cfg.frac, cfg.n, cfg.seed, wnids=wnids())
        else:
            selection = select_subset(decide.toPandas(), cfg.thresh, cfg.frac, cfg.n, cfg.seed)
    except InputError as e:
        raise InputError(f"success metadata {cfg.df}: {e}") from None

    keep = spark.createDataFrame(pd.DataFrame({"laion_index": selection.laion_index}), "laion_index long")
    root = cfg.images_root.rstrip("/")
    rows = (meta.join(keep, "laion_index")
            .select("laion_index",
                    F.concat_ws("/", F.lit(root), "wnid", F.concat(F.col("laion_index").cast("string"), F.lit(".jpg")))
                    .alias("filepath"),
                    "label",
                    F.translate(F.coalesce("TEXT", F.lit("")), "\r\n\t", "   ").alias("caption")))
    tsv_name, freq_name = output_names(cfg.thresh, cfg.frac, cfg.n, len(selection.laion_index))
    tsv_path = f"{cfg.out_dir.rstrip('/')}/{tsv_name}"
    output.write_single_csv(spark, rows, tsv_path, order_by=["laion_index"], order_only=["laion_index"])

    freq_path, png_path = write_frequency_and_plot(
        spark, selection.counts_by_label(), f"{(cfg.freq_dir or cfg.out_dir).rstrip('/')}/{freq_name}",
        title=tsv_name)
    report = StageReport("laionet subsets", read=selection.read, kept=len(selection.laion_index),
                         dropped=dict(selection.dropped), info={"sampling": cfg.sampling})
    report.info.update({"out": tsv_path, "freq_file": freq_path, "plot": png_path,
                        "above_threshold": selection.above_threshold, "sampled": selection.sampled,
                        "restored_classes": len(selection.restored),
                        "trimmed_from_classes": selection.trimmed_from})
    output.finish_file(spark, tsv_path, cfg, report)
    print(report.summary())
    return report


JOB = Job(command=("laionet", "subsets"), config=SubsetsConfig, run=run_subsets,
          help="LAIONet subsets by similarity threshold and scale (--frac / --n), as TSV + class frequency")

if __name__ == "__main__":
    main_for(JOB)

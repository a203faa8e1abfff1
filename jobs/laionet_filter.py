"""`curate laionet filter`: keep rows similar enough to their synset (step 4): the LAIONet metadata.

Score once, filter many times: this stage only thresholds the similarity column written
by `curate laionet similarity`, so trying another threshold costs one cheap pass.

Rules of the original (`sample_laion_from_most_similars.py`):
- keep `similarity > threshold` (strict; `--inclusive` keeps `>=`); a null score is dropped;
- `--remove-nsfw` drops every row whose `NSFW` is not exactly `UNLIKELY` (null included),
  before thresholding.
Outputs: the metadata parquet (same columns as the input, ordered by `laion_index`) and a
class-frequency file `classname<TAB>count` (1000 lines in label order, no header).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from curation.errors import ConfigError, InputError
from curation.frequency import frequency_text
from curation.report import StageReport
from jobs.framework.base import Job, main_for
from jobs.framework.config import opt
from jobs.io.output import atomic_dir, finish_file, require_input, write_text

SAFE_NSFW = "UNLIKELY"


@dataclass
class FilterConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"similarity": "input", "out": "output", "frequency": "output"}
    similarity: str = opt(None, "similarity parquet (output of `curate laionet similarity`)", required=True)
    out: str = opt(None, "output directory of the LAIONet metadata parquet", required=True)
    threshold: float = opt(0.82, "minimum caption-to-synset similarity (0.82 in the LAIONet paper, "
                                 "0.7 in the long-tail study)")
    inclusive: bool = opt(False, "keep similarity >= threshold instead of the original's strict >")
    remove_nsfw: bool = opt(False, "drop rows whose NSFW tag is not UNLIKELY")
    similarity_column: Optional[str] = opt(None, "score column (default: the one "
                                                 "text_to_*_similarity column of the input)")
    frequency: Optional[str] = opt(None, "class-frequency file (default: <out>.class_frequency.txt)")

    def validate(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ConfigError("threshold", f"a cosine similarity threshold lies in [-1, 1], got {self.threshold}")

    @property
    def frequency_path(self) -> str:
        return self.frequency or self.out.rstrip("/") + ".class_frequency.txt"


def find_similarity_column(df, path: str, wanted: Optional[str]) -> str:
    candidates = [c for c in df.columns if c.startswith("text_to_") and c.endswith("_similarity")]
    if wanted:
        if wanted not in df.columns:
            raise InputError(f"{path}: column '{wanted}' is missing (score columns: {', '.join(candidates) or 'none'})")
        return wanted
    if len(candidates) != 1:
        raise InputError(f"{path}: expected one text_to_*_similarity column, found "
                         f"{', '.join(candidates) or 'none'}; set --similarity-column")
    return candidates[0]


def with_drop_reason(df, sim_col: str, cfg: FilterConfig):
    """Add `_drop`: why a row is not LAIONet (`nsfw`, `no_similarity`, `below_threshold`)."""
    from pyspark.sql import functions as F

    from pyspark.sql.types import FloatType

    sim = F.col(sim_col)
    # a float32 score is compared with the threshold in float32, as the original's pandas
    # (numpy) compares a float32 column with a Python float; Spark would widen to double
    threshold = F.lit(cfg.threshold)
    if isinstance(df.schema[sim_col].dataType, FloatType):
        threshold = threshold.cast("float")
    passes = sim >= threshold if cfg.inclusive else sim > threshold
    rules = [(F.col("NSFW").isNull() | (F.col("NSFW") != SAFE_NSFW), "nsfw")] if cfg.remove_nsfw else []
    rules += [(sim.isNull() | F.isnan(sim), "no_similarity"), (~passes, "below_threshold")]
    reason = None
    for condition, name in rules:  # the first rule that applies names the drop
        reason = (F if reason is None else reason).when(condition, F.lit(name))
    return df.withColumn("_drop", reason)


def run(spark, cfg: FilterConfig) -> StageReport:
    from curation.concepts import classnames, wnid_to_label

    require_input(spark, cfg.similarity, "similarity output")
    df = spark.read.parquet(cfg.similarity)
    for col in ("wnid", "NSFW", "laion_index"):
        if col not in df.columns:
            raise InputError(f"{cfg.similarity}: column '{col}' is missing")
    sim_col = find_similarity_column(df, cfg.similarity, cfg.similarity_column)
    marked = with_drop_reason(df, sim_col, cfg).cache()
    try:
        counts = {r["_drop"]: r["count"] for r in marked.groupBy("_drop").count().collect()}
        per_wnid = {r["wnid"]: r["count"] for r in marked.filter("_drop IS NULL").groupBy("wnid").count().collect()}
        report = StageReport("laionet filter", read=sum(counts.values()), kept=counts.pop(None, 0))
        for reason, n in counts.items():
            report.drop(reason, n)
        labels = wnid_to_label()
        unknown = sorted(set(per_wnid) - set(labels))
        if unknown:
            raise InputError(f"{cfg.similarity}: wnids outside the 1000 ImageNet classes: {', '.join(unknown[:5])}")
        freq = frequency_text({labels[w]: n for w, n in per_wnid.items()}, classnames())
        report.info.update({"output": cfg.out, "frequency": cfg.frequency_path, "similarity_column": sim_col,
                            "threshold": cfg.threshold, "comparison": ">=" if cfg.inclusive else ">",
                            "classes_with_rows": len(per_wnid)})
        with atomic_dir(spark, cfg.out, cfg, report) as tmp:
            marked.filter("_drop IS NULL").drop("_drop").orderBy("laion_index").write.parquet(tmp)
        write_text(spark, cfg.frequency_path, freq)
        finish_file(spark, cfg.frequency_path, cfg, report)
    finally:
        marked.unpersist()
    print(report.summary())
    return report


JOB = Job(command=("laionet", "filter"), config=FilterConfig, run=run,
          help="threshold the caption-to-synset similarity: LAIONet metadata + class frequency")

if __name__ == "__main__":
    main_for(JOB)

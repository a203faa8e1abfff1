"""`curate laionet label` and `curate laionet subset`: LAIONet steps 1 and 2 on Spark.

- label: every lemma of the lemma map found in every LAION caption -> parquet
  `laion_index, wnid, lemma` (one row per distinct (caption, lemma) pair).
- subset: the LAION rows with at least one match, all columns, `laion_index`, and the
  sorted distinct `wnids` and `lemmas` found in the caption.

Both stream the parts once (no shuffle): Spark reads the parquet parts, `mapInArrow`
matches each Arrow batch with an Aho-Corasick automaton cached per Python worker
(`udfs.matcher`), and the Python workers write the result with pyarrow
(`jobs.io.output.write_parquet_in_tasks`; Spark's writer for non-local outputs). The
caption counts of the report come from an accumulator filled by the matcher in the same pass.

The LAION parts are read by `jobs.io.laion.read_laion`, the reader every job uses.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Dict

from curation.concepts import LEMMA_MAP_HELP, LEMMA_MAPS, check_lemma_map
from curation.errors import InputError
from curation.laion import INDEX_COLUMN, TEXT_COLUMN
from curation.matching import MODES
from curation.report import StageReport
from jobs.framework.base import Job, execute
from jobs.framework.config import opt
from jobs.io import output
from jobs.io.laion import LaionParts, read_laion, spark_read_errors


# ---------------------------------------------------------------- the jobs
@dataclass
class MatchConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"laion": "input", "lemma_map": "input", "out": "output"}
    #: values of an input that name a packaged resource, not a path
    PATH_NAMES = {"lemma_map": LEMMA_MAPS}
    laion: str = opt(None, "LAION parquet parts: a directory, glob, file or URI", required=True)
    out: str = opt(None, "output parquet dataset (directory)", required=True)
    matching: str = opt("laionet", "lemma matching rules: laionet (the original's, exact) or "
                        "normalized (NFKC, case- and punctuation-insensitive)", choices=MODES)
    lemma_map: str = opt("standard", LEMMA_MAP_HELP)
    skip_bad_files: bool = opt(False, "skip unreadable parquet files with a warning (counted in the report)")

    def validate(self) -> None:
        check_lemma_map(self.lemma_map)


def _lemma_map(spark, cfg: MatchConfig) -> Dict[str, str]:
    from curation.concepts import LEMMA_MAPS, load_lemma_map

    if cfg.lemma_map not in LEMMA_MAPS:  # a file: read like every path (local, hdfs://, s3a://, ...)
        output.require_input(spark, cfg.lemma_map, "lemma map (--lemma-map)")
    lemma_map = load_lemma_map(cfg.lemma_map, read_text=lambda path: output.read_text(spark, path))
    if not lemma_map:
        raise InputError(f"lemma map {cfg.lemma_map} is empty")
    return lemma_map


def _caption_counter(spark):
    from udfs.matcher import CaptionCounts

    return spark.sparkContext.accumulator({}, CaptionCounts())


def _fill_caption_report(report: StageReport, counts: Dict[str, int], cfg: MatchConfig,
                         laion: LaionParts, lemma_map: Dict[str, str]) -> None:
    """read = matched + null + empty + no match (captions, not (caption, lemma) pairs)."""
    read, matched = counts.get("read", 0), counts.get("matched", 0)
    report.read, report.kept = read, matched
    report.drop("null_caption", counts.get("null_caption", 0))
    report.drop("empty_caption", counts.get("empty_caption", 0))
    report.drop("no_match", read - matched - report.n_dropped)
    report.info.update({"pairs": counts.get("pairs", 0), "matching": cfg.matching, "lemma_map": cfg.lemma_map,
                        "lemmas": len(lemma_map), "wnids": len(set(lemma_map.values()))})
    laion.describe(report)


def run_label(spark, cfg: MatchConfig) -> StageReport:
    from udfs.matcher import label_batches, padded_text_column

    lemma_map = _lemma_map(spark, cfg)
    laion = read_laion(spark, cfg.laion, cfg.skip_bad_files, columns=[TEXT_COLUMN])
    padded = padded_text_column(cfg.matching)  # laionet mode: the JVM pads the captions
    captions = laion.df if padded is None else laion.df.select(INDEX_COLUMN, padded)
    counts = _caption_counter(spark)
    report = StageReport("laionet label")
    with output.atomic_dir(spark, cfg.out, cfg, report) as tmp:
        with spark_read_errors():
            output.write_parquet_in_tasks(spark, captions,
                                          label_batches(lemma_map, cfg.matching, counts),
                                          f"{INDEX_COLUMN} long, wnid string, lemma string", tmp)
        _fill_caption_report(report, counts.value, cfg, laion, lemma_map)
    print(report.summary() + f"; {report.info['pairs']:,} (caption, lemma) pairs -> {cfg.out}")
    return report


def run_subset(spark, cfg: MatchConfig) -> StageReport:
    from udfs.matcher import subset_batches

    lemma_map = _lemma_map(spark, cfg)
    laion = read_laion(spark, cfg.laion, cfg.skip_bad_files)
    counts = _caption_counter(spark)
    schema = (", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in laion.df.schema.fields)
              + ", wnids array<string>, lemmas array<string>")
    report = StageReport("laionet subset")
    with output.atomic_dir(spark, cfg.out, cfg, report) as tmp:
        with spark_read_errors():
            output.write_parquet_in_tasks(spark, laion.df, subset_batches(lemma_map, cfg.matching, counts),
                                          schema, tmp)
        _fill_caption_report(report, counts.value, cfg, laion, lemma_map)
    print(report.summary() + f" -> {cfg.out}")
    return report


JOBS = [
    Job(command=("laionet", "label"), config=MatchConfig, run=run_label,
        help="Find the lemmas of a lemma map in LAION captions (LAIONet step 1)"),
    Job(command=("laionet", "subset"), config=MatchConfig, run=run_subset,
        help="The LAION rows matched to at least one lemma, with their wnids and lemmas (LAIONet step 2)"),
]

if __name__ == "__main__":
    # spark-submit jobs/laionet_label.py {label|subset} [options]
    by_name = {job.command[-1]: job for job in JOBS}
    if len(sys.argv) < 2 or sys.argv[1] not in by_name:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(by_name)}}} [options]")
    sys.exit(execute(by_name[sys.argv[1]], sys.argv[2:], prog=f"{sys.argv[0]} {sys.argv[1]}"))

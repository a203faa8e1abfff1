"""`curate laionet arrange`: webdataset shards -> `<target>/<wnid>/<laion_index>.jpg` (step 6).

One Spark task per tar (`udfs/arrange.py`) writes the images and returns a compact list of
its samples (laion_index and a one-byte status each); the driver decides with numpy what
happened to every metadata row (`curation.arrange.row_outcomes`), and one more Spark pass
writes the metadata of the rows that have an image to `<target-df stem>_success<N>.parquet`,
the seed's naming, with a report of what happened to every other row (not downloaded, not
an image, decompression bomb, invalid wnid, ...); the same config and report also sit
beside the tree (`<target>.report.json`). Re-running is safe: existing images are kept, a
crashed run's partial files are removed, and the success metadata comes out the same.

Spark jobs: the metadata index (1), the tasks (1), the success metadata (2: the broadcast
of the kept ids and the write), so the fixed cost stays small next to the tasks.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from curation.arrange import DEFAULT_MAX_PIXELS, WnidIndex, row_outcomes, status_counts, success_name
from curation.errors import ConfigError, InputError
from curation.report import StageReport
from jobs.framework.base import Job, main_for
from jobs.framework.config import opt
from jobs.io.output import atomic_dir, finish_file, glob, local_path, require_input

@dataclass
class ArrangeConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"shards": "input", "metadata": "input", "target": "output_dir"}
    shards: str = opt(None, "img2dataset output folder (its *.tar files are read) or a glob of tars",
                      required=True)
    metadata: str = opt(None, "the metadata the shards were downloaded from (parquet with "
                              "laion_index, or the LAION index as its pandas index, and wnid)",
                        required=True)
    target: Optional[str] = opt(None, "root of the ImageNet-style tree (a local or mounted path)")
    target_df: Optional[str] = opt(None, "success metadata path ending in .parquet; _success<N> is "
                                         "inserted before the suffix (N = rows with an image) "
                                         "[default: <target>.parquet]")
    images: bool = opt(True, "write the image files; --no-images only writes the success metadata "
                             "(the images stay in the webdataset)")
    max_pixels: int = opt(DEFAULT_MAX_PIXELS, "images announcing more pixels are skipped as "
                                              "decompression bombs")
    reencode: bool = opt(False, "decode every image to RGB and write it as <laion_index>.jpg with "
                                "Pillow's JPEG defaults, as the original arrange_laionet.py does "
                                "(undecodable images: decode_error); default: the downloaded bytes")

    def validate(self) -> None:
        if self.images and not self.target:
            raise ConfigError("target", "is required unless --no-images")
        if not (self.target_df or self.target):
            raise ConfigError("target_df", "is required with --no-images and no --target")
        if not self.success_df_stem().endswith(".parquet"):
            raise ConfigError("target_df", f"must end with .parquet, got {self.target_df!r}")
        if self.images and local_path(self.target) is None:
            raise ConfigError("target", f"must be a local or mounted path, got {self.target!r}")
        if self.max_pixels < 1:
            raise ConfigError("max_pixels", f"must be at least 1, got {self.max_pixels}")


    def success_df_stem(self) -> str:
        return self.target_df or self.target.rstrip("/") + ".parquet"


def list_shards(spark, shards: str) -> List[str]:
    require_input(spark, shards, "shards")
    found = glob(spark, shards if any(c in shards for c in "*?[{") else shards.rstrip("/") + "/*.tar")
    if not found:
        raise InputError(f"shards: no .tar files in {shards}")
    return found


def read_index(spark, metadata: str):
    """The metadata DataFrame and its laion_index -> wnid index (checked: integer, unique);
    `laion_index` may be the pandas index of a published metadata file (`jobs.io.metadata`)."""
    from jobs.io.metadata import read_metadata

    meta = read_metadata(spark, metadata, "metadata")
    types = dict(meta.dtypes)
    for col, allowed in (("laion_index", ("bigint", "int")), ("wnid", ("string",))):
        if col not in types:
            raise InputError(f"metadata {metadata}: missing column '{col}' (columns: {', '.join(meta.columns)})")
        if types[col] not in allowed:
            raise InputError(f"metadata {metadata}: column '{col}' must be {allowed[0]}, got {types[col]}")
    pdf = meta.select("laion_index", "wnid").toPandas()
    if pdf.laion_index.isna().any():
        raise InputError(f"metadata {metadata}: column 'laion_index' has nulls")
    try:
        return meta, WnidIndex(pdf.laion_index.to_numpy(), pdf.wnid.to_numpy())
    except ValueError as e:
        raise InputError(f"metadata {metadata}: {e}") from None


def run_tasks(spark, shards: List[str], index: WnidIndex, target: Optional[str], max_pixels: int,
              reencode: bool = False):
    """One task per tar; returns their `shard_summary`s (about 9 bytes per sample)."""
    from udfs.arrange import shard_summary

    sc = spark.sparkContext
    bindex = sc.broadcast(index)
    try:
        return sc.parallelize(shards, len(shards)).map(
            lambda shard: shard_summary(shard, bindex.value, target, max_pixels, reencode)).collect()
    finally:
        bindex.unpersist()


def build_report(cfg: ArrangeConfig, index: WnidIndex, summaries, n_shards: int):
    """(report, kept laion_index array): rows by reason, and in `info` what the tasks saw."""
    ids = np.concatenate([s[2] for s in summaries]) if summaries else np.zeros(0, np.int64)
    codes = np.concatenate([s[3] for s in summaries]) if summaries else np.zeros(0, np.int8)
    rows = row_outcomes(index, ids, codes)
    report = StageReport("laionet arrange", read=len(index), kept=int(rows.kept.sum()))
    for reason, n in sorted(rows.reasons.items()):
        report.drop(reason, n)
    report.info.update(shards=n_shards,
                       sample_statuses=status_counts(p for s in summaries for p in s[1].items()),
                       corrupt_shards=sorted({s[0] for s in summaries if s[1].get("corrupt_tar")}),
                       rows_in_several_samples=rows.several,
                       target=cfg.target if cfg.images else None)
    return report, rows.kept_laion_index(index)


def write_success(spark, meta, kept, path: str) -> None:
    """The metadata rows whose laion_index is in `kept`: one part, sorted by laion_index."""
    import pandas as pd
    from pyspark.sql import functions as F

    keep = spark.createDataFrame(pd.DataFrame({"laion_index": kept}), "laion_index long")
    (meta.join(F.broadcast(keep), "laion_index", "left_semi").select(*meta.columns)
     .coalesce(1).sortWithinPartitions("laion_index").write.parquet(path))


def run(spark, cfg: ArrangeConfig) -> StageReport:
    shards = list_shards(spark, cfg.shards)
    meta, index = read_index(spark, cfg.metadata)
    target = os.path.abspath(local_path(cfg.target)) if cfg.images else None
    from udfs.arrange import clean_staging

    removed = clean_staging(target) if target else 0  # a crashed run's partial files
    try:
        summaries = run_tasks(spark, shards, index, target, cfg.max_pixels, cfg.reencode)
        if target:  # a task killed and retried left its partial files
            removed += clean_staging(target)
        report, kept = build_report(cfg, index, summaries, len(shards))
        report.info["partial_files_removed"] = removed
        del summaries
        out = success_name(cfg.success_df_stem(), report.kept)
        report.info["output"] = out
        with atomic_dir(spark, out, cfg, report) as tmp:
            write_success(spark, meta, kept, tmp)
        if target:  # the tree is complete: `<target>.config.yaml` + `<target>.report.json`
            finish_file(spark, cfg.target.rstrip("/"), cfg, report)
    finally:
        if target:
            clean_staging(target)
    if report.info["corrupt_shards"]:
        print(f"note: unreadable parts in {', '.join(report.info['corrupt_shards'])}; "
              "their readable samples were arranged")
    print(report.summary())
    return report


JOB = Job(command=("laionet", "arrange"), config=ArrangeConfig, run=run,
          help="arrange downloaded shards as <target>/<wnid>/<laion_index>.jpg and write the success metadata")

if __name__ == "__main__":
    main_for(JOB)

"""`curate laionet arrange`: webdataset shards -> `<target>/<wnid>/<laion_index>.jpg` (step 6).

One Spark task per tar (`udfs/arrange.py`) writes the images; the driver matches the
records to the metadata by `laion_index` and writes the metadata of the rows that have an
image to `<target-df stem>_success<N>.parquet`, the seed's naming, with a report of what
happened to every other row (not downloaded, not an image, decompression bomb, invalid
wnid, ...); the same config and report also sit beside the tree (`<target>.report.json`). Re-running is safe: existing images are kept, a crashed run's staging files
are removed, and the success metadata comes out the same.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import List, Optional

from curation.arrange import DEFAULT_MAX_PIXELS, SUCCESS, WNID_PATTERN, WnidIndex, success_name
from curation.errors import ConfigError, InputError
from curation.report import StageReport
from jobs.base import Job, main_for
from jobs.config import opt
from jobs.output import atomic_dir, finish_file, glob, local_path, require_input

RECORD_SCHEMA = "laion_index long, status string, shard string"


@dataclass
class ArrangeConfig:
    shards: str = opt(None, "img2dataset output folder (its *.tar files are read) or a glob of tars",
                      required=True)
    metadata: str = opt(None, "the metadata the shards were downloaded from (parquet with "
                              "laion_index and wnid)", required=True)
    target: Optional[str] = opt(None, "root of the ImageNet-style tree (a local or mounted path)")
    target_df: Optional[str] = opt(None, "success metadata path ending in .parquet; _success<N> is "
                                         "inserted before the suffix (N = rows with an image) "
                                         "[default: <target>.parquet]")
    images: bool = opt(True, "write the image files; --no-images only writes the success metadata "
                             "(the images stay in the webdataset)")
    max_pixels: int = opt(DEFAULT_MAX_PIXELS, "images announcing more pixels are skipped as "
                                              "decompression bombs")

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
    """The metadata DataFrame and its laion_index -> wnid index (checked: integer, unique)."""
    require_input(spark, metadata, "metadata")
    meta = spark.read.parquet(metadata)
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


def run_tasks(spark, shards: List[str], index: WnidIndex, target: Optional[str], max_pixels: int):
    """One task per tar; returns the persisted DataFrame of records."""
    from pyspark import StorageLevel

    from udfs.arrange import arrange_shard

    sc = spark.sparkContext
    bindex = sc.broadcast(index)
    rdd = sc.parallelize(shards, len(shards)).flatMap(
        lambda shard: arrange_shard(shard, bindex.value, target, max_pixels))
    return spark.createDataFrame(rdd, RECORD_SCHEMA).persist(StorageLevel.MEMORY_AND_DISK)


def row_outcomes(meta, records):
    """metadata + `reason` (null for a row with an image, else why it has none)."""
    from pyspark.sql import functions as F

    ok = F.col("status").isin(*SUCCESS)
    per_row = (records.where(F.col("laion_index").isNotNull())
               .groupBy("laion_index")
               .agg(F.max(ok.cast("int")).alias("_ok"), F.min(F.when(~ok, F.col("status"))).alias("_why"),
                    F.count("*").alias("_samples")))
    wnid_ok = F.coalesce(F.col("wnid").rlike(WNID_PATTERN), F.lit(False))
    reason = (F.when(~wnid_ok, F.lit("invalid_wnid"))
              .when(F.col("_ok") == 1, F.lit(None).cast("string"))
              .otherwise(F.coalesce(F.col("_why"), F.lit("not_downloaded"))))
    return meta.join(per_row, "laion_index", "left").withColumn("reason", reason)


def build_report(cfg: ArrangeConfig, rows, records, n_shards: int) -> StageReport:
    """Row reasons (read = metadata rows) plus, in `info`, what the tasks saw per sample."""
    from pyspark.sql import functions as F

    report = StageReport("laionet arrange")
    several = 0
    for r in rows.groupBy("reason").agg(F.count("*").alias("n"),
                                        F.sum((F.col("_samples") > 1).cast("int")).alias("several")).collect():
        report.read += r["n"]
        several += r["several"] or 0
        if r["reason"] is None:
            report.kept = r["n"]
        else:
            report.drop(r["reason"], r["n"])
    statuses, bad_shards = {}, set()
    for r in records.groupBy("status", "shard").agg(F.count("*").alias("n")).collect():
        statuses[r["status"]] = statuses.get(r["status"], 0) + r["n"]
        if r["status"] == "corrupt_tar":
            bad_shards.add(r["shard"])
    report.info.update(shards=n_shards, sample_statuses=dict(sorted(statuses.items())),
                       corrupt_shards=sorted(bad_shards), rows_in_several_samples=several,
                       target=cfg.target if cfg.images else None)
    return report


def run(spark, cfg: ArrangeConfig) -> StageReport:
    shards = list_shards(spark, cfg.shards)
    meta, index = read_index(spark, cfg.metadata)
    target = os.path.abspath(local_path(cfg.target)) if cfg.images else None
    if target:
        from udfs.arrange import STAGING

        shutil.rmtree(os.path.join(target, STAGING), ignore_errors=True)  # a crashed run's leftovers
    records = run_tasks(spark, shards, index, target, cfg.max_pixels)
    rows = row_outcomes(meta, records).persist()
    try:
        report = build_report(cfg, rows, records, len(shards))
        out = success_name(cfg.success_df_stem(), report.kept)
        report.info["output"] = out
        success = rows.where(rows.reason.isNull()).select(*meta.columns)
        with atomic_dir(spark, out, cfg, report) as tmp:
            success.repartition(1).sortWithinPartitions("laion_index").write.parquet(tmp)
        if target:  # the tree is complete: `<target>.config.yaml` + `<target>.report.json`
            finish_file(spark, cfg.target.rstrip("/"), cfg, report)
    finally:
        rows.unpersist()
        records.unpersist()
        if target:
            shutil.rmtree(os.path.join(target, STAGING), ignore_errors=True)
    if report.info["corrupt_shards"]:
        print(f"note: unreadable parts in {', '.join(report.info['corrupt_shards'])}; "
              "their readable samples were arranged")
    print(report.summary())
    return report


JOB = Job(command=("laionet", "arrange"), config=ArrangeConfig, run=run,
          help="arrange downloaded shards as <target>/<wnid>/<laion_index>.jpg and write the success metadata")

if __name__ == "__main__":
    main_for(JOB)

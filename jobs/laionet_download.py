"""`curate laionet download`: img2dataset on the active Spark session (step 5 of the recipe).

img2dataset does the work: its reader cuts the metadata into shards on the driver, and
its pyspark distributor runs one task per shard on the session's executors (each task
downloads with `thread_count` threads and writes `<shard>.tar`, `<shard>.parquet` and,
last, `<shard>_stats.json`). We only check the input, pass the options, and turn the
per-shard stats into our stage report, so the download runs at img2dataset's own speed.

Resume: a shard with a stats file is complete and is skipped by the next run
(img2dataset's `incremental` mode); a shard cut off mid-way is downloaded again;
`--no-resume` starts from an empty folder.
Because img2dataset reads every `*.json` in the output folder as a shard's stats, our
config and report live beside the folder (`<out>.config.yaml`, `<out>.report.json`).

`laion_index` travels as an additional column into every sample's `.json`: arrange
identifies samples by it, never by their position in a shard. The authors' published
metadata (pandas files with the LAION index as the DataFrame index, `jobs/io/metadata.py`)
is taken as it is: img2dataset reads only columns, so the job first streams the columns it
needs, the index renamed `laion_index`, into a copy beside `--out`, removed when the run ends.

The driver: img2dataset's reader loads each metadata file's URL, caption and kept columns
whole on the driver to cut it into shards (~0.2 KB a row: ~0.9 GB for the authors' one
4.58M-row file). A file of more than `MAX_ROWS_PER_FILE` rows is therefore copied the same
way in pieces, each a whole number of shards (`number_sample_per_shard` rows), so the
driver holds one piece at a time while shard ids, shard contents and resume stay exactly
those of the file itself (img2dataset numbers shards on across files, in name order).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

from curation.errors import ConfigError, InputError
from curation.report import StageReport
from jobs.framework.base import Job, main_for
from jobs.framework.config import opt
from jobs.io.output import check_output, claim_folder, delete, finish_file, glob, local_path, read_text, require_input

#: a metadata file with more rows is handed to img2dataset in pieces (see the module doc)
MAX_ROWS_PER_FILE = 1_000_000
#: distinct failure reasons listed in the report (the rest are summed as other_failure)
MAX_REASONS = 50
#: img2dataset options this job sets itself (from its own fields or fixed)
_MANAGED = {"url_list", "output_folder", "input_format", "distributor", "url_col", "caption_col",
            "save_additional_columns", "output_format", "image_size", "resize_mode",
            "resize_only_if_bigger", "skip_reencode", "encode_format", "retries", "thread_count",
            "timeout", "number_sample_per_shard", "incremental_mode"}


@dataclass
class DownloadConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"metadata": "input", "out": "output"}
    metadata: str = opt(None, "LAIONet metadata: a parquet file or a directory of parquet files "
                              "(the output of `curate laionet filter`, or the authors' published "
                              "metadata with the LAION index as its pandas index)", required=True)
    out: str = opt(None, "output folder of img2dataset shards (<shard>.tar + <shard>_stats.json)",
                   required=True)
    url_col: str = opt("URL", "column holding the image URL")
    caption_col: str = opt("TEXT", "column holding the caption (saved as <key>.txt)")
    id_col: str = opt("laion_index", "stable row id saved in every sample's .json (arrange needs it)")
    additional_columns: List[str] = opt(["NSFW", "similarity", "wnid", "LICENSE"],
                                        "metadata columns saved in every sample's .json")
    output_format: str = opt("webdataset", "img2dataset output format (arrange reads webdataset)",
                             choices=("webdataset", "parquet", "files", "tfrecord"))
    image_size: int = opt(256, "target image size")
    resize_mode: str = opt("keep_ratio", "img2dataset resize mode",
                           choices=("no", "keep_ratio", "center_crop", "border", "keep_ratio_largest"))
    resize_only_if_bigger: bool = opt(True, "never upscale")
    skip_reencode: bool = opt(True, "keep the original bytes when no resize is needed")
    encode_format: str = opt("jpg", "format of re-encoded images", choices=("jpg", "png", "webp"))
    retries: int = opt(10, "retries per URL")
    thread_count: int = opt(64, "download threads per Spark task")
    timeout: float = opt(10.0, "seconds before a URL request times out")
    number_sample_per_shard: int = opt(10000, "rows per shard (one Spark task each)")
    resume: bool = opt(True, "keep the shards an earlier run finished and download only the rest "
                             "(--no-resume deletes --out first)")
    img2dataset: Dict[str, Any] = opt({}, "any other img2dataset.download option, as a YAML mapping "
                                      "(e.g. {max_image_area: 100000000, user_agent_token: mybot})")

    def validate(self) -> None:
        for key in ("image_size", "thread_count", "number_sample_per_shard"):
            if getattr(self, key) < 1:
                raise ConfigError(key, f"must be at least 1, got {getattr(self, key)}")
        if self.retries < 0:
            raise ConfigError("retries", f"must be >= 0, got {self.retries}")
        if self.timeout <= 0:
            raise ConfigError("timeout", f"must be > 0, got {self.timeout}")
        if self.id_col in self.additional_columns:
            raise ConfigError("additional_columns", f"must not repeat id_col '{self.id_col}'")
        if self.img2dataset:
            known = _img2dataset_options()
            for key in self.img2dataset:
                if key in _MANAGED:
                    raise ConfigError(f"img2dataset.{key}", "is set by this job; use its own option "
                                      "(see --help) instead")
                if key not in known:
                    raise ConfigError(f"img2dataset.{key}", "is not an img2dataset.download option; "
                                      f"known: {', '.join(sorted(known - _MANAGED))}")


def _img2dataset_download():
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no call to PyPI on import
    from img2dataset import download

    return download


def _img2dataset_options() -> set:
    import inspect

    return set(inspect.signature(_img2dataset_download()).parameters)


def img2dataset_kwargs(cfg: DownloadConfig, url_list: Optional[str] = None) -> Dict[str, Any]:
    """The keyword arguments of `img2dataset.download` for this config (pyspark distributor);
    `url_list`: the metadata img2dataset reads, when not `cfg.metadata` itself."""
    # absolute local paths: executors run in other working directories, and img2dataset
    # 1.47 leaves relative paths alone with recent fsspec (its `fs.protocol == "file"`)
    url_list = url_list or cfg.metadata
    kwargs = dict(
        url_list=local_path(url_list) or url_list, output_folder=local_path(cfg.out) or cfg.out,
        input_format="parquet", distributor="pyspark",
        url_col=cfg.url_col, caption_col=cfg.caption_col,
        save_additional_columns=[cfg.id_col] + list(cfg.additional_columns),
        output_format=cfg.output_format, image_size=cfg.image_size, resize_mode=cfg.resize_mode,
        resize_only_if_bigger=cfg.resize_only_if_bigger, skip_reencode=cfg.skip_reencode,
        encode_format=cfg.encode_format, retries=cfg.retries, thread_count=cfg.thread_count,
        timeout=cfg.timeout, number_sample_per_shard=cfg.number_sample_per_shard,
        incremental_mode="incremental", enable_wandb=False,
    )
    kwargs.update(cfg.img2dataset)
    return kwargs


def stats_report(stats: Iterable[dict], attempted: int, stage: str = "laionet download") -> StageReport:
    """Fold img2dataset's per-shard stats into one report: read = metadata rows.

    Failures are keyed by img2dataset's own reason (its `status_dict`, e.g. "HTTP Error 404:
    Not Found", "timed out", "Image decoding error"); a real crawl has thousands of distinct
    messages, so the `MAX_REASONS` most frequent are kept and the rest, with rows a shard
    counted without a status (img2dataset caps its counter), are `other_failure`. Rows of
    shards that have no stats yet (failed or not run) are `shard_not_downloaded`.
    """
    report = StageReport(stage, read=attempted)
    reasons: Counter = Counter()
    shards = counted = 0
    for s in stats:
        shards += 1
        counted += s["count"]
        report.kept += s["successes"]
        reasons.update({k: v for k, v in s["status_dict"].items() if k != "success"})
    if counted > attempted:
        raise InputError(f"the shards' stats count {counted} rows but the metadata has {attempted}: "
                         "the output folder holds shards of another metadata file")
    for reason, n in reasons.most_common(MAX_REASONS):
        report.drop(reason, n)
    report.drop("other_failure", counted - report.kept - report.n_dropped)
    report.drop("shard_not_downloaded", attempted - counted)
    report.info.update(shards_done=shards, attempted=attempted, succeeded=report.kept,
                       failed=attempted - report.kept)
    return report


def read_stats(spark, out: str) -> List[dict]:
    return [json.loads(read_text(spark, p)) for p in glob(spark, out.rstrip("/") + "/*_stats.json")]


def check_metadata(spark, cfg: DownloadConfig) -> Tuple[int, str]:
    """Fail early (one line) on a missing input or column; return (rows, the column that
    holds the id: `id_col`, or the pandas index of a published metadata file)."""
    from jobs.io.metadata import INDEX, index_column

    require_input(spark, cfg.metadata, "metadata")
    df = spark.read.parquet(cfg.metadata)
    source = cfg.id_col
    if cfg.id_col == INDEX:
        source = index_column(spark, cfg.metadata, df.columns)
    types = dict(df.dtypes)
    for col in [cfg.url_col, cfg.caption_col, source] + list(cfg.additional_columns):
        if col not in types:
            raise InputError(f"metadata {cfg.metadata}: missing column '{col}' (columns: {', '.join(df.columns)})")
    if types[source] not in ("bigint", "int"):
        raise InputError(f"metadata {cfg.metadata}: column '{source}' must be an integer id, "
                         f"got {types[source]}")
    return df.count(), source


def metadata_files(cfg: DownloadConfig):
    """(file system of `udfs.files`, the files img2dataset reads: a file, or a folder's
    `*.parquet` in name order). Read without the session: img2dataset reads them with
    fsspec, so what it can read is what is listed here."""
    from udfs import files

    fs, path = files.fs_for(cfg.metadata)
    return fs, (sorted(fs.glob(path.rstrip("/") + "/*.parquet")) if fs.isdir(path) else [path])


def largest_file_rows(cfg: DownloadConfig) -> int:
    """The row count of the largest metadata file (from the parquet footers)."""
    import pyarrow.parquet as pq

    fs, files = metadata_files(cfg)
    most = 0
    for f in files:
        with fs.open(f, "rb") as fh:
            most = max(most, pq.ParquetFile(fh).metadata.num_rows)
    return most


def copy_for_img2dataset(cfg: DownloadConfig, source: str, folder: str,
                         max_rows: Optional[int] = None) -> str:
    """Copy the columns img2dataset reads from the metadata into `folder`, the id column
    `source` renamed `cfg.id_col`, in files of at most `max_rows` rows (rounded down to
    whole shards); returns the folder, which img2dataset reads instead of the metadata.

    The copies are streamed batch by batch in the files' order and row order and named
    `<file number>-<piece number>.parquet`, so img2dataset cuts and numbers the same shards
    (and a resumed run skips the same ones) as from the metadata itself."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    per_shard = cfg.number_sample_per_shard
    max_rows = MAX_ROWS_PER_FILE if max_rows is None else max_rows
    piece_rows = max(1, max_rows // per_shard) * per_shard
    fs, files = metadata_files(cfg)
    columns = list(dict.fromkeys([cfg.url_col, cfg.caption_col, source] + list(cfg.additional_columns)))
    names = [cfg.id_col if c == source else c for c in columns]
    os.makedirs(folder, exist_ok=True)
    for i, f in enumerate(files):
        with fs.open(f, "rb") as fh:
            pf = pq.ParquetFile(fh, pre_buffer=False, buffer_size=1 << 20)
            schema = pa.schema([pf.schema_arrow.field(c).with_name(n) for c, n in zip(columns, names)])
            writer, piece, filled = None, 0, 0
            try:
                for batch in pf.iter_batches(batch_size=65536, columns=columns):
                    table = pa.Table.from_batches([batch]).rename_columns(names).cast(schema)
                    while table.num_rows:
                        if writer is None:
                            writer = pq.ParquetWriter(os.path.join(folder, f"{i:05d}-{piece:05d}.parquet"), schema)
                        take = min(piece_rows - filled, table.num_rows)
                        writer.write_table(table.slice(0, take))
                        table, filled = table.slice(take), filled + take
                        if filled == piece_rows:
                            writer.close()
                            writer, piece, filled = None, piece + 1, 0
            finally:
                if writer is not None:
                    writer.close()
    return folder


def input_copy_folder(cfg: DownloadConfig) -> str:
    """Where the id-column copy goes: beside a local `--out` (stale copies of killed runs
    removed), else in the driver's temporary directory. Only the driver reads it."""
    out = local_path(cfg.out)
    if out is None:
        import tempfile

        return tempfile.mkdtemp(prefix="laionet-download-input-")
    parent, name = os.path.split(out.rstrip("/"))
    prefix = f"{name}.__input-"
    if os.path.isdir(parent):
        for entry in os.listdir(parent):
            if entry.startswith(prefix):
                shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
    return os.path.join(parent, f"{prefix}{uuid.uuid4().hex[:8]}")


def run(spark, cfg: DownloadConfig) -> StageReport:
    attempted, source = check_metadata(spark, cfg)
    download = _img2dataset_download()

    check_output(spark, cfg.out)  # a folder this job did not write is left alone (--overwrite)
    if not cfg.resume:
        # (not img2dataset's "overwrite" mode: in 1.47 it also deletes its own _tmp folder)
        delete(spark, cfg.out)
    copy = None
    if source != cfg.id_col:  # the id is the pandas index of a published metadata file
        copy = input_copy_folder(cfg)
        print(f"note: {cfg.metadata} holds {cfg.id_col} as its pandas index ('{source}'); "
              f"img2dataset reads a copy with it as a column ({copy}, removed afterwards)")
    elif largest_file_rows(cfg) > MAX_ROWS_PER_FILE:
        copy = input_copy_folder(cfg)
        print(f"note: {cfg.metadata} has a file of more than {MAX_ROWS_PER_FILE:,} rows, which img2dataset "
              f"would load whole on the driver; it reads a copy in pieces of whole shards ({copy}, "
              "removed afterwards)")
    claim_folder(spark, cfg.out, cfg)  # a killed run's folder stays this job's to resume
    # img2dataset installs a SIGINT handler that exits the process; keep ours afterwards
    previous = signal.getsignal(signal.SIGINT)
    from jobs.framework.progress import paused

    try:
        url_list = copy_for_img2dataset(cfg, source, copy) if copy else None
        with paused():  # img2dataset prints its own progress lines
            download(**img2dataset_kwargs(cfg, url_list))
    finally:
        signal.signal(signal.SIGINT, previous)
        if copy:
            shutil.rmtree(copy, ignore_errors=True)
    report = stats_report(read_stats(spark, cfg.out), attempted)
    report.info["output"] = cfg.out
    finish_file(spark, cfg.out.rstrip("/"), cfg, report)
    missing = report.dropped.get("shard_not_downloaded", 0)
    if missing:
        print(f"note: {missing:,} rows are in shards that failed (see the executors' logs); "
              "run the same command again to retry them")
    print(report.summary())
    return report


JOB = Job(command=("laionet", "download"), config=DownloadConfig, run=run,
          help="download the LAIONet images with img2dataset on the Spark executors (webdataset shards)")

if __name__ == "__main__":
    main_for(JOB)

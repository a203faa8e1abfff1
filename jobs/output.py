"""Atomic stage outputs, sidecar config/report files and file-system access.

All paths go through Hadoop's FileSystem API (via the session's JVM), so local paths,
`file://`, `hdfs://`, `s3a://`, `gs://` all work where the cluster has the connector.

A stage output is complete when its report exists: outputs are written under a temporary
name, the config and report are added, and only then is it renamed into place. A killed
job leaves at most a `*.__tmp-*` sibling, which the next run ignores and removes.

Directory outputs (parquet datasets) carry `_config.yaml` and `_report.json` inside;
single-file outputs (TSV, frequency files) carry `<file>.config.yaml` / `<file>.report.json`.
"""
from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional

import yaml

from curation.errors import ConfigError, InputError
from curation.report import StageReport
from jobs.config import config_to_dict, config_to_yaml

CONFIG_NAME = "_config.yaml"
REPORT_NAME = "_report.json"


# ---------------------------------------------------------------- file system via the JVM
def _jvm(spark):
    return spark.sparkContext._jvm


def _hpath(spark, path: str):
    return _jvm(spark).org.apache.hadoop.fs.Path(path)


def _fs(spark, path: str):
    hp = _hpath(spark, path)
    return hp.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hp


def qualify(spark, path: str) -> str:
    """The fully qualified URI of `path` (relative paths resolve as the user typed them)."""
    fs, hp = _fs(spark, path)
    return fs.makeQualified(hp).toString()


def exists(spark, path: str) -> bool:
    fs, hp = _fs(spark, path)
    return bool(fs.exists(hp))


def delete(spark, path: str) -> None:
    fs, hp = _fs(spark, path)
    if fs.exists(hp):
        fs.delete(hp, True)


def rename(spark, src: str, dst: str) -> None:
    fs, hsrc = _fs(spark, src)
    hdst = _hpath(spark, dst)
    parent = hdst.getParent()
    if parent is not None and not fs.exists(parent):
        fs.mkdirs(parent)
    if not fs.rename(hsrc, hdst):
        raise OSError(f"could not rename {src} to {dst}")


def list_files(spark, path: str) -> List[str]:
    """Files directly under a directory (sorted)."""
    fs, hp = _fs(spark, path)
    return sorted(st.getPath().toString() for st in fs.listStatus(hp) if st.isFile())


def glob(spark, pattern: str) -> List[str]:
    fs, hp = _fs(spark, pattern)
    sts = fs.globStatus(hp)
    return sorted(st.getPath().toString() for st in (sts or []))


def remove_stale_tmp(spark, path: str) -> List[str]:
    """Delete `<path>.__tmp-*` siblings left by a killed run (returns what was removed).

    Two runs writing the same output at the same time are not supported: the later one
    removes the earlier one's temporary output.
    """
    stale = glob(spark, f"{path.rstrip('/')}.__tmp-*")
    for tmp in stale:
        delete(spark, tmp)
    return stale


def _new_tmp(spark, path: str) -> str:
    remove_stale_tmp(spark, path)
    return f"{path.rstrip('/')}.__tmp-{uuid.uuid4().hex[:8]}"


def read_text(spark, path: str) -> str:
    fs, hp = _fs(spark, path)
    stream = fs.open(hp)
    try:
        scanner = _jvm(spark).java.util.Scanner(stream, "UTF-8").useDelimiter("\\A")
        return scanner.next() if scanner.hasNext() else ""
    finally:
        stream.close()


def _local_for_hadoop(spark, path: str) -> Optional[str]:
    """The local path of `path` when Hadoop would resolve it to the local file system (a
    path without a scheme is local only when the default file system is)."""
    if "://" not in path and not path.startswith("file:"):
        default_fs = spark.sparkContext._jsc.hadoopConfiguration().get("fs.defaultFS") or "file:///"
        if not default_fs.startswith("file:"):
            return None
    return local_path(path)


def _create(spark, path: str, data: bytes) -> None:
    """Write a file in one go: with Python for a local path, else through Hadoop."""
    local = _local_for_hadoop(spark, path)
    if local is not None:
        os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
        with open(local, "wb") as fh:
            fh.write(data)
        return
    fs, hp = _fs(spark, path)
    out = fs.create(hp, True)
    try:
        out.write(bytearray(data))
    finally:
        out.close()


def write_bytes(spark, path: str, data: bytes) -> None:
    """Write a small binary file (e.g. a PNG plot) atomically (temporary name, then rename)."""
    tmp = _new_tmp(spark, path)
    _create(spark, tmp, data)
    delete(spark, path)
    rename(spark, tmp, path)


def write_text(spark, path: str, text: str) -> None:
    """Write a small text file atomically (temporary name, then rename)."""
    write_bytes(spark, path, text.encode("utf-8"))


def require_input(spark, path: str, what: str = "input") -> None:
    """Fail early (one line) when an input path or glob matches nothing."""
    if any(ch in path for ch in "*?[{"):
        if not glob(spark, path):
            raise InputError(f"{what} not found: no files match {path}")
    elif not exists(spark, path):
        raise InputError(f"{what} not found: {path}")


# ---------------------------------------------------------------- sidecars and completeness
def sidecar(path: str, name: str, directory: bool) -> str:
    """Where a config/report lives: inside a directory output, beside a file output."""
    if directory:
        return path.rstrip("/") + "/" + name
    return path + "." + name.lstrip("_").replace("_", ".")


def stage_complete(spark, out: str, cfg, directory: bool = True) -> bool:
    """True when `out` holds a finished output of the same config."""
    report = sidecar(out, REPORT_NAME, directory)
    config = sidecar(out, CONFIG_NAME, directory)
    if not (exists(spark, out) and exists(spark, report) and exists(spark, config)):
        return False
    try:
        return yaml.safe_load(read_text(spark, config)) == config_to_dict(cfg)
    except Exception:  # an unreadable sidecar means "not complete"
        return False


def read_report(spark, out: str, directory: bool = True) -> dict:
    return json.loads(read_text(spark, sidecar(out, REPORT_NAME, directory)))


@contextmanager
def atomic_dir(spark, out: str, cfg, report: StageReport) -> Iterator[str]:
    """Yield a temporary directory path; on success add config + report and move it to `out`.

    Usage:  with atomic_dir(spark, out, cfg, report) as tmp: df.write.parquet(tmp)
    """
    out = out.rstrip("/")
    tmp = _new_tmp(spark, out)
    try:
        yield tmp
        if not exists(spark, tmp):
            fs, htmp = _fs(spark, tmp)
            fs.mkdirs(htmp)
        # inside the temporary directory nothing is visible yet: plain writes suffice
        _create(spark, sidecar(tmp, CONFIG_NAME, True), config_to_yaml(cfg).encode("utf-8"))
        _create(spark, sidecar(tmp, REPORT_NAME, True), report.to_json().encode("utf-8"))
        delete(spark, out)
        rename(spark, tmp, out)
    finally:
        delete(spark, tmp)


#: where the Python workers write their attempt files, inside the temporary output
ATTEMPTS_DIR = "_attempts"


def write_parquet_in_tasks(spark, df, batch_function, schema: str, out: str,
                           row_group_rows: Optional[int] = None) -> None:
    """Write `df.mapInArrow(batch_function, schema)` as a parquet dataset into the new
    directory `out` (the temporary directory of `atomic_dir`).

    A local `out` (a plain path or file:, also a mount shared by the executors) is
    written by the Python workers themselves with pyarrow (`udfs.parquet_sink`: no row
    copy into the JVM, no row-by-row parquet-mr encoding): every task attempt writes one
    file under `out/_attempts`, the status rows collected here name the one attempt Spark
    accepted per partition, those become `part-<partition>.parquet`, the rest is deleted.
    Any other file system (hdfs://, s3a://) is written by Spark's own writer.
    `row_group_rows`: rows per parquet row group (default `udfs.parquet_sink.ROW_GROUP_ROWS`).
    """
    from udfs.parquet_sink import ROW_GROUP_ROWS, STATUS_SCHEMA, plain, write_batches

    local = _local_for_hadoop(spark, out)
    if local is None:
        df.mapInArrow(plain(batch_function), schema).write.parquet(out)
        return
    import shutil

    import pyarrow.parquet as pq
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import _parse_datatype_string

    arrow_schema = to_arrow_schema(_parse_datatype_string(schema))
    attempts = os.path.join(local, ATTEMPTS_DIR)
    os.makedirs(attempts)
    try:
        task = write_batches(batch_function, attempts, arrow_schema, row_group_rows or ROW_GROUP_ROWS)
        statuses = df.mapInArrow(task, STATUS_SCHEMA).collect()
        files = {}
        for status in statuses:
            if status.partition in files:
                raise RuntimeError(f"two accepted task results for partition {status.partition} of {out}")
            files[status.partition] = status.path
        for partition, path in sorted(files.items()):
            if not path:  # the partition had no rows
                continue
            if not os.path.exists(path):
                raise InputError(f"{out}: a task wrote {path}, which this driver cannot see; on a cluster a local "
                                 "output path must be a file system shared by the driver and every executor "
                                 "(or use hdfs:// / s3a://)")
            os.replace(path, os.path.join(local, f"part-{partition:05d}.parquet"))
        if not any(files.values()):  # no rows at all: one empty file keeps the schema
            pq.write_table(arrow_schema.empty_table(), os.path.join(local, "part-00000.parquet"))
    finally:
        # failed or duplicate attempts; a straggler whose directory is gone cannot write
        shutil.rmtree(attempts, ignore_errors=True)


def finish_file(spark, path: str, cfg, report: StageReport) -> None:
    """Write the config/report sidecars of a single-file output (after the file itself)."""
    write_text(spark, sidecar(path, CONFIG_NAME, False), config_to_yaml(cfg))
    write_text(spark, sidecar(path, REPORT_NAME, False), report.to_json())


#: a TSV read as `pd.read_csv(path, sep="\t", keep_default_na=False)` reads it: a header,
#: `"` quotes (doubled inside) that may hold tabs and newlines, a backslash is no escape;
#: one task per file (`multiLine`), as a quoted newline may sit anywhere
TSV_READ_OPTIONS = {"sep": "\t", "header": "true", "quote": '"', "escape": '"', "multiLine": "true",
                    "mode": "PERMISSIVE"}
#: the column of `read_tsv` that holds a row whose field count differs from the header's
MALFORMED = "_malformed_row"


def read_tsv(spark, path: str, what: str = "input TSV", check: bool = True):
    """A TSV file, folder or glob as a DataFrame of string columns (named by the header),
    read as pandas reads it: quotes parsed, every value as written (spaces kept), an empty
    field is "" (pandas with `keep_default_na=False`), never null.

    With `check`, a row with more or fewer fields than the header (what pandas refuses or
    pads with NaN) fails with one line naming the file and the row, before any other work;
    without it such rows keep the column `MALFORMED` (non-null), for the caller to count.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    require_input(spark, path, what)
    options = TSV_READ_OPTIONS
    columns = spark.read.options(**options).csv(path).columns
    if MALFORMED in columns:
        raise InputError(f"{what} {path}: a column may not be named {MALFORMED!r}")
    schema = StructType([StructField(c, StringType()) for c in columns] + [StructField(MALFORMED, StringType())])
    df = spark.read.options(**options, columnNameOfCorruptRecord=MALFORMED).schema(schema).csv(path)
    df = df.select(*[F.coalesce(F.col(f"`{c}`"), F.lit("")).alias(c) for c in columns], MALFORMED)
    if check:
        bad = (df.where(F.col(MALFORMED).isNotNull())
               .select(F.input_file_name().alias("file"), MALFORMED, *[F.col(f"`{c}`") for c in columns])
               .limit(1).collect())
        if bad:
            record = bad[0][MALFORMED]
            raise InputError(f"{what} {bad[0]['file'] or path}: the row {record[:200]!r} does not have the "
                             f"{len(columns)} tab-separated fields of the header ({', '.join(columns)})")
        df = df.drop(MALFORMED)
    return df


def write_single_csv(spark, df, path: str, sep: str = "\t", header: bool = True,
                     order_by: Optional[List[str]] = None,
                     order_only: Optional[List[str]] = None) -> None:
    """Write a DataFrame as ONE delimited text file at `path`, atomically: the bytes of
    pandas' `DataFrame.to_csv(path, sep=sep, index=False, header=header)` of its rows
    (`curation.tsv`: quoted where pandas quotes, values as they are, spaces included).

    Rows are sorted by `order_by` (a global sort: partition i holds rows before those of
    partition i+1) so that output bytes do not depend on the input partitioning; columns
    named in `order_only` (e.g. a seeded shuffle key) are used for that order and then
    left out of the file. No task and no driver holds all rows: the Python workers format
    each Arrow batch with pandas' own `to_csv` (`text_batches`), Spark writes one part
    file per partition, and `concat_files` joins header and parts in partition order.
    """
    from curation.tsv import header_text

    tmp = _new_tmp(spark, path)
    parts_dir = tmp + ".parts"
    try:
        rows = df.orderBy(*order_by) if order_by else df
        if order_only:
            rows = rows.drop(*order_only)
        head = header_text(rows.columns, sep) if header else ""
        write_text_parts(rows, parts_dir, sep)
        concat_files(spark, head.encode("utf-8"), part_files(spark, parts_dir), tmp)
        fs, hdst = _fs(spark, path)
        if fs.exists(hdst):
            fs.delete(hdst, True)
        rename(spark, tmp, path)
    finally:
        delete(spark, parts_dir)
        delete(spark, tmp)


def text_batches(sep: str = "\t"):
    """A `mapInArrow` function: each Arrow batch as one string row, its rows formatted by
    pandas' `to_csv` without the last line end (Spark's text writer adds it back).

    Integer columns become pandas' nullable integers, so a null is an empty field and the
    other values stay integers (`1`, not `1.0`); strings, floats and booleans convert as
    `toPandas` converts them."""
    def run(batches):
        import pandas as pd
        import pyarrow as pa

        from curation.tsv import LINE_END, frame_text

        ints = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
                pa.int64(): pd.Int64Dtype()}
        for batch in batches:
            if batch.num_rows == 0:
                continue
            text = frame_text(batch.to_pandas(types_mapper=ints.get), sep=sep)
            yield pa.RecordBatch.from_arrays([pa.array([text[:-len(LINE_END)]], pa.string())], names=["text"])

    return run


def write_text_parts(rows, out: str, sep: str = "\t") -> None:
    """`rows` formatted as TSV lines (no header) into the directory `out`: one part file per
    partition, in the partition's row order (`part_files` lists them in partition order)."""
    (rows.mapInArrow(text_batches(sep), "text string")
     .write.option("lineSep", "\n").mode("overwrite").text(out))


def part_files(spark, directory: str) -> List[str]:
    """The `part-<partition>-...` files of a Spark output directory, in partition order."""
    parts = [p for p in list_files(spark, directory) if p.rsplit("/", 1)[-1].startswith("part-")]
    return sorted(parts, key=lambda p: int(p.rsplit("/", 1)[-1].split("-")[1].split(".")[0]))


def concat_files(spark, head: bytes, parts: List[str], path: str) -> None:
    """`head` followed by the files `parts`, as one new file `path`; the bytes are streamed
    (1 MiB at a time) by the driver's JVM through Hadoop, never held whole."""
    jvm = _jvm(spark)
    fs, hpath = _fs(spark, path)
    out = fs.create(hpath, True)
    try:
        out.write(bytearray(head))
        for part in parts:
            pfs, hpart = _fs(spark, part)
            stream = pfs.open(hpart)
            try:
                jvm.org.apache.hadoop.io.IOUtils.copyBytes(stream, out, 1 << 20, False)
            finally:
                stream.close()
    finally:
        out.close()


def local_path(path: str) -> Optional[str]:
    """The local file-system path of `path` when it is local (plain path, file:/ or file:///)."""
    if path.startswith("file:"):
        rest = path[len("file:"):]
        return "/" + rest[2:].lstrip("/") if rest.startswith("//") else rest
    if "://" in path:
        return None
    return os.path.abspath(path)


# ---------------------------------------------------------------- local outputs (jobs without Spark)
def local_out(cfg, key: str = "out") -> str:
    """The local path of config field `key` (jobs that run without Spark write local files only)."""
    path = local_path(getattr(cfg, key))
    if path is None:
        raise ConfigError(key, f"must be a local path (this job runs without Spark), got {getattr(cfg, key)!r}")
    return path


def write_local(path: str, write: Callable[[str], None]) -> None:
    """Write a local file atomically: `write(tmp)`, then rename into place (stale
    temporary files of a killed run are removed first)."""
    import glob as _glob

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    for stale in _glob.glob(_glob.escape(path) + ".__tmp-*"):
        os.remove(stale)
    tmp = f"{path}.__tmp-{uuid.uuid4().hex[:8]}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_local_bytes(path: str, data: bytes) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    write_local(path, write)


def finish_local_file(path: str, cfg, report: StageReport) -> None:
    """The config/report sidecars of a local single-file output (as `finish_file`), and
    the report's summary line."""
    write_local_bytes(sidecar(path, CONFIG_NAME, False), config_to_yaml(cfg).encode("utf-8"))
    write_local_bytes(sidecar(path, REPORT_NAME, False), report.to_json().encode("utf-8"))
    print(report.summary())

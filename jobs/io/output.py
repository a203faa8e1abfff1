"""Atomic stage outputs, sidecar config/report files and file-system access.

Every path goes through the one file-system layer `udfs.files` (local paths with `os`;
with a session, other schemes through the session's Hadoop FileSystem, so `hdfs://`,
`s3a://`, `gs://` work where Spark reads them; without one, fsspec).

A stage output is complete when its report exists: outputs are written under a temporary
name, the config and report are added, and only then is it renamed into place. There is
one temporary-file scheme (`write_via_tmp` for files, `atomic_dir` for datasets): a new
`<out>.__tmp-<id>` (`udfs.files.tmp_name`), put in place by `replace_path`; a killed job
leaves at most a `*.__tmp-*` sibling, which the next run writing `<out>` removes. (The
parquet sink's `_attempts/` files inside such a temporary folder are Spark's task-commit
protocol: one file per task attempt, the accepted one kept; see `udfs/parquet_sink.py`.)

Directory outputs (parquet datasets) carry `_config.yaml` and `_report.json` inside;
single-file outputs (TSV, frequency files) carry `<file>.config.yaml` / `<file>.report.json`.

What a job may write (checked here for every output, whatever the job; see `guarded`):
- no output equals, lies inside or contains an input of the job (or of the whole
  `laionet run`): `check_output` refuses it, before anything is renamed;
- an existing output is replaced only when its `_config.yaml` / `<file>.config.yaml`
  says the same job wrote it (first line `# curate <job> (<config class>)`), when it is an
  empty folder, or with `--overwrite`;
- a replace moves the old output aside (`<out>.__old-<id>`), moves the new one into place,
  then deletes the old (`replace_path`); a local file is replaced by one atomic rename. The
  next run writing the same output restores or removes what a kill left (`recover`).
"""
from __future__ import annotations

import json
import os
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Tuple

import yaml

from curation.errors import ConfigError, InputError
from curation.paths import overlap
from curation.report import StageReport
from udfs import files
from jobs.framework.config import config_inputs, config_keys, config_to_dict, config_to_yaml, output_fields, overlap_message, path_kind

CONFIG_NAME = "_config.yaml"
REPORT_NAME = "_report.json"


# ---------------------------------------------------------------- file system (udfs/files.py)
# Every file operation goes through the one layer `udfs.files` (its docstring states the
# rule); these are its calls in the jobs' argument order (session first).
def _jvm(spark):
    return spark.sparkContext._jvm


def _fs(spark, path: str):
    """(Hadoop FileSystem, Hadoop Path) of `path` through the session."""
    return files.HadoopFS(spark).fs(path)


def qualify(spark, path: str) -> str:
    """The fully qualified URI of `path` (relative paths resolve as the user typed them)."""
    return files.HadoopFS(spark).qualify(path)


def exists(spark, path: str) -> bool:
    return files.exists(path, spark)


def delete(spark, path: str) -> None:
    files.delete(path, spark)


def rename(spark, src: str, dst: str) -> None:
    files.rename(src, dst, spark)


def list_files(spark, path: str) -> List[str]:
    """Files directly under a directory (sorted)."""
    return files.list_files(path, spark)


def glob(spark, pattern: str) -> List[str]:
    return files.glob(pattern, spark)


def remove_stale_tmp(spark, path: str) -> List[str]:
    """Delete `<path>.__tmp-*` siblings left by a killed run (returns what was removed).

    Two runs writing the same output at the same time are not supported: the later one
    removes the earlier one's temporary output.
    """
    return files.remove_stale_tmp(path, spark)


def new_tmp(spark, path: str) -> str:
    """The temporary name of a new output `path` (`<path>.__tmp-<id>`, `udfs.files.tmp_name`),
    after removing what a killed run left there (stale temporaries; a half-done replace)."""
    remove_stale_tmp(spark, path)
    recover(spark, path)
    return files.tmp_name(path)


def _local_for_hadoop(spark, path: str) -> Optional[str]:
    """The local path of `path` when the session's Hadoop would resolve it locally."""
    return files.local_for(spark, path)


local_path = files.local_path


# ---------------------------------------------------------------- replacing an output safely
#: tests set this to a function of the step name ("aside", "place", "delete") to stop a
#: replace there, as a kill would
STEP_HOOK: Optional[Callable[[str], None]] = None


def _step(name: str) -> None:
    if STEP_HOOK is not None:
        STEP_HOOK(name)


def recover(spark, path: str) -> Optional[str]:
    """Undo what a replace killed half-way left at `path`: when `path` is missing and an
    `<path>.__old-*` holds the previous output, move it back (returned); any other
    `__old-*` (the kill came after the new output was in place) is deleted."""
    fs, p = files.fs_for(path, spark)
    olds = fs.glob(f"{p}.__old-*")
    restored = None
    if olds and not fs.exists(p):
        restored = olds[-1]
        fs.rename(restored, p)
        olds = olds[:-1]
    for old in olds:
        fs.delete(old)
    return restored


def replace_path(spark, new: str, dst: str) -> None:
    """Move the complete output `new` to `dst`, replacing what is there (`spark` may be
    None: local paths, or fsspec for other schemes).

    A local file is replaced by one rename (atomic: `udfs.files.put`). Otherwise the old
    output is moved aside to `<dst>.__old-<id>`, the new one moved into place, then the old
    deleted: a kill leaves the complete old output (at `dst`, or aside, where `recover`
    finds it) or the complete new one. On hdfs:// each rename is atomic; on s3a:// a rename
    is a copy and a delete, so a kill during one can leave a partial copy at the new name
    (docs/cluster.md).
    """
    fs, d = files.fs_for(dst, spark)
    _, n = files.fs_for(new, spark)
    recover(spark, dst)
    if not fs.exists(d) or (fs is files.LocalFS and os.path.isfile(n) and os.path.isfile(d)):
        _step("place")
        files.put(n, d, spark)  # one rename: onto a free name, or atomically over a local file
        return
    old = f"{d}.__old-{uuid.uuid4().hex[:8]}"
    _step("aside")
    fs.rename(d, old)
    _step("place")
    fs.rename(n, d)
    _step("delete")
    fs.delete(old)


def write_via_tmp(spark, path: str, write: Callable[[str], None], put=None,
                  family: Optional[str] = None) -> None:
    """THE temporary-file scheme of every file this package writes: `write(tmp)` fills a
    new `<path>.__tmp-<id>` (stale ones of a killed run removed first), then
    `put(spark, tmp, path)` puts it in place (default `replace_path`: the old file stays
    until the new one is complete); the temporary never outlives the call. `spark` may be
    None (jobs without a session; `write` then gets a local path or fsspec URL).
    `family`: for a file whose name holds a count (`..._<N>.tsv`), its name without the
    count: the temporary is `<family>.__tmp-<id>`, so a killed run's leftover is removed
    whatever count it would have had."""
    tmp = new_tmp(spark, family or path)
    try:
        write(tmp)
        (put or replace_path)(spark, tmp, path)
    finally:
        delete(spark, tmp)


def write_bytes_via_tmp(spark, path: str, data: bytes, put=None) -> None:
    """`write_via_tmp` of `data`."""
    write_via_tmp(spark, path, lambda tmp: files.create(tmp, data, spark), put)


# ---------------------------------------------------------------- what a job may write
@dataclass
class _Guard:
    #: "<job name> (<config class>)": who writes
    job: str
    cls: type
    cfg: Any
    #: (option, path) of every input of the job (and of the enclosing `laionet run`)
    inputs: List[Tuple[str, str]]
    overwrite: bool


_GUARDS: List[_Guard] = []


def job_id(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


@contextmanager
def guarded(cfg, name: Optional[str] = None, overwrite: Optional[bool] = None,
            inputs: Optional[List[Tuple[str, str]]] = None, inherit: bool = True) -> Iterator[None]:
    """Check every output written inside this block (`execute` enters it for each job,
    `laionet run` for each stage): none may overlap an input (the inputs of `cfg` and of
    any enclosing block, unless `inherit` is off: a job that makes one of its own inputs
    runs the making job with that job's inputs only), and an existing one is replaced only
    when the same job wrote it (its sidecar names the config class of `cfg`) or
    `overwrite` is set (inherited)."""
    outer = _GUARDS[-1] if _GUARDS else None
    ins = (list(outer.inputs) if outer and inherit else []) + list(config_inputs(cfg) if inputs is None else inputs)
    if overwrite is None:
        overwrite = outer.overwrite if outer else False
    cls = type(cfg)
    _GUARDS.append(_Guard(f"{name or cls.__name__} ({job_id(cls)})", cls, cfg, ins, bool(overwrite)))
    try:
        yield
    finally:
        _GUARDS.pop()


def _guard() -> Optional[_Guard]:
    return _GUARDS[-1] if _GUARDS else None


def _option_of(cfg, path: str) -> str:
    """The option whose value `path` is (or lies under), for messages."""
    p = path.rstrip("/")
    best = ("output", "")
    for name, value in output_fields(cfg):
        v = str(value).rstrip("/")
        if v and (p == v or p.startswith(v + "/") or p.startswith(v + ".")) and len(v) > len(best[1]):
            best = (name, v)
    return "--" + best[0].replace("_", "-")


def _qualified(spark, path: str) -> str:
    if spark is None:
        return path
    try:
        return qualify(spark, path)
    except Exception:  # an unknown scheme: compare as typed
        return path


def overlap_error(out_option: str, out: str, inputs, spark=None) -> Optional[str]:
    """The one-line message when output `out` overlaps one of `inputs` [(option, path)]."""
    q = _qualified(spark, out)
    for option, inp in inputs:
        rel = overlap(q, _qualified(spark, inp))
        if rel:
            return overlap_message(out_option, out, option, inp, rel)
    return None


def _sidecar_job(text: str) -> Optional[str]:
    m = re.match(r"# curate .* \(([\w.]+)\)\n", text)
    return m.group(1) if m else None


def _written_by(spark, path: str, cls) -> bool:
    """True when the output at `path` carries a config sidecar of the job with config `cls`
    (a folder: `_config.yaml` inside, or `<folder>.config.yaml` beside for folders whose
    content another tool owns, as img2dataset's; a file: `<file>.config.yaml`)."""
    fs, p = files.fs_for(path, spark)
    candidates = [sidecar(p, CONFIG_NAME, False)]
    if fs.isdir(p):
        candidates.insert(0, sidecar(p, CONFIG_NAME, True))
    for config in candidates:
        if not fs.exists(config):
            continue
        try:
            text = fs.read_bytes(config).decode("utf-8")
            who = _sidecar_job(text)
            if who is not None:
                return who == job_id(cls)
            data = yaml.safe_load(text)  # a sidecar from before the first line named the job
            return isinstance(data, dict) and set(data) == set(config_keys(cls))
        except Exception:
            return False
    return False


def check_output(spark, path: str) -> None:
    """Refuse (InputError, one line) to write `path` when it overlaps an input of the job,
    or when something is there that this job did not write (unless --overwrite). Outside
    a `guarded` block (library calls) nothing is checked."""
    g = _guard()
    if g is None:
        return
    option = _option_of(g.cfg, path)
    msg = overlap_error(option, path, g.inputs, spark)
    if msg:
        raise InputError(msg)
    if g.overwrite:
        return
    recover(spark, path)
    fs, p = files.fs_for(path, spark)
    if not fs.exists(p) or fs.is_empty_dir(p) or _written_by(spark, path, g.cls):
        return
    raise InputError(f"output {option} {path} exists and was not written by `curate {g.job.split(' (')[0]}` "
                     f"(it has no {CONFIG_NAME} / <file>.config.yaml of that job): pass --overwrite to "
                     "replace it, or choose another path")


def check_known_outputs(cfg) -> None:
    """Before Spark starts: `check_output` on every local output field (kind "output") of
    `cfg` (outputs on other file systems, and names known only later, are checked when
    they are written)."""
    for _, path in output_fields(cfg):
        if path_kind(type(cfg), _) == "output" and local_path(path) is not None:
            check_output(None, path)


def claim_folder(spark, path: str, cfg) -> None:
    """Mark a folder that another tool fills (img2dataset's) as this job's output before it
    is written: `<folder>.config.yaml` now, its report removed until `finish_file`."""
    path = path.rstrip("/")
    delete(spark, sidecar(path, REPORT_NAME, False))
    write_sidecar(spark, sidecar(path, CONFIG_NAME, False), sidecar_yaml(cfg).encode("utf-8"))


def commit_file(spark, new: str, path: str) -> None:
    """Put the complete file `new` at `path` (single-file outputs): check it may be written
    (`check_output`), claim it (its config sidecar first, the old report removed: the
    output reads incomplete until `finish_file`), then replace it safely."""
    check_output(spark, path)
    g = _guard()
    if g is not None:
        fs, p = files.fs_for(path, spark)
        fs.delete(sidecar(p, REPORT_NAME, False))
        write_sidecar(spark, sidecar(path, CONFIG_NAME, False), sidecar_yaml(g.cfg, g.job).encode("utf-8"))
    replace_path(spark, new, path)


def sidecar_yaml(cfg, job: Optional[str] = None) -> str:
    """The `_config.yaml` text: the writing job on the first line (a YAML comment), then
    the config."""
    g = _guard()
    if job is None:
        job = g.job if g is not None and g.cls is type(cfg) else f"{type(cfg).__name__} ({job_id(type(cfg))})"
    return f"# curate {job}\n" + config_to_yaml(cfg)


def write_sidecar(spark, path: str, data: bytes) -> None:
    """A sidecar file: written by the one temporary-file scheme, never checked (it belongs
    to its output); `spark` may be None."""
    write_bytes_via_tmp(spark, path, data)


def read_bytes(spark, path: str, what: str = "input") -> bytes:
    """A whole file's bytes, for an input the driver parses whole, through the file-system
    layer (`spark` may be None). A missing file is one line: `<what> not found: <path>`."""
    fs, p = files.fs_for(path, spark)
    if not fs.exists(p):
        raise InputError(f"{what} not found: {path}")
    if fs.isdir(p):
        raise InputError(f"{what} {path} is a directory, expected a file")
    return fs.read_bytes(p)


def read_text(spark, path: str) -> str:
    return files.read_text(path, spark)


def write_bytes(spark, path: str, data: bytes) -> None:
    """Write a small binary file (e.g. a PNG plot) atomically (temporary name, then a safe
    replace); checked as every output (`check_output`)."""
    check_output(spark, path)
    write_bytes_via_tmp(spark, path, data, commit_file)


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


def check_inputs(spark, cfg, local_only: bool = False) -> None:
    """Every input path of `cfg` (`checked_inputs`) exists, through the one file-system
    layer: else one line naming the option and the path (InputError; an unsupported scheme
    says what to install). `local_only`: only the local ones (before Spark starts; the
    others are checked through the session once it exists)."""
    from jobs.framework.config import checked_inputs

    for name, path in checked_inputs(cfg):
        if local_only and files.local_path(path) is None:
            continue
        option = "--" + name.replace("_", "-")
        try:
            found = glob(spark, path) if files.is_glob(path) else exists(spark, path)
        except files.UnsupportedScheme as e:
            raise InputError(f"{option} {e}") from None
        if not found:
            raise InputError(f"{option} {path}: not found" + (" (no file matches)" if files.is_glob(path) else ""))


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
    check_output(spark, out)  # before any work
    tmp = new_tmp(spark, out)
    try:
        yield tmp
        if not exists(spark, tmp):
            files.makedirs(tmp, spark)
        # inside the temporary directory nothing is visible yet: plain writes suffice
        files.create(sidecar(tmp, CONFIG_NAME, True), sidecar_yaml(cfg).encode("utf-8"), spark)
        files.create(sidecar(tmp, REPORT_NAME, True), report.to_json().encode("utf-8"), spark)
        check_output(spark, out)  # again: something may have appeared there meanwhile
        replace_path(spark, tmp, out)
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
    write_sidecar(spark, sidecar(path, CONFIG_NAME, False), sidecar_yaml(cfg).encode("utf-8"))
    write_sidecar(spark, sidecar(path, REPORT_NAME, False), report.to_json().encode("utf-8"))


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

    def write(tmp: str) -> None:
        parts_dir = tmp + ".parts"
        try:
            rows = df.orderBy(*order_by) if order_by else df
            if order_only:
                rows = rows.drop(*order_only)
            head = header_text(rows.columns, sep) if header else ""
            write_text_parts(rows, parts_dir, sep)
            concat_files(spark, head.encode("utf-8"), part_files(spark, parts_dir), tmp)
        finally:
            delete(spark, parts_dir)

    write_via_tmp(spark, path, write, commit_file)


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


# ---------------------------------------------------------------- local outputs (jobs without Spark)
def local_out(cfg, key: str = "out") -> str:
    """The local path of config field `key` (jobs that run without Spark write local files only)."""
    path = local_path(getattr(cfg, key))
    if path is None:
        raise ConfigError(key, f"must be a local path (this job runs without Spark), got {getattr(cfg, key)!r}")
    return path


def write_local(path: str, write: Callable[[str], None]) -> None:
    """Write a local file of a job without a session: `write(tmp)`, then put in place
    (`write_via_tmp`, checked as every output)."""
    check_output(None, path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_via_tmp(None, path, write, commit_file)


def write_local_bytes(path: str, data: bytes) -> None:
    write_local(path, lambda tmp: files.create(tmp, data))


def finish_local_file(path: str, cfg, report: StageReport) -> None:
    """The config/report sidecars of a local single-file output (as `finish_file`), and
    the report's summary line."""
    write_sidecar(None, sidecar(path, CONFIG_NAME, False), sidecar_yaml(cfg).encode("utf-8"))
    write_sidecar(None, sidecar(path, REPORT_NAME, False), report.to_json().encode("utf-8"))
    print(report.summary())

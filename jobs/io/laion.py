"""The reader of LAION parts for every job: `read_laion(spark, path, skip_bad_files)`.

Parts are `part-<n>-*.parquet` files of LAION-400M (or any parquet with a TEXT column);
`laion_index` = part number x INDEX_SHIFT_PER_PART + row position in the part, the
original's id, computed from the file name and the row's position (`laion_index_column`).
The footers are read first (rows per file, columns), so a bad file, a missing or mistyped
column and an empty folder are one line naming the file before any task runs.
"""
from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from curation.errors import InputError
from curation.laion import (INDEX_COLUMN, INDEX_SHIFT_PER_PART, PART_FILE_REGEX, TEXT_COLUMN, file_name,
                            require_part_number)
from curation.report import StageReport
from jobs.io import output


@dataclass
class LaionParts:
    """LAION rows (`df`: all columns + `laion_index`) and what reading them found."""
    df: DataFrame
    files: List[str]
    #: files that could not be read and were skipped (--skip-bad-files)
    bad_files: List[str] = field(default_factory=list)
    #: rows of the readable files according to their parquet footers
    footer_rows: int = 0

    def describe(self, report: StageReport) -> None:
        """Add the input facts to a stage report whose `read` is set."""
        report.info["input_files"] = len(self.files)
        if self.bad_files:
            report.info["skipped_bad_files"] = len(self.bad_files)
            report.info["skipped_bad_file_paths"] = self.bad_files
        if report.read < self.footer_rows:  # only with --skip-bad-files: Spark stopped at bad pages
            report.info["rows_in_unreadable_pages"] = self.footer_rows - report.read
            print(f"warning: {self.footer_rows - report.read:,} rows of corrupt pages were skipped",
                  file=sys.stderr)


def read_laion(spark, path: str, skip_bad_files: bool = False,
               columns: Optional[List[str]] = None) -> LaionParts:
    """Read LAION parts (a directory, a glob, one file, any Hadoop URI) lazily with Spark.

    Every part's parquet footer is checked on the driver first, so that bad input fails
    before any work with a message naming the file: a name without a part number, two
    files with one part number, no `TEXT` column or a non-string one, columns that differ
    from the first part, more rows than the index reserves for a part. A file whose
    footer cannot be read is an error too, or with `skip_bad_files` a warning (the
    caller counts it in its report). `laion_index` is computed inside Spark from the file
    name and the parquet row position (`_metadata.row_index`), which is correct whatever
    the splits of the file. `columns`: only these columns (and `laion_index`) in `df`.
    """
    files = _list_parquet_files(spark, path)
    good: List[str] = []
    sizes: List[int] = []
    bad: List[str] = []
    reference: Optional[Dict[str, str]] = None
    reference_file = ""
    parts: Dict[int, str] = {}
    rows = 0
    schema = None  # the parts' Spark schema when their footers gave one (local parts)
    for f in files:
        part = require_part_number(f)
        if part in parts:
            raise InputError(f"{f}: part number {part} is also the part number of {parts[part]}; "
                             "their laion_index values would collide")
        parts[part] = f
        try:
            found, n_rows, size, arrow_schema = _parquet_footer(spark, f)
        except Exception as e:  # py4j wraps the Java exception; the first line says what
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            if not skip_bad_files:
                raise InputError(f"{f}: unreadable parquet file ({reason}); "
                                 "use --skip-bad-files to skip such files") from None
            print(f"warning: skipping unreadable parquet file {f} ({reason})", file=sys.stderr)
            bad.append(f)
            continue
        _check_text_column(f, found)
        if reference is None:
            reference, reference_file = found, f
            schema = _spark_schema(arrow_schema)
        else:
            _check_same_columns(f, found, reference_file, reference)
        if n_rows >= INDEX_SHIFT_PER_PART:
            raise InputError(f"{f}: {n_rows:,} rows; a part may hold at most {INDEX_SHIFT_PER_PART - 1:,} "
                             "rows for laion_index = part * 100,000,000 + row")
        rows += n_rows
        good.append(f)
        sizes.append(size)
    if not good:
        raise InputError(f"no readable LAION parquet parts in {path}")
    # a file whose footer is fine can still hold corrupt pages: Spark then fails naming
    # it, or with skip_bad_files stops reading that file (the rows lost are reported)
    return LaionParts(laion_frame(spark, good, sizes, skip_bad_files, schema, columns), good, bad, rows)


#: up to this many files, the offset is a CASE WHEN per row; beyond, a map lookup
_WHEN_CHAIN_MAX_FILES = 64


def laion_frame(spark, files: List[str], sizes: Optional[List[int]] = None,
                skip_bad_files: bool = False, schema=None, columns: Optional[List[str]] = None) -> DataFrame:
    """All columns of the parts (or `columns`) plus `laion_index`, lazily (one scan over
    all files).

    `schema`: the parts' Spark schema when the caller knows it (from the footers it read),
    which spares Spark inferring it (reading a footer again through the JVM: ~0.2 s)."""
    reader = spark.read.option("ignoreCorruptFiles", str(skip_bad_files).lower())
    if schema is not None:
        reader = reader.schema(schema)
    return reader.parquet(*files).select(*(columns or ["*"]), laion_index_column(files, sizes))


def laion_index_column(files: Optional[List[str]] = None, sizes: Optional[List[int]] = None):
    """`part * 100,000,000 + row position in the file`, from Spark's file metadata.

    The files were checked on the driver (every name has a part number; names are unique
    because part numbers are). The part offset of a row's file is looked up per row:
    - by file size, when the files' sizes are distinct: comparing a long per row costs
      nothing, where comparing file names cost ~10% of the label job's JVM time;
    - else by file name;
    either as a CASE (up to `_WHEN_CHAIN_MAX_FILES` files) or a literal map (beyond);
    - a file not in the lists (it changed since it was listed) by the regex that takes the
      number out of its name (3x dearer per row, always right).
    The whole column is one SQL expression: one parse, one py4j call (~30 ms less than
    building it from Column objects, part of every job's start).
    """
    name, size, row = "_metadata.file_name", "_metadata.file_size", "_metadata.row_index"
    offset = f"CAST(regexp_extract({name}, {_sql_string(PART_FILE_REGEX)}, 1) AS BIGINT) * {INDEX_SHIFT_PER_PART}"
    if files:
        offsets = [require_part_number(f) * INDEX_SHIFT_PER_PART for f in files]
        by_size = sizes is not None and len(set(sizes)) == len(files)
        key = size if by_size else name
        literal = (lambda k: str(int(k))) if by_size else _sql_string
        pairs = sorted(zip(sizes if by_size else [file_name(f) for f in files], offsets))
        if len(pairs) > _WHEN_CHAIN_MAX_FILES:
            found = f"map({', '.join(f'{literal(k)}, {int(v)}L' for k, v in pairs)})[{key}]"
        else:
            found = f"CASE {key} {' '.join(f'WHEN {literal(k)} THEN {int(v)}L' for k, v in pairs)} END"
        offset = f"coalesce({found}, {offset})"  # null for a file not listed
    return F.expr(f"{offset} + {row}").alias(INDEX_COLUMN)


def _sql_string(value: str) -> str:
    """A Spark SQL string literal of `value` (quotes and backslashes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _list_parquet_files(spark, path: str) -> List[str]:
    """The parquet files of a directory / glob / file (hidden and `_` files excluded)."""
    output.require_input(spark, path, "LAION parts")
    if any(ch in path for ch in "*?[{"):
        matches = output.glob(spark, path)
    else:
        matches = [path]
    files: List[str] = []
    for m in matches:
        files.extend(output.list_files(spark, m))
    files = sorted(f for f in files
                   if f.endswith(".parquet") and not file_name(f).startswith(("_", ".")))
    if not files:
        raise InputError(f"LAION parts not found: no .parquet files in {path}")
    return files


def _parquet_footer(spark, path: str):
    """({column: type}, rows, bytes, Arrow schema or None) of a parquet file: a local file
    with pyarrow (~1 ms), anything else through Hadoop's FileSystem (a few py4j round
    trips, ~30 ms; no Arrow schema)."""
    local = output.local_path(path)
    if local is not None:
        import pyarrow.parquet as pq

        meta = pq.read_metadata(local)
        # pyarrow prints `optional binary field_id=-1 TEXT (String);`, parquet-mr `... TEXT (STRING);`
        columns = _top_level_columns(re.sub(r" field_id=-?\d+", "", str(meta.schema)))
        try:
            arrow_schema = meta.schema.to_arrow_schema()
        except Exception:  # a parquet type Arrow does not map: Spark infers the schema
            arrow_schema = None
        return columns, int(meta.num_rows), os.path.getsize(local), arrow_schema
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    file = jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(jvm.org.apache.hadoop.fs.Path(path), conf)
    reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(file)
    try:
        # one round trip for the schema (py4j calls are slow): its text, parsed here
        columns = _top_level_columns(str(reader.getFileMetaData().getSchema().toString()))
        return columns, int(reader.getRecordCount()), int(file.getLength()), None
    finally:
        reader.close()


def _spark_schema(arrow_schema):
    """The Spark schema of parts whose Arrow schema is `arrow_schema`, or None (Spark then
    infers it) for types that do not map one to one: timestamps (parquet INT96 and
    time-zone rules differ), unsigned integers, anything `from_arrow_schema` rejects."""
    if arrow_schema is None:
        return None
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema

    def plain(t) -> bool:
        if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_unsigned_integer(t):
            return False
        if pa.types.is_dictionary(t) or pa.types.is_large_string(t) or pa.types.is_large_binary(t):
            return False
        if pa.types.is_struct(t):
            return all(plain(f.type) for f in t)
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            return plain(t.value_type)
        if pa.types.is_map(t):
            return plain(t.key_type) and plain(t.item_type)
        return True

    if not all(plain(f.type) for f in arrow_schema):
        return None
    try:
        return from_arrow_schema(arrow_schema)
    except Exception:
        return None


_SCHEMA_FIELD_RE = re.compile(r"^\s*(?:required|optional|repeated)\s+(\S+)\s+([^\s;{(]+)\s*(\([^)]*\))?")


def _top_level_columns(schema_text: str) -> Dict[str, str]:
    """{column: type} of the top-level fields of a parquet schema's text, the type without
    its repetition (`binary (STRING)`, `int64`, `group (LIST)` for nested columns)."""
    columns: Dict[str, str] = {}
    depth = 0
    for line in schema_text.splitlines():
        found = _SCHEMA_FIELD_RE.match(line)
        if depth == 1 and found:
            kind, name, annotation = found.groups()
            columns[name] = kind + (f" {annotation.upper()}" if annotation else "")
        depth += line.count("{") - line.count("}")
    return columns


def _check_text_column(path: str, columns: Dict[str, str]) -> None:
    if TEXT_COLUMN not in columns:
        raise InputError(f"{path}: no column {TEXT_COLUMN} (columns: {', '.join(columns)})")
    if columns[TEXT_COLUMN] != "binary (STRING)":
        raise InputError(f"{path}: column {TEXT_COLUMN} has parquet type {columns[TEXT_COLUMN]!r}, not a string")


def _check_same_columns(path: str, columns: Dict[str, str], first: str, expected: Dict[str, str]) -> None:
    for name in sorted(set(expected) | set(columns)):
        if columns.get(name) != expected.get(name):
            raise InputError(f"{path}: column {name} is {columns.get(name) or 'missing'} "
                             f"but {expected.get(name) or 'missing'} in {first}")


@contextmanager
def spark_read_errors() -> Iterator[None]:
    """Turn Spark's failure to read a file into a one-line InputError naming the file."""
    try:
        yield
    except Exception as e:
        message = str(e)
        found = re.search(r"(?:Error while reading file|while reading file) (\S+?)\.?(?:\s|$)", message)
        if found is None:
            raise
        detail = re.search(r"Data type mismatches when reading Parquet column (\S+)", message)
        what = f"column {detail.group(1)} has the wrong type" if detail else "unreadable parquet data"
        raise InputError(f"{found.group(1)}: {what}") from None



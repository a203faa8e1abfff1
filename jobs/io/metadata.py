"""Reading LAIONet metadata: ours, or the authors' published files as they are.

Every job that takes LAIONet metadata (`laionet download`, `arrange`, `subsets`,
`match-freq`, and `t2t-subset` for its LAION rows) reads it with `read_metadata`, which
finds the LAION index of each row:

- a `laion_index` column (what our jobs write), else
- the pandas index of a file written by `DataFrame.to_parquet` with its index (the
  authors' files: `laionet_thresh07_success3256561.parquet`,
  `subset_sm_filt_thresh0.7_total4580608_...parquet`): the column named in the file's
  pandas metadata (`index_columns` under the schema's `pandas` key), `__index_level_0__`
  for an unnamed index, or the index's own name; a file that lost that metadata (Spark
  rewrote it) still has `__index_level_0__`.

The index column is renamed to `laion_index`; it must be an integer column. A file with
neither is one line naming the file and its columns (exit 2). A pandas `RangeIndex`
(stored as metadata only, no column) is no LAION index.
"""
from __future__ import annotations

import json
import os
from typing import Iterable, List, Optional

from curation.errors import InputError
from jobs.io import output
from udfs.files import isdir

INDEX = "laion_index"
#: the column pandas writes for an unnamed index
PANDAS_UNNAMED_INDEX = "__index_level_0__"
INTEGER_TYPES = ("bigint", "int", "smallint", "tinyint")


def data_files(spark, path: str) -> List[str]:
    """The parquet data files Spark reads for `path` (a file, a directory, a glob), sorted."""
    matches = output.glob(spark, path) if any(ch in path for ch in "*?[{") else [path]
    files: List[str] = []
    for m in matches:
        if not isdir(m, spark):
            files.append(m)
        else:
            files.extend(f for f in output.list_files(spark, m)
                         if not os.path.basename(f).startswith(("_", ".")))
    return sorted(files)


def pandas_metadata(spark, file: str) -> Optional[dict]:
    """The pandas metadata (the `pandas` key of the parquet footer) of one file, or None."""
    local = output.local_path(file)
    if local is not None:
        import pyarrow.parquet as pq

        try:
            raw = (pq.read_metadata(local).metadata or {}).get(b"pandas")
        except Exception:  # not a parquet footer pyarrow reads: Spark will say what is wrong
            return None
    else:
        jvm = spark.sparkContext._jvm
        conf = spark.sparkContext._jsc.hadoopConfiguration()
        hfile = jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(jvm.org.apache.hadoop.fs.Path(file), conf)
        reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(hfile)
        try:
            raw = reader.getFileMetaData().getKeyValueMetaData().get("pandas")
        finally:
            reader.close()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def pandas_index_columns(meta: Optional[dict]) -> List[str]:
    """The stored index columns named in pandas metadata (a RangeIndex stores none)."""
    if not meta:
        return []
    return [c for c in meta.get("index_columns", []) if isinstance(c, str)]


def index_column(spark, path: str, columns: Iterable[str], what: str = "metadata") -> str:
    """The column of `path` holding the LAION index (see the module doc), or InputError."""
    columns = list(columns)
    if INDEX in columns:
        return INDEX
    files = data_files(spark, path)
    stored = pandas_index_columns(pandas_metadata(spark, files[0])) if files else []
    if len(stored) > 1:
        raise InputError(f"{what} {path}: a pandas MultiIndex ({', '.join(stored)}) is no LAION index; "
                         f"its columns: {', '.join(columns)}")
    if stored and stored[0] in columns:
        return stored[0]
    if PANDAS_UNNAMED_INDEX in columns:
        return PANDAS_UNNAMED_INDEX
    raise InputError(f"{what} {path}: no '{INDEX}' column and no pandas index; "
                     f"its columns: {', '.join(columns)}")


def has_laion_index(spark, path: str) -> bool:
    """Whether `path` holds metadata with a LAION index (a column or a pandas index)."""
    columns = spark.read.parquet(path).columns
    try:
        index_column(spark, path, columns)
    except InputError:
        return False
    return True


def read_metadata(spark, path: str, what: str = "metadata"):
    """LAIONet metadata as a Spark DataFrame with an integer `laion_index` column."""
    output.require_input(spark, path, what)
    df = spark.read.parquet(path)
    source = index_column(spark, path, df.columns, what)
    kind = dict(df.dtypes)[source]
    if kind not in INTEGER_TYPES:
        named = f"column '{source}'" + ("" if source == INDEX else f" (its pandas index, taken as {INDEX})")
        raise InputError(f"{what} {path}: {named} must be an integer id, got {kind}")
    if source != INDEX:
        df = df.withColumnRenamed(source, INDEX)
    return df


def laion_rows(spark, path: str, without: Iterable[str] = ()):
    """LAION rows with `laion_index`: metadata with a LAION index (a column or a published
    file's pandas index) as it is, else LAION parts (`jobs.io.laion.read_laion`: the
    index from part number and row). Columns in `without` (but `laion_index`) are left
    out, so that a join with rows carrying them has each column once."""
    from jobs.io.laion import read_laion

    output.require_input(spark, path, "LAION rows")
    df = read_metadata(spark, path, "LAION rows") if has_laion_index(spark, path) else read_laion(spark, path).df
    return df.drop(*[c for c in without if c != INDEX and c in df.columns])

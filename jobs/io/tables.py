"""Tables and frequency files: the jsonl / TSV / parquet inputs a job reads by column, and
the class-frequency file with its long-tail plot that every recipe writes.

- `read_table(spark, path, fmt, columns)`: a DataFrame of `columns`, after a cheap check
  (parquet footers, the TSV header line, the first jsonl record) that fails with one line
  naming the file and the missing column before any work.
- `write_frequency_and_plot(spark_or_None, counts_by_label, freq_path)`: the original's
  `classname<TAB>count` file in label order and `<stem>.png` beside it.
"""
from __future__ import annotations

import json
import os
from typing import List, Mapping, Sequence, Tuple

from curation.errors import ConfigError, InputError

FORMATS = ("auto", "jsonl", "tsv", "parquet")
_EXTENSIONS = ((".jsonl", "jsonl"), (".json", "jsonl"), (".jsonl.gz", "jsonl"), (".json.gz", "jsonl"),
               (".tsv", "tsv"), (".tsv.gz", "tsv"), (".parquet", "parquet"))


# ---------------------------------------------------------------- inputs
def detect_format(spark, path: str, fmt: str = "auto") -> str:
    """`fmt`, or the format of `path` told by its extension (a folder: by its data files)."""
    if fmt != "auto":
        return fmt
    from jobs.io import output

    # list_files of a file is the file itself; of a folder, the files in it
    names = [f for match in output.glob(spark, path) for f in output.list_files(spark, match)]
    for name in [path.rstrip("/")] + [n for n in names if not n.rsplit("/", 1)[-1].startswith(("_", "."))]:
        for ext, found in _EXTENSIONS:
            if name.lower().endswith(ext):
                return found
    raise ConfigError("format", f"cannot tell the format of {path} from its name; set --format "
                                f"({', '.join(FORMATS[1:])})")


def table_columns(spark, path: str, fmt: str, what: str = "input") -> Tuple[str, List[str]]:
    """(format, column names) of an input, read cheaply: parquet footers, the TSV header
    line, or the first jsonl record."""
    from pyspark.sql import functions as F

    from jobs.io import output

    output.require_input(spark, path, what)
    fmt = detect_format(spark, path, fmt)
    if fmt == "parquet":
        return fmt, spark.read.parquet(path).columns
    if fmt == "tsv":
        return fmt, _read_tsv(spark, path, what, check=False).drop(output.MALFORMED).columns
    first = spark.read.text(path).where(F.trim("value") != "").limit(1).collect()
    if not first:
        raise InputError(f"{what} {path} is empty")
    try:
        record = json.loads(first[0].value)
    except json.JSONDecodeError as e:
        raise InputError(f"{what} {path}: the first line is not JSON ({e})") from None
    if not isinstance(record, dict):
        raise InputError(f"{what} {path}: the first line is not a JSON object")
    return fmt, list(record)


def _read_tsv(spark, path: str, what: str = "input", check: bool = True):
    """A TSV as pandas reads it (`output.read_tsv`: quotes parsed, values as written)."""
    from jobs.io import output

    return output.read_tsv(spark, path, what, check=check)


def read_table(spark, path: str, fmt: str, columns: Sequence[str], what: str = "input"):
    """A DataFrame of `columns` from a jsonl, TSV (header, read as pandas reads it) or parquet input.

    Fails with one line naming the file and the missing column before any work is done.
    jsonl is read with an explicit all-string schema, so no inference pass runs over it.
    """
    from pyspark.sql.types import StringType, StructField, StructType

    fmt, found = table_columns(spark, path, fmt, what)
    missing = [c for c in columns if c not in found]
    if missing:
        raise InputError(f"{what} {path} ({fmt}) has no column {', '.join(map(repr, missing))}; "
                         f"its columns: {', '.join(found)}")
    if fmt == "parquet":
        df = spark.read.parquet(path)
    elif fmt == "tsv":
        df = _read_tsv(spark, path, what)
        # a TSV is read in one task per file (a quoted newline may sit anywhere): spread the
        # rows before per-row work (hash partitioning: no sort, the same split every time)
        if df.rdd.getNumPartitions() < spark.sparkContext.defaultParallelism:
            df = df.repartition(spark.sparkContext.defaultParallelism, *[df[c] for c in columns])
    else:
        df = spark.read.schema(StructType([StructField(c, StringType()) for c in columns])).json(path)
    return df.select(*columns)


# ---------------------------------------------------------------- frequency file + plot
def plot_path_for(freq_path: str) -> str:
    """Where the plot of a frequency file goes: the same name with `.png`."""
    stem = freq_path[:-4] if freq_path.endswith(".txt") else freq_path
    return stem + ".png"


def write_frequency_and_plot(spark, counts_by_label: Mapping[int, int], freq_path: str,
                             title: str = "") -> Tuple[str, str]:
    """Write the class-frequency file (`classname<TAB>count`, label order) and its long-tail
    plot (`<freq stem>.png`); return (freq_path, png_path).

    `spark` may be None: the paths are then local (jobs that run without Spark).
    """
    from curation.concepts import classnames
    from curation.frequency import frequency_text
    from curation.plots import long_tail_png

    names = classnames()
    text = frequency_text(counts_by_label, names)
    png = long_tail_png({os.path.basename(freq_path): [counts_by_label.get(i, 0) for i in range(len(names))]},
                        title=title)
    png_path = plot_path_for(freq_path)
    if spark is None:
        from jobs.io.output import write_local_bytes

        write_local_bytes(freq_path, text.encode("utf-8"))
        write_local_bytes(png_path, png)
    else:
        from jobs.io import output

        output.write_text(spark, freq_path, text)
        output.write_bytes(spark, png_path, png)
    return freq_path, png_path

"""`curate freq` (concept frequency of a corpus or an output) and `curate freq plot`.

- `curate freq`: count examples per ImageNet class in a caption corpus (captions matched
  to synset lemmas as `curate cls` does) or in any of our TSV/parquet outputs (a `label`,
  `wnid` or `wnids` column), and write the class-frequency file with its long-tail plot.
- `curate freq plot`: draw one or several frequency files on one long-tail figure.

Other jobs use the pieces here: `read_table` (a jsonl/TSV/parquet input with the columns
a job needs, checked before any work) and `write_frequency_and_plot` (the frequency file
and the plot every recipe reports).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence, Tuple

from curation.errors import ConfigError, InputError
from curation.report import StageReport
from jobs.base import Job, main_for
from jobs.config import opt

FORMATS = ("auto", "jsonl", "tsv", "parquet")
_EXTENSIONS = ((".jsonl", "jsonl"), (".json", "jsonl"), (".jsonl.gz", "jsonl"), (".json.gz", "jsonl"),
               (".tsv", "tsv"), (".tsv.gz", "tsv"), (".parquet", "parquet"))


# ---------------------------------------------------------------- inputs
def detect_format(spark, path: str, fmt: str = "auto") -> str:
    """`fmt`, or the format of `path` told by its extension (a folder: by its data files)."""
    if fmt != "auto":
        return fmt
    from jobs import output

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

    from jobs import output

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
    from jobs import output

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
        from jobs.output import write_local_bytes

        write_local_bytes(freq_path, text.encode("utf-8"))
        write_local_bytes(png_path, png)
    else:
        from jobs import output

        output.write_text(spark, freq_path, text)
        output.write_bytes(spark, png_path, png)
    return freq_path, png_path




# ---------------------------------------------------------------- curate freq
BY = ("auto", "caption", "label", "wnid", "wnids")


@dataclass
class FreqConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/config.py)
    PATHS = {"input": "input", "out": "output"}
    input: str = opt(None, "caption corpus or output (jsonl/tsv/parquet file, folder or glob)", required=True)
    out: str = opt(None, "frequency file to write (classname<TAB>count); the plot goes beside it as .png",
                   required=True)
    format: str = opt("auto", "input format", choices=FORMATS)
    by: str = opt("auto", "what assigns classes: an int `label` column, a `wnid` column, a `wnids` array "
                          "column, or matching the caption column (auto: the first of label, wnid, wnids, "
                          "caption that the input has)", choices=BY)
    caption_col: str = opt("caption", "caption column (--by caption)")
    single_label: bool = opt(False, "--by caption: count only captions that match exactly one class")
    compat_unescaped: bool = opt(False, "--by caption: lemmas as unescaped regexes, as the original")
    title: str = opt("", "plot title (default: the input's name)")


@dataclass
class ClassCounts:
    """Examples per class and the rows behind them, from one aggregation."""
    #: examples per class (with `single_label`: of single-class rows only)
    counts: Dict[int, int]
    #: rows with at least one class, and with more than one
    matched: int
    multi_label: int
    #: rows that count: all matched ones, or the single-class ones
    kept: int
    #: rows without class by their `n` (0, or a producer's negative reason code), and
    #: pairs whose value is no class
    without_class: Dict[int, int]
    unknown: int


def count_classes(pairs, single_label: bool = False) -> ClassCounts:
    """Count a DataFrame of (`label`, `n`) pairs: one pair per (row, class of that row),
    `n` = the row's number of classes; a row without class may appear as (null, n <= 0),
    a value that is no class as (null, n > 0).

    A row with n classes gives n pairs, so the rows with n classes are the pairs of
    group n divided by n.
    """
    from pyspark.sql import functions as F

    pairs_by_n: Dict[int, int] = {}
    counts: Dict[int, int] = {}
    unknown = 0
    for g in pairs.groupBy("n", "label").agg(F.count(F.lit(1)).alias("pairs")).collect():
        n, label, k = int(g["n"]), g["label"], int(g["pairs"])
        pairs_by_n[n] = pairs_by_n.get(n, 0) + k
        if label is None:
            unknown += k if n > 0 else 0
        elif n == 1 or not single_label:
            counts[int(label)] = counts.get(int(label), 0) + k
    matched = sum(k // n for n, k in pairs_by_n.items() if n > 0)
    multi = matched - pairs_by_n.get(1, 0)
    return ClassCounts(counts, matched, multi, matched - multi if single_label else matched,
                       without_class={n: k for n, k in pairs_by_n.items() if n <= 0}, unknown=unknown)


def wnid_label(wnid):
    """Column expression: the ImageNet label of a wnid column (aliases such as LAIONet's
    husky wnid accepted; null for anything else)."""
    from pyspark.sql import functions as F

    from curation.concepts import WNID_ALIASES, wnid_to_label

    mapping = dict(wnid_to_label())
    mapping.update({alias: mapping[standard] for alias, standard in WNID_ALIASES.items()})
    return F.create_map(*[F.lit(x) for item in sorted(mapping.items()) for x in item])[wnid]


def _labels_column(by: str, column: str):
    """Each row's class labels as an array column, from a `label`, `wnid` or `wnids`
    column; no value (null, or an empty field) gives no label, a value that is no class
    (text, out of range, unknown wnid) a null element."""
    from pyspark.sql import functions as F

    from curation.concepts import classnames

    col = F.col(column)
    if by == "wnids":
        labels = F.transform(col, wnid_label)
    elif by == "wnid":
        labels = F.array(wnid_label(col))
    else:
        label = col.cast("int")
        labels = F.array(F.when((label >= 0) & (label < len(classnames())), label))
    # no value: null, or an empty TSV field (read as "", as pandas reads it)
    missing = col.isNull() if by == "wnids" else col.isNull() | (col.cast("string") == "")
    return F.when(missing, F.array().cast("array<int>")).otherwise(labels)


def run_freq(spark, cfg: FreqConfig):
    from pyspark.sql import functions as F

    from curation.concepts import classnames
    from jobs import output

    fmt, columns = table_columns(spark, cfg.input, cfg.format)
    by = cfg.by if cfg.by != "auto" else next((c for c in ("label", "wnid", "wnids") if c in columns), "caption")
    column = cfg.caption_col if by == "caption" else by
    df = read_table(spark, cfg.input, fmt, [column])
    n_classes = len(classnames())
    if by == "caption":
        from jobs.cls import match_classes

        found = count_classes(match_classes(df, column, cfg.compat_unescaped), cfg.single_label)
    else:
        labels = _labels_column(by, column)
        found = count_classes(df.select(F.explode_outer(labels).alias("label"), F.size(labels).alias("n")))
        if found.unknown:
            bad = df.where(F.exists(labels, lambda x: x.isNull())).limit(1).collect()[0][0]
            raise InputError(f"input {cfg.input}: column {column!r} holds {bad!r}, which is not an ImageNet-1k "
                             f"class ({'a label 0..%d' % (n_classes - 1) if by == 'label' else 'a wnid'})")
    read = found.matched + sum(found.without_class.values())
    report = StageReport("freq", read=read, kept=found.kept,
                         info={"input": cfg.input, "by": by, "out": cfg.out,
                               "examples_counted": sum(found.counts.values())})
    report.drop("no_class", read - found.matched)
    report.drop("multi_label", found.matched - found.kept)
    _, png_path = write_frequency_and_plot(spark, found.counts, cfg.out,
                                           title=cfg.title or os.path.basename(cfg.input.rstrip("/")))
    report.info["plot"] = png_path
    output.finish_file(spark, cfg.out, cfg, report)
    print(report.summary())
    return report


# ---------------------------------------------------------------- curate freq plot
@dataclass
class FreqPlotConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/config.py)
    PATHS = {"freqs": "input", "out": "output"}
    freqs: List[str] = opt(None, "frequency files (comma-separated; local paths)", required=True)
    out: str = opt(None, "PNG to write (local path)", required=True)
    names: List[str] = opt([], "legend names, one per file (default: the file names)")
    title: str = opt("", "plot title")

    def validate(self):
        if self.names and len(self.names) != len(self.freqs):
            raise ConfigError("names", f"{len(self.names)} names for {len(self.freqs)} frequency files")
        if not self.out.endswith(".png"):
            raise ConfigError("out", f"must end in .png, got {self.out!r}")


def run_freq_plot(_spark, cfg: FreqPlotConfig):
    from curation.concepts import classnames
    from curation.frequency import read_frequency_file
    from curation.plots import long_tail_png
    from jobs.output import local_out, write_local_bytes

    out = local_out(cfg)
    n_classes = len(classnames())
    curves = {}
    for i, path in enumerate(cfg.freqs):
        if not os.path.exists(path):
            raise InputError(f"frequency file not found: {path}")
        rows = read_frequency_file(path, expected_lines=n_classes)
        curves[cfg.names[i] if cfg.names else os.path.basename(path)] = [count for _, count in rows]
    write_local_bytes(out, long_tail_png(curves, title=cfg.title))
    print(f"[freq plot] {len(curves)} curve(s) -> {out}")
    return out


JOBS = [
    Job(command=("freq",), config=FreqConfig, run=run_freq,
        help="count examples per ImageNet class (frequency file + long-tail plot)"),
    Job(command=("freq", "plot"), config=FreqPlotConfig, run=run_freq_plot,
        help="long-tail plot of one or several class-frequency files", needs_spark=False),
]

if __name__ == "__main__":
    main_for(JOBS)

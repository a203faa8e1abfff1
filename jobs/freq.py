"""`curate freq` (concept frequency of a corpus or an output) and `curate freq plot`.

- `curate freq`: count examples per ImageNet class in a caption corpus (captions matched
  to synset lemmas as `curate cls` does) or in any of our TSV/parquet outputs (a `label`,
  `wnid` or `wnids` column), and write the class-frequency file with its long-tail plot.
- `curate freq plot`: draw one or several frequency files on one long-tail figure.

The pieces other jobs share live apart: reading tables and writing frequency files in
`jobs.io.tables`, assigning and counting classes in `jobs.classes`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List

from curation.errors import ConfigError, InputError
from curation.report import StageReport
from jobs.framework.base import Job, main_for
from jobs.classes import count_classes, labels_column, match_classes
from jobs.framework.config import opt
from jobs.io.tables import FORMATS, read_table, table_columns, write_frequency_and_plot

# ---------------------------------------------------------------- curate freq
BY = ("auto", "caption", "label", "wnid", "wnids")


@dataclass
class FreqConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
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


def run_freq(spark, cfg: FreqConfig):
    from pyspark.sql import functions as F

    from curation.concepts import classnames
    from jobs.io import output

    fmt, columns = table_columns(spark, cfg.input, cfg.format)
    by = cfg.by if cfg.by != "auto" else next((c for c in ("label", "wnid", "wnids") if c in columns), "caption")
    column = cfg.caption_col if by == "caption" else by
    df = read_table(spark, cfg.input, fmt, [column])
    n_classes = len(classnames())
    if by == "caption":
        found = count_classes(match_classes(df, column, cfg.compat_unescaped), cfg.single_label)
    else:
        labels = labels_column(by, column)
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
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
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
    from jobs.io.output import local_out, write_local_bytes

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

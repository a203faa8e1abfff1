"""`curate cls`: YFCC15M-Cls, CC12M-Cls or any caption corpus labelled with ImageNet classes.

A caption belongs to a class when it mentions one of the synset's WordNet lemmas as a whole
word, case-insensitively (the original's `\\b(lemma|...)\\b` with case=False; lemmas are
matched literally unless `--compat-unescaped`). All 1000 classes are found in one
Aho-Corasick scan per batch of captions (`curation.wordmatch`) instead of 1000 regex passes.

A caption matching k classes gives k rows, as in the original; `--single-label` keeps only
captions that match exactly one class. Output: one TSV `filepath<TAB>caption<TAB>label`
(header; captions with \\r \\n \\t replaced by spaces, nothing trimmed; rows ordered by label,
then filepath; the bytes of pandas' `to_csv(sep='\\t', index=False)`, see `curation/tsv.py`)
and the class-frequency file of its rows (the original wrote per-row labels there) with its
long-tail plot.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from curation.errors import ConfigError
from curation.report import StageReport
from jobs.framework.base import Job, main_for
from jobs.classes import BAD_PATH, NO_CAPTION, NO_CLASS, count_classes, match_classes
from jobs.framework.config import opt
from jobs.io.tables import FORMATS


def default_freq_path(out: str) -> str:
    """`<dir>/class_frequency_<out name>_imagenet_ori.txt`, the original's naming."""
    folder, _, name = out.rpartition("/")
    stem = name[:-4] if name.endswith(".tsv") else name
    return f"{folder + '/' if folder else ''}class_frequency_{stem}_imagenet_ori.txt"


@dataclass
class ClsConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"captions": "input", "out": "output", "freq_out": "output"}
    captions: str = opt(None, "caption corpus: jsonl, TSV (header) or parquet file, folder or glob", required=True)
    out: str = opt(None, "output TSV (filepath<TAB>caption<TAB>label)", required=True)
    freq_out: Optional[str] = opt(None, "class-frequency file [default: class_frequency_<out name>"
                                        "_imagenet_ori.txt beside --out]")
    format: str = opt("auto", "input format", choices=FORMATS)
    filepath_col: str = opt("filepath", "column with the image path")
    caption_col: str = opt("caption", "column with the caption")
    single_label: bool = opt(False, "keep only captions that match exactly one class")
    compat_unescaped: bool = opt(False, "use lemmas as unescaped regexes like the original "
                                        "('.' in 'R.V.' matches any character)")

    def validate(self):
        if not self.out.endswith(".tsv"):
            raise ConfigError("out", f"must be a .tsv file, got {self.out!r}")
        if self.freq_out is not None and not self.freq_out.endswith(".txt"):
            raise ConfigError("freq_out", f"must be a .txt file, got {self.freq_out!r}")


def run_cls(spark, cfg: ClsConfig):
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from jobs.io import output
    from jobs.io.tables import read_table, write_frequency_and_plot

    df = read_table(spark, cfg.captions, cfg.format, [cfg.filepath_col, cfg.caption_col], what="captions")
    df = df.select(F.col(cfg.filepath_col).cast("string").alias("filepath"),
                   F.col(cfg.caption_col).cast("string").alias("caption"))
    cached = match_classes(df, "caption", cfg.compat_unescaped, path_col="filepath")
    cached = cached.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        found = count_classes(cached, cfg.single_label)
        matched = cached.where(F.col("n") == 1) if cfg.single_label else cached.where(F.col("n") >= 1)
        rows = matched.select("filepath", F.translate("caption", "\r\n\t", "   ").alias("caption"), "label")
        output.write_single_csv(spark, rows, cfg.out, order_by=["label", "filepath", "caption"])
    finally:
        cached.unpersist()

    report = StageReport("cls", read=found.matched + sum(found.without_class.values()), kept=found.kept)
    report.drop("bad_filepath", found.without_class.get(BAD_PATH, 0))
    report.drop("no_caption", found.without_class.get(NO_CAPTION, 0))
    report.drop("no_class_match", found.without_class.get(NO_CLASS, 0))
    if cfg.single_label:
        report.drop("multi_label", found.multi_label)
    counts = found.counts
    freq_path, png_path = write_frequency_and_plot(spark, counts, cfg.freq_out or default_freq_path(cfg.out),
                                                   title=cfg.out.rsplit("/", 1)[-1])
    report.info.update({"out": cfg.out, "output_rows": sum(counts.values()),
                        "note": "kept counts captions; a caption matching k classes gives k output rows",
                        "multi_label_captions": found.multi_label, "classes_with_rows": len(counts),
                        "freq_file": freq_path, "plot": png_path})
    output.finish_file(spark, cfg.out, cfg, report)
    print(report.summary())
    return report


JOB = Job(command=("cls",), config=ClsConfig, run=run_cls,
          help="label a caption corpus with ImageNet classes by whole-word lemma matches (YFCC15M-Cls)")

if __name__ == "__main__":
    main_for(JOB)

"""`curate cls`: YFCC15M-Cls, CC12M-Cls or any caption corpus labelled with ImageNet classes.

A caption belongs to a class when it mentions one of the synset's WordNet lemmas as a whole
word, case-insensitively (the original's `\\b(lemma|...)\\b` with case=False; lemmas are
matched literally unless `--compat-unescaped`). All 1000 classes are found in one
Aho-Corasick scan per caption (`curation.wordmatch`) instead of 1000 regex passes.

A caption matching k classes gives k rows, as in the original; `--single-label` keeps only
captions that match exactly one class. Output: one TSV `filepath<TAB>caption<TAB>label`
(header; captions with \\r \\n \\t replaced by spaces; rows ordered by label, then filepath)
and the class-frequency file of its rows (the original wrote per-row labels there) with its
long-tail plot.
"""
# no `from __future__ import annotations`: pandas_udf reads the UDF's type hints, which
# must then be real types, not strings naming a function-local import
from dataclasses import dataclass
from typing import Dict, List, Optional

from curation.errors import ConfigError
from curation.report import StageReport
from jobs.base import Job, main_for
from jobs.config import opt
from jobs.freq import FORMATS


def lemmas_by_label() -> Dict[int, List[str]]:
    """The WordNet lemmas ('_' -> ' ') of each ImageNet class, as the original used them."""
    from curation.concepts import load_concepts

    concepts = load_concepts()
    return {int(label): list(lemmas) for label, lemmas in zip(concepts["label"], concepts["lemmas"])}


def caption_labels(caption, compat_unescaped: bool = False):
    """Column expression: the sorted distinct class labels a caption mentions (array<int>;
    empty for no class or a missing caption)."""
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    from curation.wordmatch import cached_matcher, matcher_key

    key = matcher_key(lemmas_by_label(), compat_unescaped)

    @pandas_udf("array<int>")
    def labels(captions: pd.Series) -> pd.Series:
        return pd.Series(cached_matcher(key).labels_many(captions.tolist()), index=captions.index)

    return labels(caption)


def default_freq_path(out: str) -> str:
    """`<dir>/class_frequency_<out name>_imagenet_ori.txt`, the original's naming."""
    folder, _, name = out.rpartition("/")
    stem = name[:-4] if name.endswith(".tsv") else name
    return f"{folder + '/' if folder else ''}class_frequency_{stem}_imagenet_ori.txt"


@dataclass
class ClsConfig:
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

    from jobs import output
    from jobs.freq import read_table, write_frequency_and_plot

    df = read_table(spark, cfg.captions, cfg.format, [cfg.filepath_col, cfg.caption_col], what="captions")
    df = df.select(F.col(cfg.filepath_col).cast("string").alias("filepath"),
                   F.col(cfg.caption_col).cast("string").alias("caption"))
    # a path with a tab or newline would break the TSV; such a row is dropped, not mangled
    bad_path = F.col("filepath").isNull() | (F.col("filepath") == "") | F.col("filepath").rlike("[\t\r\n]")
    no_caption = F.col("caption").isNull() | (F.trim("caption") == "")
    totals = df.agg(F.count(F.lit(1)).alias("read"), F.sum(bad_path.cast("long")).alias("bad_path"),
                    F.sum((~bad_path & no_caption).cast("long")).alias("no_caption")).collect()[0]

    labels = caption_labels(F.col("caption"), cfg.compat_unescaped)
    matched = (df.where(~bad_path & ~no_caption).withColumn("labels", labels)
               .where(F.size("labels") > 0).persist(StorageLevel.MEMORY_AND_DISK))
    try:
        # rows with n classes appear n times per n after the explode
        groups = (matched.select(F.size("labels").alias("n"), F.explode("labels").alias("label"))
                  .groupBy("n", "label").count().collect())
        elements_by_n: Dict[int, int] = {}
        counts: Dict[int, int] = {}
        for g in groups:
            elements_by_n[g["n"]] = elements_by_n.get(g["n"], 0) + g["count"]
            if g["n"] == 1 or not cfg.single_label:
                counts[int(g["label"])] = counts.get(int(g["label"]), 0) + int(g["count"])
        captions_by_n = {n: total // n for n, total in elements_by_n.items()}
        n_matched = sum(captions_by_n.values())
        n_multi = n_matched - captions_by_n.get(1, 0)
        if cfg.single_label:
            matched = matched.where(F.size("labels") == 1)
        rows = matched.select("filepath", F.translate("caption", "\r\n\t", "   ").alias("caption"),
                              F.explode("labels").alias("label"))
        output.write_single_csv(spark, rows, cfg.out, order_by=["label", "filepath", "caption"])
    finally:
        matched.unpersist()

    report = StageReport("cls", read=int(totals["read"]), balanced=True)
    report.drop("bad_filepath", int(totals["bad_path"] or 0))
    report.drop("no_caption", int(totals["no_caption"] or 0))
    report.drop("no_class_match", report.read - report.n_dropped - n_matched)
    if cfg.single_label:
        report.drop("multi_label", n_multi)
    report.kept = n_matched - (n_multi if cfg.single_label else 0)
    freq_path, png_path = write_frequency_and_plot(spark, counts, cfg.freq_out or default_freq_path(cfg.out),
                                                   title=cfg.out.rsplit("/", 1)[-1])
    report.info.update({"out": cfg.out, "output_rows": sum(counts.values()),
                        "note": "kept counts captions; a caption matching k classes gives k output rows",
                        "multi_label_captions": n_multi, "classes_with_rows": len(counts),
                        "freq_file": freq_path, "plot": png_path})
    output.finish_file(spark, cfg.out, cfg, report)
    print(report.summary())
    return report


JOB = Job(command=("cls",), config=ClsConfig, run=run_cls,
          help="label a caption corpus with ImageNet classes by whole-word lemma matches (YFCC15M-Cls)")

if __name__ == "__main__":
    main_for(JOB)

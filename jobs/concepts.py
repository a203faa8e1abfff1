"""`curate concepts ...`: build, inspect and export the ImageNet-1k concept data.

- `classes`   the wnid/class-name list from the seed recipes' reference files (no Spark)
- `build`     the concept table from that list and WordNet 3.0 (no Spark)
- `lemma-map` a {lemma: wnid} JSON map with the LAIONet options (no Spark)
- `summary`   a short summary of the packaged concept data (no Spark; `make demo`)
- `table`     the packaged concept table as a parquet dataset (a small Spark job)

The first three regenerate what `curation/data/` ships (see docs/concepts.md). Jobs that
run without Spark write local paths only; each output gets `<file>.config.yaml` and
`<file>.report.json` beside it, written after the file itself.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from curation import concepts
from curation.report import StageReport
from jobs.framework.base import Job, main_for
from jobs.framework.config import opt
from jobs.io.output import finish_local_file, local_out, write_local, write_local_bytes


# ---------------------------------------------------------------- classes
@dataclass
class ClassesConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"reference": "input", "out": "output"}
    reference: str = opt(None, "folder with descriptors_imagenet_synset.json (wnids) and "
                               "descriptors_imagenet.json (class names in label order)", required=True)
    out: str = opt(None, "output TSV (wnid<TAB>classname)", required=True)

    def validate(self):
        local_out(self)


def run_classes(_spark, cfg: ClassesConfig):
    out = local_out(cfg)
    df = concepts.classes_from_reference(os.path.join(cfg.reference, "descriptors_imagenet_synset.json"),
                                         os.path.join(cfg.reference, "descriptors_imagenet.json"))
    write_local(out, lambda tmp: concepts.write_classes(df, tmp))
    finish_local_file(out, cfg, StageReport("concepts classes", read=len(df), kept=len(df),
                                             info={"out": cfg.out}))
    return df


# ---------------------------------------------------------------- build
@dataclass
class BuildConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"classes": "input", "out": "output"}
    out: str = opt(None, "output parquet file", required=True)
    classes: str = opt(None, "class list TSV (wnid<TAB>classname) [default: the packaged list]")

    def validate(self):
        local_out(self)


def run_build(_spark, cfg: BuildConfig):
    out = local_out(cfg)
    classes = concepts.read_classes(cfg.classes or concepts.CLASSES_FILE)
    df = concepts.build_concept_table(classes)
    write_local(out, lambda tmp: concepts.write_concept_table(df, tmp))
    finish_local_file(out, cfg, StageReport("concepts build", read=len(classes), kept=len(df),
                                             info={"out": cfg.out, "lemmas": int(df["lemmas"].map(len).sum())}))
    return df


# ---------------------------------------------------------------- lemma-map
@dataclass
class LemmaMapConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"synsets": "input", "out": "output"}
    #: values of an input that name a packaged resource, not a path
    PATH_NAMES = {"synsets": ("standard",)}
    out: str = opt(None, "output JSON file ({lemma: wnid})", required=True)
    synsets: str = opt("standard", "synset list: 'standard' (the 1000 ILSVRC wnids with their WordNet "
                                   "lemmas) or a file of 'wnid: lemma, lemma, ...' lines")
    scope: str = opt("ilsvrc", "a lemma is kept when it is unique in the synset list (ilsvrc) "
                               "or has one sense in WordNet (wordnet)", choices=concepts.SCOPES)
    extend_hypernyms: bool = opt(False, "give wnids left without a lemma their lemmas extended with "
                                        "a well-known hypernym (default: ignore those wnids)")

    def validate(self):
        local_out(self)


def run_lemma_map(_spark, cfg: LemmaMapConfig):
    out = local_out(cfg)
    synsets = (concepts.standard_synsets() if cfg.synsets == "standard"
               else concepts.read_synsets_file(cfg.synsets))
    built = concepts.build_lemma_map_detailed(synsets, cfg.scope, cfg.extend_hypernyms)
    write_local_bytes(out, concepts.lemma_map_json(built.lemma2wnid).encode("utf-8"))
    empty = concepts.wnids_without_lemma(built.lemma2wnid, synsets)
    report = StageReport("concepts lemma-map", read=built.entries, kept=len(built.lemma2wnid),
                         dropped=dict(built.dropped),
                         info={"out": cfg.out, "synsets": len(synsets), "lemmas": len(built.lemma2wnid),
                               "wnids": len(set(built.lemma2wnid.values())),
                               "wnids_without_lemma": empty, "extended_lemmas": len(built.extended)})
    finish_local_file(out, cfg, report)
    print(f"{len(built.lemma2wnid):,} lemmas over {len(set(built.lemma2wnid.values())):,} wnids; "
          f"{len(empty)} wnids without a lemma")
    return built


# ---------------------------------------------------------------- summary
@dataclass
class SummaryConfig:
    lemma_map: str = opt("standard", "the lemma map to summarise; " + concepts.LEMMA_MAP_HELP)

    def validate(self) -> None:
        concepts.check_lemma_map(self.lemma_map)


def summary_text(lemma_map: str | None = None) -> str:
    table = concepts.load_concepts()
    from udfs import files

    lemma2wnid = concepts.load_lemma_map(lemma_map, read_text=files.read_text)
    empty = concepts.wnids_without_lemma(lemma2wnid, table["wnid"])
    in100 = concepts.imagenet100_wnids()
    by_wnid = table.set_index("wnid")
    return "\n".join([
        f"concept table: {len(table)} classes, {int(table['lemmas'].map(len).sum()):,} WordNet lemmas "
        f"(e.g. {table['wnid'][0]} {table['classname'][0]!r}: {', '.join(table['lemmas'][0])})",
        f"lemma map ({lemma_map or 'standard'}): {len(lemma2wnid):,} lemmas over "
        f"{len(set(lemma2wnid.values())):,} wnids; {len(empty)} wnids without a lemma: "
        + ", ".join(f"{w} ({by_wnid.loc[w, 'classname']})" for w in empty),
        f"ImageNet-100: {len(in100)} classes (labels {concepts.imagenet100_labels()[0]}.."
        f"{concepts.imagenet100_labels()[-1]})",
    ])


def run_summary(_spark, cfg: SummaryConfig):
    text = summary_text(cfg.lemma_map)
    print(text)
    return text


# ---------------------------------------------------------------- table (Spark)
@dataclass
class TableConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"out": "output"}
    out: str = opt(None, "output parquet dataset (path or URI)", required=True)
    subset: str = opt("all", "classes to write", choices=concepts.CLASS_SUBSETS)


def run_table(spark, cfg: TableConfig):
    from jobs.io.output import atomic_dir

    table = concepts.load_concepts()
    keep = table[table["label"].isin(concepts.class_subset_labels(cfg.subset))]
    report = StageReport("concepts table", read=len(table), kept=len(keep),
                         info={"out": cfg.out, "subset": cfg.subset})
    report.drop("not_in_subset", len(table) - len(keep))
    schema = ("wnid string, label long, classname string, lemmas array<string>, "
              "name string, definition string")
    df = spark.createDataFrame(keep, schema=schema).orderBy("label")
    with atomic_dir(spark, cfg.out, cfg, report) as tmp:
        df.write.parquet(tmp)
    print(report.summary())
    return report


JOBS = [
    Job(("concepts", "classes"), ClassesConfig, run_classes, needs_spark=False,
        help="Write the wnid/class-name list from the seed recipes' reference files."),
    Job(("concepts", "build"), BuildConfig, run_build, needs_spark=False,
        help="Build the ImageNet-1k concept table (parquet) from the class list and WordNet 3.0."),
    Job(("concepts", "lemma-map"), LemmaMapConfig, run_lemma_map, needs_spark=False,
        help="Write a {lemma: wnid} JSON map with the LAIONet uniqueness/hypernym options."),
    Job(("concepts", "summary"), SummaryConfig, run_summary, needs_spark=False,
        help="Print a short summary of the packaged concept table, lemma map and class subsets."),
    Job(("concepts", "table"), TableConfig, run_table,
        help="Write the packaged concept table as a parquet dataset (with _config.yaml, _report.json)."),
]

if __name__ == "__main__":
    main_for(JOBS)

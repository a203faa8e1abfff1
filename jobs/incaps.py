"""`curate incaps captions|subsets|trim-tail`: the ImageNet-Captions variants of the seed.

- `captions` reads `<root>/imagenet-captions/imagenet_captions.json` (a JSON list), builds
  one caption per entry by the rules of `curation/captions.py` and writes the open_clip
  TSV `incaps_<fields>..._<N>.tsv` plus its class-frequency file;
- `subsets` keeps k random classes or ImageNet-100 (labels remapped, `label_ori` kept)
  and/or n random rows of such a TSV;
- `trim-tail` caps the lastk smallest classes at `ceil` examples each.

`captions` is one pass of the driver's Python, as the original script: the JSON list
(~107 MB, 450k entries) is read whole through the jobs' file-system layer and parsed with
`json`, the rows are built, ordered and tallied by `curation.captions.caption_rows`, and
the TSV is written under a temporary name and renamed once complete. A Spark session is
started only for Hadoop's file systems (`captions_need_spark`): at the dataset's size this
is as fast as one pandas process, where parsing in Spark tasks was 1.7-3.6x slower
(docs/incaps.md, "Speed"). `subsets` and `trim-tail` are Spark jobs. Every random choice
is hashed from the file name/path and the seed (`curation.sampling`), or with `--sampling
original` drawn from the original scripts' generators in the order they drew; either way
outputs do not depend on the master or the partitioning. Bad entries stop the job with a
one-line error naming the first one, or with `--skip-bad-rows` are counted and sampled in
the report.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional

from curation.errors import ConfigError, InputError
from curation.report import StageReport
from curation.sampling import SAMPLING_MODES
from jobs.framework.base import Job, main_for
from jobs.framework.config import check_roots, opt
from jobs.io import output


# ---------------------------------------------------------------- configs
@dataclass
class CaptionsConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"root": "input_root", "out": "output_dir"}
    root: str = opt(None, "dataset root: <root>/imagenet-captions/imagenet_captions.json and <root>/imagenet/train", required=True)
    use_title: bool = opt(False, "put the title in the caption")
    use_tags: bool = opt(False, "put the space-joined tags in the caption")
    use_description: bool = opt(False, "put the description in the caption")
    append_cname: bool = opt(False, "prefix the caption with a template filled with the class name (keeps every entry)")
    use_synset: bool = opt(False, "with --append-cname: use one of the synset's WordNet lemmas instead of the class name")
    mode: str = opt("cname", "template of --append-cname", choices=("cname", "a+cname", "photo", "openai80"))
    shuffle: bool = opt(False, "shuffle the rows (seeded, see --sampling) instead of keeping the JSON order")
    seed: int = opt(0, "seed of the row order, template and lemma choices")
    sampling: str = opt("keyed", "keyed: choices are hashes of the file name and --seed; original: the original "
                        "script's random.seed(seed), random.shuffle of the JSON list and random.choice per caption",
                        choices=SAMPLING_MODES)
    imagenet_root: Optional[str] = opt(None, "ImageNet root written into filepath (<imagenet-root>/train/<wnid>/<filename>) [default: <root>/imagenet]")
    out: Optional[str] = opt(None, "output directory [default: <root>/imagenet-captions]")
    skip_bad_rows: bool = opt(False, "drop bad entries (counted and sampled in the report) instead of failing")
    parse_tasks: int = opt(0, "deprecated, ignored: the list is parsed in one pass on the driver (kept so that "
                           "existing commands and configs still run)")

    def validate(self) -> None:
        problem = self.spec().problem()
        if problem:
            raise ConfigError(*problem)
        check_roots(self, "imagenet_root")

    def spec(self):
        from curation.captions import CaptionSpec

        return CaptionSpec(self.use_title, self.use_tags, self.use_description, self.append_cname,
                           self.use_synset, self.mode, self.seed)


@dataclass
class SubsetsConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"df": "input", "out": "output_dir"}
    df: str = opt(None, "input TSV written by `curate incaps captions`", required=True)
    k: Optional[int] = opt(None, "keep this many random classes (2..1000)")
    use_in100: bool = opt(False, "keep the ImageNet-100 classes")
    n: Optional[int] = opt(None, "keep this many random rows (after the class subset)")
    seed: int = opt(42, "seed of the class and row samples")
    sampling: str = opt("keyed", "keyed: samples are hashes of the label/filepath and --seed; original: the original "
                        "script's np.random.choice(1000, k) and DataFrame.sample(n, random_state=seed) of the rows "
                        "sorted by filepath", choices=SAMPLING_MODES)
    root: Optional[str] = opt(None, "dataset root; output goes to <root>/imagenet-captions unless --out")
    out: Optional[str] = opt(None, "output directory [default: <root>/imagenet-captions, else the input's directory]")

    def validate(self) -> None:
        if self.k is None and not self.use_in100 and self.n is None:
            raise ConfigError("k", "nothing to do: set --k, --use-in100 or --n")
        if self.k is not None and self.use_in100:
            raise ConfigError("k", "--k and --use-in100 both choose the classes; set one")
        if self.k is not None and not 2 <= self.k <= 1000:
            raise ConfigError("k", f"must be in 2..1000, got {self.k}")
        if self.n is not None and self.n < 1:
            raise ConfigError("n", f"must be >= 1, got {self.n}")


@dataclass
class TrimTailConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"df": "input", "out": "output_dir"}
    df: str = opt(None, "input TSV written by `curate incaps captions`", required=True)
    lastk: int = opt(5, "number of tail classes (fewest examples; ties by label) to trim")
    ceil: int = opt(5, "examples kept per tail class")
    seed: int = opt(0, "seed of which tail examples are kept")
    root: Optional[str] = opt(None, "dataset root; output goes to <root>/imagenet-captions unless --out")
    out: Optional[str] = opt(None, "output directory [default: <root>/imagenet-captions, else the input's directory]")

    def validate(self) -> None:
        if not 1 <= self.lastk <= 1000:
            raise ConfigError("lastk", f"must be in 1..1000, got {self.lastk}")
        if self.ceil < 0:
            raise ConfigError("ceil", f"must be >= 0, got {self.ceil}")


def _out_dir(out: Optional[str], root: Optional[str], df: Optional[str] = None) -> str:
    if out:
        return out.rstrip("/")
    if root:
        return root.rstrip("/") + "/imagenet-captions"
    return os.path.dirname(df.rstrip("/")) or "."


# ---------------------------------------------------------------- captions
def captions_need_spark(cfg: CaptionsConfig) -> bool:
    """Whether `incaps captions` gets a Spark session. Its work is one pass of the driver's
    Python; a session only brings Hadoop's file systems: needed when the root or the
    output is not a local path (hdfs://, s3a://, ...), and used under spark-submit,
    whose JVM is up already and where a plain path is the cluster's default file system.
    Otherwise the job starts no JVM (`--master` is then unused)."""
    from jobs.framework.session import under_spark_submit

    return under_spark_submit() or any(path is not None and output.local_path(path) is None
                                       for path in (cfg.root, cfg.out))


def run_captions(spark, cfg: CaptionsConfig) -> Dict[str, str]:
    """Read the JSON list whole on the driver, build the rows in one pass
    (`curation.captions.read_entries`, `caption_rows`) and write the TSV under a temporary
    name of its variant, renamed to `incaps_..._<N>.tsv` (`output.commit_file`); then the
    frequency file and the sidecars. `spark` is None when the job runs without Spark
    (`captions_need_spark`): every path is then local."""
    from curation import captions as C
    from curation import concepts
    from curation.tsv import header_text, rows_bytes
    from udfs import files

    spec = cfg.spec()
    root = cfg.root.rstrip("/")
    json_path = f"{root}/imagenet-captions/imagenet_captions.json"
    entries = C.read_entries(output.read_bytes(spark, json_path, "ImageNet-Captions metadata"), json_path)
    imagenet_root = (cfg.imagenet_root or f"{root}/imagenet").rstrip("/")
    templates = concepts.openai_templates() if spec.mode == "openai80" else ()
    builder = C.CaptionBuilder(spec, imagenet_root, concepts.load_concepts(), templates)
    made = C.caption_rows(entries, builder, cfg.shuffle, cfg.sampling)
    del entries

    report = StageReport("incaps captions", read=made.read, info={"sampling": cfg.sampling})
    if made.n_bad and not cfg.skip_bad_rows:
        entry, filename, problem = made.bad[0]
        raise InputError(f"{json_path}: entry {entry} (filename {filename!r}): {problem}; "
                         f"{made.n_bad} bad entries in all (--skip-bad-rows drops them and lists "
                         "them in the report)")
    if made.n_bad:
        report.info["bad_rows"] = {"count": made.n_bad, "sample": [
            {"entry": entry, "filename": filename, "problem": problem}
            for entry, filename, problem in made.bad]}
    for status, n in sorted(made.by_status.items()):
        if status != C.KEPT:
            report.drop(status, n)
    report.kept = made.by_status.get(C.KEPT, 0)

    # pandas' quoting (`curation.tsv`); bytes line by line, so no one string holds the whole file
    data = header_text(["filepath", "label", "caption"]).encode("utf-8") + rows_bytes(made.rows)
    out = _out_dir(cfg.out, root)
    tsv = f"{out}/{C.caption_file_name(spec, report.kept)}"
    # the temporary name carries the variant, not the row count: a killed run's leftover of
    # this variant is removed whatever its count, other variants' files are left alone
    stem = f"{out}/{C.caption_file_name(spec, 0)[:-len('_0.tsv')]}"
    output.write_via_tmp(spark, tsv, lambda tmp: files.create(tmp, data, spark), output.commit_file, family=stem)
    return _finish_variant(spark, cfg, tsv, f"{out}/{C.caption_frequency_name(spec)}",
                           made.by_label, concepts.classnames(), report)


# ---------------------------------------------------------------- subsets and trim-tail
def _read_tsv(spark, path: str):
    """(rows with a `_pos` column in file order, count) of a 1000-class TSV of `captions`,
    read as pandas reads it (`output.read_tsv`: quotes parsed, values as written)."""
    from pyspark.sql import functions as F

    df = output.read_tsv(spark, path, "input TSV")
    missing = [c for c in ("filepath", "label", "caption") if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (expected the header "
                         f"'filepath<TAB>label<TAB>caption'), found {df.columns}")
    if "label_ori" in df.columns:
        raise InputError(f"{path}: already a class subset (it has label_ori); subsets and trim-tail "
                         "take a 1000-class TSV written by `curate incaps captions`")
    df = df.select("filepath", F.col("label").alias("label_text"), "caption")
    df = df.withColumn("label", F.expr("try_cast(label_text AS INT)"))
    bad = (df.where(F.col("label").isNull() | ~F.col("label").between(0, 999))
           .select("filepath", "label_text", "caption").limit(1).collect())
    if bad:
        r = bad[0]
        raise InputError(f"{path}: row with filepath {r.filepath!r}: label {r.label_text!r} is not a "
                         "class label 0..999")
    df = df.drop("label_text").withColumn("_pos", F.monotonically_increasing_id())
    return df, df.count()


def _key_column(col, seed: int, salt: str):
    """A Spark column of `curation.captions.order_key(value, seed, salt)`."""
    from pyspark.sql.functions import udf

    from curation.captions import order_key

    return udf(lambda value: order_key(value, seed, salt), "long")(col)


def _write_variant(spark, cfg, df, out: str, tsv_name: str, freq_name: str,
                   counts: Dict[int, int], classnames: List[str], order: List[str],
                   report: StageReport, columns=("filepath", "label", "caption")) -> Dict[str, str]:
    tsv = f"{out}/{tsv_name}"
    output.write_single_csv(spark, df.select(*columns, *order), tsv, order_by=order, order_only=order)
    return _finish_variant(spark, cfg, tsv, f"{out}/{freq_name}", counts, classnames, report)


def _finish_variant(spark, cfg, tsv: str, freq: str, counts: Dict[int, int], classnames: List[str],
                    report: StageReport) -> Dict[str, str]:
    """The frequency file and the TSV's sidecars (after the TSV itself)."""
    from curation.frequency import frequency_text

    output.write_text(spark, freq, frequency_text(counts, classnames))
    report.info.update({"tsv": tsv, "frequency_file": freq})
    output.finish_file(spark, tsv, cfg, report)
    print(report.summary())
    print(f"wrote {tsv}\nwrote {freq}")
    return {"tsv": tsv, "frequency_file": freq}


def _label_counts(df, column: str = "label") -> Dict[int, int]:
    return {r[column]: r["count"] for r in df.groupBy(column).count().collect()}


def _original_row_sample(spark, df, rows: int, n: int, seed: int):
    """(the `n` rows `create_incaps_subsets.py` keeps, their order columns): the rows sorted
    by filepath (input order between equal ones), then pandas' `sample(n=n,
    random_state=seed)`, whose order the output keeps.

    Each row's rank in the filepath order comes from a distributed sort and `zipWithIndex`
    (only `_pos` goes through Python); the driver draws which ranks the sample takes, in
    what order (`pandas_sample_positions`: positions only), and a join applies them."""
    import numpy as np
    import pandas as pd

    from curation.sampling import pandas_sample_positions

    ranked = (df.select("filepath", "_pos").orderBy("filepath", "_pos").select("_pos")
              .rdd.map(lambda r: r[0]).zipWithIndex())
    ranks = spark.createDataFrame(ranked, "_pos long, _rank long")
    chosen = pandas_sample_positions(rows, seed, n=n)
    picked = spark.createDataFrame(pd.DataFrame({"_rank": chosen.astype(np.int64),
                                                 "_out": np.arange(len(chosen), dtype=np.int64)}),
                                   "_rank long, _out long")
    return df.join(ranks.join(picked, "_rank"), "_pos"), ["_out"]


def run_subsets(spark, cfg: SubsetsConfig) -> Dict[str, str]:
    from pyspark.sql import functions as F

    from curation import captions as C
    from curation import concepts
    from curation.sampling import numpy_class_choice, stable_sample

    original = cfg.sampling == "original"
    df, read = _read_tsv(spark, cfg.df)
    report = StageReport("incaps subsets", read=read, info={"sampling": cfg.sampling})
    names = concepts.classnames()
    labels: Optional[List[int]] = None
    if cfg.use_in100:
        labels = concepts.imagenet100_labels()
    elif cfg.k is not None and original:
        labels = numpy_class_choice(len(names), cfg.k, cfg.seed)
    elif cfg.k is not None:
        labels = sorted(stable_sample(range(len(names)), cfg.k, cfg.seed, "classes"))
    rows = read
    if labels is not None:
        remap = spark.createDataFrame(list(enumerate(labels)), "label int, label_ori int")
        df = df.withColumnRenamed("label", "label_ori").join(F.broadcast(remap), "label_ori")
        names = [names[i] for i in labels]
        rows = df.count()
        report.drop("class_not_kept", read - rows)
        report.info["classes"] = labels
    order = ["_pos"]
    if cfg.n is not None:
        if cfg.n > rows:
            where = " in the chosen classes" if labels is not None else ""
            raise InputError(f"{cfg.df}: --n {cfg.n} is larger than the {rows} rows{where}")
        if original:
            df, order = _original_row_sample(spark, df, rows, cfg.n, cfg.seed)
        else:
            df = (df.withColumn("_key", _key_column(F.col("filepath"), cfg.seed, "rows"))
                  .orderBy("_key", "_pos").limit(cfg.n))
            order = ["_key", "_pos"]
        report.drop("not_sampled", rows - cfg.n)
        rows = cfg.n
    report.kept = rows
    tsv_name, freq_name = C.subset_names(cfg.df, rows, None if labels is None else len(labels),
                                         cfg.use_in100, cfg.n)
    columns = ("filepath", "label", "caption") + (("label_ori",) if labels is not None else ())
    return _write_variant(spark, cfg, df, _out_dir(cfg.out, cfg.root, cfg.df), tsv_name, freq_name,
                          _label_counts(df), names, order, report, columns)


def run_trim_tail(spark, cfg: TrimTailConfig) -> Dict[str, str]:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from curation import captions as C
    from curation import concepts

    df, read = _read_tsv(spark, cfg.df)
    report = StageReport("incaps trim-tail", read=read)
    names = concepts.classnames()
    counts = _label_counts(df)
    tail = C.tail_labels(counts, len(names), cfg.lastk)
    trimmed = [lab for lab in tail if counts.get(lab, 0) > cfg.ceil]
    report.info["tail"] = [{"label": lab, "classname": names[lab], "count": counts.get(lab, 0)}
                           for lab in tail]
    if trimmed:
        rank = F.row_number().over(Window.partitionBy("label").orderBy("_key", "_pos"))
        in_tail = F.col("label").isin(trimmed)
        kept_tail = (df.where(in_tail).withColumn("_key", _key_column(F.col("filepath"), cfg.seed, "trim"))
                     .withColumn("_rank", rank).where(F.col("_rank") <= cfg.ceil).drop("_key", "_rank"))
        df = df.where(~in_tail).unionByName(kept_tail)
    new_counts = {lab: (min(c, cfg.ceil) if lab in tail else c) for lab, c in counts.items()}
    report.kept = sum(new_counts.values())
    report.drop("tail_trimmed", read - report.kept)
    tsv_name, freq_name = C.trim_tail_names(cfg.df, cfg.lastk, cfg.ceil)
    return _write_variant(spark, cfg, df, _out_dir(cfg.out, cfg.root, cfg.df), tsv_name, freq_name,
                          new_counts, names, ["_pos"], report)


JOBS = [
    Job(("incaps", "captions"), CaptionsConfig, run_captions, needs_spark=captions_need_spark,
        help="ImageNet-Captions caption variant: TSV filepath/label/caption + class-frequency file"),
    Job(("incaps", "subsets"), SubsetsConfig, run_subsets,
        help="ImageNet-Captions subset: k random classes or ImageNet-100 and/or n random rows"),
    Job(("incaps", "trim-tail"), TrimTailConfig, run_trim_tail,
        help="ImageNet-Captions with the lastk smallest classes capped at ceil examples"),
]

if __name__ == "__main__":
    main_for(JOBS)

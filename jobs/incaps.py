"""`curate incaps captions|subsets|trim-tail`: the ImageNet-Captions variants of the seed.

- `captions` reads `<root>/imagenet-captions/imagenet_captions.json` (a JSON list), builds
  one caption per entry by the rules of `curation/captions.py` and writes the open_clip
  TSV `incaps_<fields>..._<N>.tsv` plus its class-frequency file;
- `subsets` keeps k random classes or ImageNet-100 (labels remapped, `label_ori` kept)
  and/or n random rows of such a TSV;
- `trim-tail` caps the lastk smallest classes at `ceil` examples each.

The JSON list is parsed by several tasks, each taking the entries that start in its byte
range of the (memory-mapped) file, because Spark's JSON reader reads a multi-line file in
one task and turns `"title": 5` into the string "5" instead of reporting it. Parsing and
writing are one pass: each task sends a small tally of its range (counts by status and
label, its first bad entries) through an accumulator, the TSV is written under a temporary
name, and it gets its final name (which holds the row count) only when the tallies show a
complete, clean parse; no single task and no driver-side Python handles all rows
(`_write_tsv`). Every random choice is hashed from the file name/path and the seed (`curation.sampling`),
or with `--sampling original` drawn on the driver from the original scripts' generators and
applied by list/row position; either way outputs do not depend on partitioning. Bad
entries stop the job with a one-line error naming the first one, or with `--skip-bad-rows` are counted and sampled in the report.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from curation.errors import ConfigError, InputError
from curation.report import StageReport
from curation.sampling import SAMPLING_MODES
from jobs.framework.base import Job, main_for
from jobs.framework.config import check_roots, opt
from jobs.io import output

#: the kept rows of the parse: `line` is the TSV line (filepath, label, caption) without its
#: newline; `chunk` and `idx` (position in the chunk) give the JSON order, `bucket` the
#: output partition (see `_write_tsv`)
_KEPT_SCHEMA = "bucket int, chunk int, idx long, line string, shuffle_key long"
#: bytes of JSON per parse task (at least two tasks per core)
_BYTES_PER_TASK = 32 << 20
#: rows per Arrow batch a parse task hands to Spark
_BATCH_ROWS = 20_000


# ---------------------------------------------------------------- configs
@dataclass
class CaptionsConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"out": "output_dir"}
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
    parse_tasks: int = opt(0, "tasks that parse the JSON list (0: from the file size and the cores)")

    def validate(self) -> None:
        problem = self.spec().problem()
        if problem:
            raise ConfigError(*problem)
        if self.parse_tasks < 0:
            raise ConfigError("parse_tasks", f"must be >= 0, got {self.parse_tasks}")
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
class _ByKey:
    """Accumulator of {range number: RangeTally}; merging by key makes a re-run task harmless."""

    @staticmethod
    def zero(_value):
        return {}

    @staticmethod
    def addInPlace(a, b):
        a.update(b)
        return a


def _classes_and_templates(spec):
    """(concept columns as plain lists, the templates of `spec.mode`) for `CaptionBuilder`."""
    from curation import concepts

    table = concepts.load_concepts()
    # plain lists, so that the parse tasks need not import pandas to unpickle them
    classes = {"wnid": list(table["wnid"]), "label": [int(x) for x in table["label"]],
               "classname": list(table["classname"]), "lemmas": [list(x) for x in table["lemmas"]]}
    templates = concepts.openai_templates() if spec.mode == "openai80" else ()
    return classes, templates


def _original_draws(spark, path: str, json_path: str, size: int, tasks: int, spec, imagenet_root: str,
                    shuffle: bool):
    """(`CaptionDraws`, parse tasks, list position of each range's first entry) of
    `--sampling original`, or (None, tasks, None) when the variant draws nothing.

    A first pass over the list (one task per byte range, as the writing pass) sends the
    driver one small integer per entry: its label when the original builds its caption,
    else -1 (`curation.captions.draw_codes`); the driver then drives Python's generator
    as the original did (`curation.sampling.original_caption_draws`)."""
    import numpy as np

    from curation import captions as C
    from curation.sampling import original_caption_draws

    classes, templates = _classes_and_templates(spec)
    # the original draws a template (openai80) and a lemma (--use-synset) per caption only
    # with --append-cname (without it no draw reaches the output)
    n_templates = len(templates) if spec.append_cname else 0
    lemma_counts = [len(x) for x in classes["lemmas"]] if spec.append_cname and spec.use_synset else None
    if not shuffle and n_templates <= 1 and lemma_counts is None:
        return None, tasks, None

    def codes_of(chunk: int):
        import mmap

        builder = C.CaptionBuilder(spec, imagenet_root, classes, templates)
        found = C.ListSlice()
        start, end = ranges[chunk]
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            codes = C.draw_codes(data, start, end, builder, found)
        return chunk, found, codes

    while True:
        ranges = C.split_ranges(size, tasks)
        found = sorted(spark.sparkContext.parallelize(range(len(ranges)), len(ranges)).map(codes_of).collect(),
                       key=lambda r: r[0])
        problem = C.chain_problem([f for _, f, _ in found])
        if problem is None:
            break
        if tasks == 1:
            raise InputError(f"{json_path}: {problem}")
        tasks = 1  # as the writing pass: a false range start, or a broken file
    codes = np.concatenate([np.frombuffer(c, dtype=np.int16) for _, _, c in found])
    bases = [0]
    for _, f, _ in found[:-1]:
        bases.append(bases[-1] + f.count)
    return original_caption_draws(codes, spec.seed, shuffle, n_templates, lemma_counts), tasks, bases


def _kept_rows(spark, path: str, ranges: List[Tuple[int, int]], spec, imagenet_root: str,
               shuffle: bool, n_buckets: int, tallies, draws=None, bases: Optional[List[int]] = None):
    """The kept rows (`_KEPT_SCHEMA`), one parse task per byte range; each task adds its
    `RangeTally` to the `tallies` accumulator. `bucket` is the range number without
    `shuffle`; with it, which of `n_buckets` equal, increasing intervals of the 64-bit
    shuffle key the row's key is in. With `draws` (a broadcast `CaptionDraws`,
    `--sampling original`; `bases[i]`: list position of range i's first entry) the shuffle
    key is the entry's place in the original's shuffled list, bucketed in equal intervals
    of the list length."""
    import pyarrow as pa

    from curation.captions import CaptionBuilder, RangeTally, kept_rows
    from curation.tsv import LineFormatter

    classes, templates = _classes_and_templates(spec)
    schema = pa.schema([("bucket", pa.int32()), ("chunk", pa.int32()), ("idx", pa.int64()),
                        ("line", pa.string()), ("shuffle_key", pa.int64())])
    offset = 1 << 63  # order keys are signed
    n_entries = 0 if draws is None else len(draws.value.rank)

    def to_batch(chunk: int, rows: list, line):
        n = len(rows)
        idx, filepath, label, caption, key = zip(*rows)
        if shuffle and draws is not None:
            bucket = pa.array([k * n_buckets // n_entries for k in key], pa.int32())
            key = pa.array(key, pa.int64())
        elif shuffle:
            bucket = pa.array([((k + offset) * n_buckets) >> 64 for k in key], pa.int32())
            key = pa.array(key, pa.int64())
        else:
            bucket, key = pa.array([chunk] * n, pa.int32()), pa.nulls(n, pa.int64())
        lines = [line((p, lab, c)) for p, lab, c in zip(filepath, label, caption)]
        return pa.RecordBatch.from_arrays(
            [bucket, pa.array([chunk] * n, pa.int32()), pa.array(idx, pa.int64()),
             pa.array(lines, pa.string()), key], schema=schema)

    def parse(batches):
        import mmap

        line = LineFormatter()  # pandas' quoting (`curation.tsv`)
        builder = CaptionBuilder(spec, imagenet_root, classes, templates)
        picks = None if draws is None else draws.value
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for record_batch in batches:
                for chunk in record_batch.column(0).to_pylist():
                    start, end = ranges[chunk]
                    tally, rows = RangeTally(), []
                    base = bases[chunk] if bases is not None else 0
                    for row in kept_rows(data, start, end, builder, shuffle, tally, picks, base):
                        rows.append(row)
                        if len(rows) == _BATCH_ROWS:
                            yield to_batch(chunk, rows, line)
                            rows = []
                    if rows:
                        yield to_batch(chunk, rows, line)
                    tallies.add({chunk: tally})

    # one range number per partition, hence per task
    return spark.range(0, len(ranges), 1, len(ranges)).mapInArrow(parse, _kept_struct())


def _kept_struct():
    """`_KEPT_SCHEMA` as a StructType: a DDL string would be parsed by the JVM, whose cold
    SQL parser took ~3 s (under load) of the job's start."""
    from pyspark.sql import types as T

    kinds = {"int": T.IntegerType(), "long": T.LongType(), "string": T.StringType()}
    return T.StructType([T.StructField(name, kinds[kind]) for name, kind in
                         (col.split() for col in _KEPT_SCHEMA.split(", "))])


def _to_bucket_partitions(spark, rows, n: int):
    """`rows` moved so that partition p holds exactly the rows with `bucket` p:
    `repartitionById` (Spark >= 4.1); before it, hash partitioning on a value chosen per
    bucket so that it lands in partition p (`pmod(hash(value), n)`, Murmur3 as the SQL
    `hash`: candidates are hashed in one small job and the first per partition kept)."""
    if hasattr(rows, "repartitionById"):
        return rows.repartitionById(n, "bucket")
    return _by_hash(spark, rows, n)


def _by_hash(spark, rows, n: int):
    """`_to_bucket_partitions` without `repartitionById`."""
    from pyspark.sql import functions as F

    landed = (spark.range(0, 64 * n, 1, 1)
              .select("id", F.expr(f"pmod(hash(id), {int(n)})").alias("p")).collect())
    ids: Dict[int, int] = {}
    for r in landed:
        ids.setdefault(int(r["p"]), int(r["id"]))
    if len(ids) != n:  # 64 candidates per partition: practically impossible
        raise RuntimeError(f"no hash-partitioning value found for {n - len(ids)} of {n} partitions")
    # long literals: Spark hashes an int differently from the same long
    targets = F.array(*[F.lit(ids[p]).cast("long") for p in range(n)])
    return rows.repartition(n, F.element_at(targets, F.col("bucket") + 1))


def _write_tsv(spark, rows, path: str, shuffle: bool, n_buckets: int) -> None:
    """Write the kept rows as one TSV at `path` (header `filepath label caption`), in output
    order, without funnelling them through one task: Spark writes one part file per
    partition p holding exactly the rows of bucket p, and the driver's JVM concatenates
    the parts in partition order.

    Without `shuffle` the buckets are the parse ranges, each in JSON order already: no
    shuffle, no sort. With it, the buckets are increasing intervals of the shuffle key;
    rows are moved to their bucket's partition (`_to_bucket_partitions`) and sorted there
    by (shuffle_key, chunk, idx), so the concatenation is the global order. A row found
    in a partition other than its bucket's fails the job (a wrong order would be silent)."""
    from pyspark.sql import functions as F

    from curation.tsv import header_text

    tmp = f"{path}.parts"
    try:
        if shuffle:
            rows = _to_bucket_partitions(spark, rows, n_buckets)
        misplaced = F.raise_error(F.concat(F.lit("incaps: row of bucket "), F.col("bucket").cast("string"),
                                           F.lit(" in partition "), F.spark_partition_id().cast("string")))
        rows = rows.where(F.when(F.spark_partition_id() == F.col("bucket"), F.lit(True)).otherwise(misplaced))
        if shuffle:
            rows = rows.sortWithinPartitions("shuffle_key", "chunk", "idx")
        rows.select("line").write.option("lineSep", "\n").mode("overwrite").text(tmp)
        output.concat_files(spark, header_text(["filepath", "label", "caption"]).encode("utf-8"),
                            output.part_files(spark, tmp), path)
    finally:
        output.delete(spark, tmp)


def run_captions(spark, cfg: CaptionsConfig) -> Dict[str, str]:
    """Parse and write in one pass: the TSV goes to a temporary name, and is renamed to
    `incaps_..._<N>.tsv` once the tallies say the parse was complete and clean."""
    import uuid

    from curation import captions as C
    from curation import concepts

    spec = cfg.spec()
    root = cfg.root.rstrip("/")
    json_path = f"{root}/imagenet-captions/imagenet_captions.json"
    local = output.local_path(json_path)
    if local is None:
        raise InputError(f"{json_path}: the metadata list must be on a local or shared file system "
                         "(a plain path or file://) that every executor can read")
    if not os.path.isfile(local):
        raise InputError(f"ImageNet-Captions metadata not found: {json_path}")
    size = os.path.getsize(local)
    if size == 0:
        raise InputError(f"{json_path}: the file is empty (expected a JSON list of entries)")
    imagenet_root = (cfg.imagenet_root or f"{root}/imagenet").rstrip("/")
    out = _out_dir(cfg.out, root)
    # the temporary name carries the variant (the final name needs the row count): a killed
    # run's leftover of this variant is removed, other variants' runs are left alone
    stem = f"{out}/{C.caption_file_name(spec, 0)[:-len('_0.tsv')]}"
    output.remove_stale_tmp(spark, stem)
    tmp = f"{stem}.__tmp-{uuid.uuid4().hex[:8]}.tsv"

    tasks = cfg.parse_tasks or max(2 * spark.sparkContext.defaultParallelism, -(-size // _BYTES_PER_TASK))
    # output partitions of the shuffled order: as many as parse tasks, whatever the fallback below
    n_buckets = max(2 * spark.sparkContext.defaultParallelism, -(-size // _BYTES_PER_TASK))
    draws, bases = None, None
    if cfg.sampling == "original":
        found, tasks, bases = _original_draws(spark, local, json_path, size, tasks, spec, imagenet_root,
                                              cfg.shuffle)
        draws = None if found is None else spark.sparkContext.broadcast(found)
    try:
        while True:
            ranges = C.split_ranges(size, tasks)
            accumulator = spark.sparkContext.accumulator({}, _ByKey())
            rows = _kept_rows(spark, local, ranges, spec, imagenet_root, cfg.shuffle, n_buckets, accumulator,
                              draws, bases)
            _write_tsv(spark, rows, tmp, cfg.shuffle, n_buckets)
            tally = C.combine_tallies([accumulator.value[i] for i in range(len(ranges))])
            if tally.problem is None:
                break
            if tasks == 1 or draws is not None:
                raise InputError(f"{json_path}: {tally.problem}")
            tasks = 1  # a false range start inside an entry's text, or a broken file: parse as one

        report = StageReport("incaps captions", read=tally.read,
                             info={"parse_tasks": tasks, "sampling": cfg.sampling})
        n_bad = sum(tally.by_status.get(s, 0) for s in C.BAD_ROW_STATUSES)
        if n_bad and not cfg.skip_bad_rows:
            entry, filename, problem = tally.bad[0]
            raise InputError(f"{json_path}: entry {entry} (filename {filename!r}): {problem}; "
                             f"{n_bad} bad entries in all (--skip-bad-rows drops them and lists "
                             "them in the report)")
        if n_bad:
            report.info["bad_rows"] = {"count": n_bad, "sample": [
                {"entry": entry, "filename": filename, "problem": problem}
                for entry, filename, problem in tally.bad]}
        for status, n in sorted(tally.by_status.items()):
            if status != C.KEPT:
                report.drop(status, n)
        report.kept = tally.by_status.get(C.KEPT, 0)
        tsv = f"{out}/{C.caption_file_name(spec, report.kept)}"
        output.commit_file(spark, tmp, tsv)
    finally:
        output.delete(spark, tmp)
        if draws is not None:
            draws.destroy()
    return _finish_variant(spark, cfg, tsv, f"{out}/{C.caption_frequency_name(spec)}",
                           tally.by_label, concepts.classnames(), report)


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
    Job(("incaps", "captions"), CaptionsConfig, run_captions,
        help="ImageNet-Captions caption variant: TSV filepath/label/caption + class-frequency file"),
    Job(("incaps", "subsets"), SubsetsConfig, run_subsets,
        help="ImageNet-Captions subset: k random classes or ImageNet-100 and/or n random rows"),
    Job(("incaps", "trim-tail"), TrimTailConfig, run_trim_tail,
        help="ImageNet-Captions with the lastk smallest classes capped at ceil examples"),
]

if __name__ == "__main__":
    main_for(JOBS)

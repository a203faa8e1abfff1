"""`curate laionet similarity`: caption-to-synset similarity with a text encoder (step 3).

Input: the subset (`curate laionet subset`: LAION columns, `laion_index`, `wnids`,
`lemmas`). As in the original, rows whose lemmas point to more than one wnid are dropped
(`multiple_wnids`); with `--query-key lemma` rows that matched several lemmas are dropped
too (`multiple_lemmas`), since the query would be ambiguous. Every other row gets its
synset query (`curation.queries`, e.g. `name_def_wnid`) and the cosine between caption and
query embeddings (`text_to_name_def_wnid_similarity`).

How the work is spread:
- the distinct queries (at most one per wnid, or per (wnid, lemma)) are encoded once, in a
  small Spark job (fixed chunks of `--batch-size`; the driver never loads the model, and the
  executors' Python workers keep it for the scoring job), and broadcast; each row only
  carries a query id;
- captions are encoded in an iterator pandas UDF (`udfs.encoders`), one model per executor
  Python worker, on the task's GPU in fp16 when Spark assigned one, else on CPU in fp32;
- rows are hash-partitioned by `laion_index` into `--partitions` partitions (fewer for a
  small input: at least 8 batches each, `scoring_partitions`) and sorted before scoring, so
  batch composition, and with it every float, is the same whatever the input's
  partitioning or the cluster's size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

from curation.errors import InputError
from curation.queries import QUERY_KEYS, QUERY_TYPES, query_column, queries_for, similarity_column
from curation.report import StageReport
from jobs.framework.base import Job, main_for
from jobs.framework.config import opt
from jobs.encoding import EncoderOptions
from jobs.io.output import atomic_dir, require_input
from udfs.encoders import EncoderSpec

#: a scoring partition holds at least this many caption batches (see `scoring_partitions`)
ROWS_PER_PARTITION_BATCHES = 8

#: the subset columns this stage needs and their Spark type names
SUBSET_COLUMNS = {"TEXT": "string", "laion_index": "bigint", "wnids": "array<string>",
                  "lemmas": "array<string>"}


@dataclass
class SimilarityConfig(EncoderOptions):
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"subset": "input", "out": "output"}
    subset: str = opt(None, "subset parquet (output of `curate laionet subset`)", required=True)
    out: str = opt(None, "output parquet directory", required=True)
    query_type: str = opt("name_def", "synset query", choices=QUERY_TYPES)
    query_key: str = opt("wnid", "the query names the synset (wnid) or the matched lemma (lemma)",
                         choices=QUERY_KEYS)
    partitions: int = opt(64, "most scoring partitions; each gets at least "
                              f"{ROWS_PER_PARTITION_BATCHES} x batch_size rows, so a small input gets "
                              "fewer; set by the row count and these options only, so results do not "
                              "depend on the input partitioning or the cluster")

    def validate(self) -> None:
        from curation.errors import ConfigError

        if self.partitions < 1:
            raise ConfigError("partitions", f"must be >= 1, got {self.partitions}")
        self.encoder_spec().check()


def require_columns(df, path: str, columns: Dict[str, str]) -> None:
    """One-line InputError naming the input and the missing or wrongly typed column."""
    types = dict(df.dtypes)
    for col, expected in columns.items():
        if col not in types:
            raise InputError(f"{path}: column '{col}' is missing (found: {', '.join(df.columns)})")
        if types[col] != expected:
            raise InputError(f"{path}: column '{col}' has type {types[col]}, expected {expected}")


def keyed_rows(df, query_key: str):
    """Add `wnid` (and `lemma` for key lemma) and `_drop`, the reason a row cannot be scored."""
    from pyspark.sql import functions as F

    reason = (F.when(F.size("wnids") == 0, F.lit("no_wnid"))
               .when(F.size("wnids") > 1, F.lit("multiple_wnids")))
    if query_key == "lemma":
        reason = reason.when(F.size("lemmas") != 1, F.lit("multiple_lemmas"))
    df = df.withColumn("_drop", reason).withColumn("wnid", F.col("wnids")[0])
    if query_key == "lemma":
        df = df.withColumn("lemma", F.col("lemmas")[0])
    return df


def key_columns(cfg: SimilarityConfig) -> List[str]:
    """The columns a query is keyed by: the wnid, and the lemma for `--query-key lemma`."""
    return ["wnid", "lemma"] if cfg.query_key == "lemma" else ["wnid"]


def key_counts(keyed, cfg: SimilarityConfig):
    """One pass over the subset: rows read, drop counts {reason: n} and the sorted distinct
    query keys of the rows that can be scored (wnid, or (wnid, lemma) for key lemma).

    Keys whose wnid is not an ImageNet synset are dropped as `unknown_wnid`."""
    from curation.concepts import load_concepts

    key_cols = key_columns(cfg)
    known = set(load_concepts()["wnid"])
    read, dropped, keys = 0, {}, []
    for r in keyed.groupBy(*key_cols, "_drop").count().collect():
        read += r["count"]
        key = tuple(r[c] for c in key_cols)
        # a null key part (e.g. lemmas == [null]) cannot be joined to a query either
        reason = r["_drop"] or (None if key[0] in known and None not in key else "unknown_wnid")
        if reason is None:
            keys.append(key)
        else:
            dropped[reason] = dropped.get(reason, 0) + r["count"]
    return read, dropped, sorted(keys)


def query_table(spark, keys, cfg: SimilarityConfig):
    """(DataFrame of key columns + query text + `_query_id`, list of query texts)."""
    from curation.concepts import load_concepts

    key_cols = key_columns(cfg)
    texts = queries_for(load_concepts(), cfg.query_type, [(k[0], k[1] if len(k) > 1 else None) for k in keys])
    rows = [(*k, t, i) for i, (k, t) in enumerate(zip(keys, texts))]
    schema = ", ".join(f"{c} string" for c in key_cols) + f", {query_column(cfg.query_type, cfg.query_key)} string, _query_id int"
    return spark.createDataFrame(rows, schema), texts


def scoring_partitions(rows: int, cfg: SimilarityConfig) -> int:
    """How many partitions score `rows` captions: `--partitions`, fewer for a small input.

    Each partition is encoded on its own, sorted by length and cut into batches padded to
    their longest caption. A few web captions run to thousands of characters (truncated at
    the model's context), and a partition of a few dozen rows almost always holds one, so
    every one of its batches is padded to the full context: 4,000 captions in the old fixed
    64 partitions took 8 s per 62-row task with MiniLM on CPU, 4.9x one process encoding the
    same captions sorted together (bench/bench_similarity.py --job). At least
    ROWS_PER_PARTITION_BATCHES batches per partition keep the long captions together.
    """
    per = ROWS_PER_PARTITION_BATCHES * cfg.batch_size
    return max(1, min(cfg.partitions, -(-rows // per)))


def score(spark, subset_df, cfg: SimilarityConfig, spec: EncoderSpec):
    """The scored DataFrame (lazy), the rows read, the pre-scoring drop counts {reason: n}
    and the number of distinct queries."""
    from pyspark.sql import functions as F

    from udfs.encoders import cosine_to_queries_udf, encode_on_executors

    keyed = keyed_rows(subset_df, cfg.query_key)
    read, dropped, keys = key_counts(keyed, cfg)
    queries, texts = query_table(spark, keys, cfg)
    joined = keyed.filter("_drop IS NULL").join(F.broadcast(queries), on=key_columns(cfg), how="inner")

    # on the executors: the driver never loads the model (see encode_on_executors)
    query_emb = encode_on_executors(spark, spec, texts)
    cosine = cosine_to_queries_udf(spec, spark.sparkContext.broadcast(query_emb))
    qcol = query_column(cfg.query_type, cfg.query_key)
    front = [c for c in subset_df.columns if c not in ("wnids", "lemmas", "wnid", "lemma", qcol)]
    scored = (joined
              .repartition(scoring_partitions(read - sum(dropped.values()), cfg), "laion_index")
              .sortWithinPartitions("laion_index")
              .withColumn(similarity_column(cfg.query_type, cfg.query_key), cosine("TEXT", "_query_id"))
              .select(*front, "wnid", "lemmas", qcol, similarity_column(cfg.query_type, cfg.query_key)))
    return scored, read, dropped, len(texts)


def run(spark, cfg: SimilarityConfig) -> StageReport:
    require_input(spark, cfg.subset, "subset")
    subset_df = spark.read.parquet(cfg.subset)
    require_columns(subset_df, cfg.subset, SUBSET_COLUMNS)
    spec = cfg.encoder_spec().resolve()
    report = StageReport("laionet similarity")
    scored, report.read, dropped, n_queries = score(spark, subset_df, cfg, spec)
    for reason, n in dropped.items():
        report.drop(reason, n)
    report.kept = report.read - report.n_dropped
    report.info.update({"output": cfg.out, "query_column": query_column(cfg.query_type, cfg.query_key),
                        "similarity_column": similarity_column(cfg.query_type, cfg.query_key),
                        "distinct_queries": n_queries, "encoder": cfg.encoder, "model": cfg.model,
                        "pretrained": cfg.pretrained})
    with atomic_dir(spark, cfg.out, cfg, report) as tmp:
        scored.write.parquet(tmp)
        written = spark.read.parquet(tmp).count()
        if written != report.kept:
            raise AssertionError(f"similarity wrote {written} rows, expected {report.kept}")
    print(report.summary())
    return report


JOB = Job(command=("laionet", "similarity"), config=SimilarityConfig, run=run,
          help="caption-to-synset similarity (CLIP or sentence-transformers text encoder)")

if __name__ == "__main__":
    main_for(JOB)

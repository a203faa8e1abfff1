"""LAION captions most similar to ImageNet-Captions texts (the `laionet-t2t` supplement).

- `curate laionet embed`: LAION caption embeddings, written once as parquet
  (`laion_index`, `embedding`), rows without a caption skipped; reused by every search
  with the same encoder.
- `curate laionet t2t-search`: for each ImageNet-Captions text, the exact top-k LAION
  captions by cosine similarity of text embeddings. The corpus is either the output of
  `embed` (`--corpus encoder`, computed first when missing) or the precomputed LAION-400M
  `text_emb_<part>.npy` files aligned row for row with the LAION parts
  (`--corpus precomputed`). The query embeddings are written by the tasks that encode
  them into npy pieces beside the output (never collected on the driver), the corpus is
  split over tasks (`udfs/knn.py`) that read the queries' pieces, and the tasks'
  per-query lists are merged with a Spark window.
  Output: `filename`, `wnid` (the query's), `rank` (1..k), `laion_index`, `similarity`.
- `curate laionet t2t-subset`: the LAION rows the texts retrieved, one wnid each, and
  optionally the inverse index (wnid, laion_index). `--assign greedy` (default, the
  original rule): the texts in filename order each take their best-ranked row no earlier
  text took (`curation.t2t.greedy_assign`, on the driver); `max-sim`: the same rows, each
  labelled with the wnid it is most similar to; `all`: every retrieved row, labelled so.
  Download and arrange it with `curate laionet download` / `arrange`.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import List, Optional, Tuple
from urllib.parse import urlparse

from curation.errors import ConfigError, InputError
from curation.report import StageReport
from curation.t2t import ASSIGN_RULES
from jobs.framework.base import Job, main_for
from jobs.framework.config import opt
from jobs.encoding import EncoderOptions
from jobs.io.output import atomic_dir, exists, glob, local_path, read_text, require_input

_NPY_RE = re.compile(r"^text_emb_(\d+)\.npy$")


# ---------------------------------------------------------------- configs
@dataclass
class EmbedConfig(EncoderOptions):
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"laion": "input", "out": "output"}
    laion: str = opt(None, "LAION parquet parts (directory or glob)", required=True)
    out: str = opt(None, "output parquet dataset (laion_index, embedding)", required=True)

    def validate(self) -> None:
        self.encoder_spec().check()


@dataclass
class T2TSearchConfig(EncoderOptions):
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"captions_json": "input", "laion": "input", "text_emb": "input", "out": "output"}
    #: inputs this job makes when they are missing (not checked before it runs)
    MADE_IF_MISSING = ("text_emb",)
    captions_json: str = opt(None, "ImageNet-Captions json (list of {filename, title, tags, description})",
                             required=True)
    laion: str = opt(None, "LAION parquet parts (directory or glob)", required=True)
    corpus: str = opt("encoder", "LAION caption embeddings: computed with the encoder (and kept at "
                      "--text-emb) or the precomputed LAION-400M text_emb_<part>.npy files",
                      choices=("encoder", "precomputed"))
    text_emb: str = opt(None, "encoder: embeddings dataset of `curate laionet embed` (computed when "
                        "missing); precomputed: directory or glob of text_emb_<part>.npy", required=True)
    out: str = opt(None, "output parquet dataset", required=True)
    topk: int = opt(50, "LAION captions retrieved per ImageNet-Captions text")
    block_rows: int = opt(16384, "corpus rows per matrix product")
    query_rows: int = opt(1024, "queries per matrix product")
    rows_per_task: int = opt(2_000_000, "corpus rows searched by one task (precomputed npy slices; "
                             "the rows held in memory at once for embeddings datasets)")
    query_chunk: int = opt(200_000, "queries a search task holds at once (the search runs once per "
                                      "chunk; 200,000 x 512 float32 is 0.4 GB per Python worker)")

    def validate(self) -> None:
        if self.topk < 1:
            raise ConfigError("topk", f"must be at least 1, got {self.topk}")
        for key in ("block_rows", "query_rows", "rows_per_task", "query_chunk"):
            if getattr(self, key) < 1:
                raise ConfigError(key, f"must be at least 1, got {getattr(self, key)}")
        self.encoder_spec().check()


@dataclass
class T2TSubsetConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"search": "input", "laion": "input", "out": "output", "index_out": "output"}
    search: str = opt(None, "output of `curate laionet t2t-search`", required=True)
    laion: str = opt(None, "LAION parquet parts (directory or glob), or metadata holding the "
                           "retrieved rows with laion_index (a column or its pandas index)", required=True)
    out: str = opt(None, "output parquet: the retrieved LAION rows with wnid, t2t_similarity, n_wnids",
                   required=True)
    index_out: Optional[str] = opt(None, "also write the inverse index (wnid, laion_index) here")
    assign: str = opt("greedy", "which retrieved rows, with which wnid: greedy (the original: texts in "
                      "filename order each take their best-ranked row no earlier text took, labelled with "
                      "the text's wnid), max-sim (the greedy rows, each labelled with its most similar wnid), "
                      "all (every retrieved row, labelled with its most similar wnid)", choices=ASSIGN_RULES)
    buckets: int = opt(64, "groups for the max-similarity labels (each holds whole LAION rows)")

    def validate(self) -> None:
        if self.buckets < 1:
            raise ConfigError("buckets", f"must be at least 1, got {self.buckets}")


# ---------------------------------------------------------------- embed
def run_embed(spark, cfg: EmbedConfig) -> StageReport:
    from pyspark.sql import functions as F

    from jobs.io.laion import read_laion
    from udfs.knn import EMBEDDING_SCHEMA, embed_batches

    spec = cfg.encoder_spec().resolve()
    laion = read_laion(spark, cfg.laion).df.select("laion_index", "TEXT")
    # the rule of curation.t2t.has_text: a caption with a non-blank character
    with_text = laion.where(F.length(F.trim(F.coalesce("TEXT", F.lit("")))) > 0)
    emb = with_text.mapInPandas(embed_batches(spec, "laion_index", "TEXT"),
                                EMBEDDING_SCHEMA.format(id="laion_index"))
    report = StageReport("laionet embed", info={"encoder": cfg.encoder_config()})
    with atomic_dir(spark, cfg.out, cfg, report) as tmp:
        emb.write.parquet(tmp)
        written = spark.read.parquet(tmp)
        report.read = laion.count()
        report.kept = written.count()
        report.drop("no_caption", report.read - report.kept)
        report.info["dim"] = len(written.first()["embedding"]) if report.kept else 0
    print(report.summary())
    return report


# ---------------------------------------------------------------- search
def _local(path: str) -> str:
    """A local file path from a plain path or a file: URI (npy files are memory-mapped)."""
    if path.startswith("file:"):
        return urlparse(path).path
    if "://" in path:
        raise InputError(f"{path}: precomputed embeddings and their LAION parts must be on a file "
                         "system every executor mounts (a local path or file:// URI)")
    return os.path.abspath(path)


def precomputed_slices(spark, laion: str, text_emb: str, rows_per_task: int) -> Tuple[List[tuple], int, int]:
    """Check the npy files against their LAION parts and cut them into task slices.

    Returns ([(npy, parquet, part, start, stop)], total rows, dimension). Every LAION part
    needs its `text_emb_<part>.npy` with exactly as many rows (row i embeds caption i).
    """
    import numpy as np
    import pyarrow.parquet as pq

    from curation.laion import part_number
    from jobs.io.laion import read_laion

    # read_laion checks the part names, numbers and footers
    parts = {part_number(f): _local(f) for f in read_laion(spark, laion).files}
    pattern = text_emb if any(ch in text_emb for ch in "*?[{") else text_emb.rstrip("/") + "/text_emb_*.npy"
    npys = {}
    for f in glob(spark, pattern):
        m = _NPY_RE.match(os.path.basename(f))
        if m:
            npys[int(m.group(1))] = _local(f)
    if not npys:
        raise InputError(f"no text_emb_<part>.npy files match {pattern}")
    missing = sorted(set(parts) - set(npys))
    if missing:
        raise InputError(f"LAION part {parts[missing[0]]} has no text_emb_{missing[0]}.npy under {text_emb}")
    slices, total, dim = [], 0, None
    for part, npy in sorted(npys.items()):
        if part not in parts:
            raise InputError(f"{npy}: no LAION part {part} (part-{part:05d}-*.parquet) under {laion}")
        try:
            arr = np.load(npy, mmap_mode="r")
        except (ValueError, OSError) as e:
            raise InputError(f"{npy}: not a readable .npy array ({e})") from None
        rows = pq.ParquetFile(parts[part]).metadata.num_rows
        if arr.ndim != 2 or arr.shape[0] != rows:
            raise InputError(f"{npy}: {arr.shape[0] if arr.ndim else 0} embedding rows but its LAION part "
                             f"{parts[part]} has {rows} rows (the files must be aligned row for row)")
        if dim is not None and arr.shape[1] != dim:
            raise InputError(f"{npy}: dimension {arr.shape[1]}, other text_emb files have {dim}")
        dim = arr.shape[1]
        total += rows
        slices += [(npy, parts[part], part, s, min(s + rows_per_task, rows)) for s in range(0, rows, rows_per_task)]
    return slices, total, dim


def load_queries(spark, path: str):
    """ImageNet-Captions queries (filename, wnid, text) from the json (local or any FS)."""
    from curation.t2t import incaps_queries, read_incaps_json

    require_input(spark, path, "ImageNet-Captions json")
    if path.startswith("file:") or "://" not in path:
        entries = read_incaps_json(_local(path))
    else:
        try:
            entries = json.loads(read_text(spark, path))
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON ({e})") from None
    return len(entries), incaps_queries(entries, source=path)


def query_folder(spark, out: str) -> str:
    """Where the query embeddings go: a new folder beside `out` (on the file system every
    executor reaches, like the output itself), leftovers of killed runs removed first."""
    import uuid

    from jobs.io.output import delete

    base = out.rstrip("/")
    for stale in glob(spark, f"{base}.__queries-*"):
        delete(spark, stale)
    folder = f"{base}.__queries-{uuid.uuid4().hex[:8]}"
    local = local_path(folder)
    if local is not None:
        os.makedirs(local)
        return local
    return folder


def encode_queries(spark, texts: List[str], spec, folder: str):
    """Encode `texts` on the executors into npy pieces under `folder`; (QueryPieces, dim).

    Each task encodes one fixed piece of QUERY_PIECE_ROWS texts, so the floats do not
    depend on the cluster, and writes it itself: the driver sees three numbers per piece,
    never the embeddings (0.9 GB for the 448,896 ImageNet-Captions texts at 512-d)."""
    import numpy as np
    import pandas as pd
    from pyspark.sql import functions as F

    from udfs.knn import QUERY_PIECE_ROWS, QueryPieces, encode_query_pieces

    pieces = QueryPieces(folder, len(texts), QUERY_PIECE_ROWS)
    n_pieces = -(-len(texts) // pieces.piece_rows)
    if not n_pieces:
        return pieces, 0
    df = spark.createDataFrame(pd.DataFrame({"qid": np.arange(len(texts), dtype=np.int64), "text": texts}))
    stats = (df.withColumn("piece", F.floor(F.col("qid") / pieces.piece_rows).cast("long"))
               .repartition(min(n_pieces, 4 * spark.sparkContext.defaultParallelism), "piece")
               .groupBy("piece").applyInPandas(encode_query_pieces(spec, pieces), "piece long, rows long, dim long")
               .collect())
    rows = {r["piece"]: r["rows"] for r in stats}
    if sorted(rows) != list(range(n_pieces)) or sum(rows.values()) != len(texts):
        raise RuntimeError(f"encoded {sum(rows.values())} of {len(texts)} texts in pieces {sorted(rows)}")
    return pieces, int(stats[0]["dim"])


def search_topk(spark, pieces, corpus, opts, query_chunk: int):
    """Merged exact top-k: DataFrame (qid, rank, laion_index, similarity), one row per hit.

    `pieces` holds the query embeddings (`udfs.knn.QueryPieces`); the search runs once per
    `query_chunk` queries. `corpus` is a list of npy slices or a DataFrame (laion_index,
    embedding)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from udfs.knn import RESULT_SCHEMA, search_embedding_batches, search_npy_slices

    sc = spark.sparkContext
    hits = None
    for start in range(0, pieces.n, query_chunk):
        stop = min(start + query_chunk, pieces.n)
        if isinstance(corpus, list):
            slices = spark.createDataFrame(sc.parallelize(corpus, len(corpus)),
                                           "npy string, parquet string, part long, start long, stop long")
            part = slices.mapInPandas(search_npy_slices(pieces, start, stop, opts), RESULT_SCHEMA)
        else:
            part = corpus.mapInPandas(search_embedding_batches(pieces, start, stop, opts), RESULT_SCHEMA)
        hits = part if hits is None else hits.unionByName(part)
    if hits is None:
        return spark.createDataFrame([], "qid int, rank int, laion_index long, similarity float")
    order = Window.partitionBy("qid").orderBy(F.desc("similarity"), F.asc("laion_index"))
    return (hits.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= opts.k)
                .select("qid", "rank", "laion_index", "similarity"))


#: the embed options that change the embeddings (batch size and device do not)
_EMBEDDING_KEYS = ("laion", "encoder", "model", "pretrained")


def _encoder_corpus(spark, cfg: T2TSearchConfig):
    """The embeddings dataset of `embed` at --text-emb: computed when absent, reused when it
    was made from the same LAION parts with the same model, an error otherwise (it is
    never overwritten)."""
    import yaml

    if not exists(spark, cfg.text_emb):
        from jobs.io.output import guarded

        # --text-emb is this search's input, made here when missing: the embed job writes
        # it under its own rules (its input --laion; --out was checked against --text-emb)
        embed_cfg = EmbedConfig(**cfg.encoder_config(), laion=cfg.laion, out=cfg.text_emb)
        with guarded(embed_cfg, name="laionet embed", inherit=False):
            run_embed(spark, embed_cfg)
    config_file = cfg.text_emb.rstrip("/") + "/_config.yaml"
    made = yaml.safe_load(read_text(spark, config_file)) if exists(spark, config_file) else None
    wanted = {k: getattr(cfg, k) for k in _EMBEDDING_KEYS}
    if not made or {k: made.get(k) for k in _EMBEDDING_KEYS} != wanted:
        raise InputError(f"{cfg.text_emb} is not a complete `curate laionet embed` output of {wanted} "
                         f"(see its _config.yaml); remove it or choose another --text-emb")
    return spark.read.parquet(cfg.text_emb).select("laion_index", "embedding")


def run_search(spark, cfg: T2TSearchConfig) -> StageReport:
    from curation.t2t import has_text
    from udfs.knn import SearchOptions

    n_entries, queries = load_queries(spark, cfg.captions_json)
    report = StageReport("laionet t2t-search", read=n_entries)
    report.drop("duplicate_filename", n_entries - len(queries))
    blank = ~has_text(queries["text"])
    report.drop("blank_text", int(blank.sum()))
    queries = queries[~blank].reset_index(drop=True)
    report.kept = len(queries)

    spec = cfg.encoder_spec().resolve()
    if cfg.corpus == "precomputed":
        corpus, corpus_rows, corpus_dim = precomputed_slices(spark, cfg.laion, cfg.text_emb, cfg.rows_per_task)
        where = f"the text_emb files under {cfg.text_emb}"
    else:
        corpus = _encoder_corpus(spark, cfg)
        emb_report = json.loads(read_text(spark, cfg.text_emb.rstrip("/") + "/_report.json"))
        corpus_rows, corpus_dim = emb_report["kept"], emb_report["info"]["dim"]
        where = f"the embeddings in {cfg.text_emb}"
    from jobs.io.output import check_output, delete

    check_output(spark, cfg.out)  # before the queries are encoded beside it
    folder = query_folder(spark, cfg.out)
    try:
        pieces, dim = encode_queries(spark, queries["text"].tolist(), spec, folder)
        if corpus_rows and pieces.n and dim != corpus_dim:
            raise InputError(f"dimension mismatch: {cfg.model} gives {dim}-d query embeddings but "
                             f"{where} are {corpus_dim}-d (use the encoder that made them)")

        opts = SearchOptions(k=cfg.topk, block_rows=cfg.block_rows, query_rows=cfg.query_rows,
                             device=cfg.device, chunk_rows=cfg.rows_per_task)
        ranked = search_topk(spark, pieces, corpus, opts, cfg.query_chunk)
        names = spark.createDataFrame(queries[["filename", "wnid"]].assign(qid=range(len(queries))))
        out = (ranked.join(names, "qid").select("filename", "wnid", "rank", "laion_index", "similarity")
                     .orderBy("filename", "rank"))
        report.info.update({"topk": cfg.topk, "corpus": cfg.corpus, "corpus_rows": int(corpus_rows),
                            "dim": int(dim), "encoder": cfg.encoder_config()})
        with atomic_dir(spark, cfg.out, cfg, report) as tmp:
            out.write.parquet(tmp)
            report.info["rows"] = spark.read.parquet(tmp).count()
    finally:
        delete(spark, folder)
    print(report.summary())
    return report


# ---------------------------------------------------------------- subset
def inverse_index(pairs):
    """wnid -> the distinct LAION indices its captions retrieved, as (wnid, laion_index) rows."""
    return pairs.select("wnid", "laion_index").distinct()


def assign_wnids(pairs, buckets: int):
    """One row per retrieved LAION row with its most similar wnid (`curation.t2t.assign_wnid_by_sim`
    applied to groups that each hold all retrievals of their LAION rows)."""
    from pyspark.sql import functions as F

    from curation.t2t import assign_wnid_by_sim

    schema = "laion_index long, wnid string, similarity float, n_wnids int"
    return (pairs.groupBy(F.pmod(F.xxhash64("laion_index"), F.lit(buckets)).alias("bucket"))
                 .applyInPandas(assign_wnid_by_sim, schema))


def greedy_choices(spark, search):
    """The original rule on the search output: (DataFrame laion_index, wnid, similarity,
    n_wnids with one row per text that took a row, {counts for the report}).

    Texts are numbered in filename order. A row only one text retrieved is never taken by
    another, so each text's list is cut after its first such row before it is collected:
    the walk never goes past it, and the lists shrink to the contested part. The driver
    runs `curation.t2t.greedy_assign` over the collected (text, rank, laion_index) ints
    and the chosen (text, rank) pairs are joined back to the search output.
    """
    import numpy as np
    import pandas as pd
    from pyspark.sql import functions as F

    from curation.t2t import greedy_assign

    names = sorted(search.select("filename").distinct().toPandas()["filename"])
    n_texts = len(names)
    texts = spark.createDataFrame(pd.DataFrame({"filename": names, "text": np.arange(n_texts, dtype=np.int32)}),
                                  "filename string, text int")
    per_row = search.groupBy("laion_index").agg(F.count("*").alias("n_texts"),
                                                F.countDistinct("wnid").cast("int").alias("n_wnids"))
    numbered = search.join(F.broadcast(texts), "filename").join(per_row, "laion_index")
    cut = numbered.where("n_texts = 1").groupBy("text").agg(F.min("rank").alias("cut"))
    proposals = (numbered.join(cut, "text", "left").where(F.col("cut").isNull() | (F.col("rank") <= F.col("cut")))
                         .select("text", F.col("rank").cast("int"), "laion_index").toPandas())
    taken, taken_rank = greedy_assign(proposals["text"].to_numpy(), proposals["rank"].to_numpy(),
                                      proposals["laion_index"].to_numpy(), n_texts)
    took = np.flatnonzero(taken >= 0)
    chosen = spark.createDataFrame(pd.DataFrame({"text": took.astype(np.int32), "rank": taken_rank[took]}),
                                   "text int, rank int")
    rows = (numbered.withColumn("rank", F.col("rank").cast("int")).join(F.broadcast(chosen), ["text", "rank"])
                    .select("laion_index", "wnid", "similarity", "n_wnids"))
    counts = {"texts": n_texts, "texts_with_a_row": int(len(took)), "proposals_collected": int(len(proposals)),
              "taken_at_rank": {int(r): int(c) for r, c in zip(*np.unique(taken_rank[took], return_counts=True))}}
    return rows, counts


def run_subset(spark, cfg: T2TSubsetConfig) -> StageReport:
    from pyspark.sql import functions as F

    from jobs.io.metadata import laion_rows

    require_input(spark, cfg.search, "t2t-search output")
    search = spark.read.parquet(cfg.search).select("filename", "wnid", "rank", "laion_index", "similarity")
    pairs = search.select("laion_index", "wnid", "similarity")
    report = StageReport("laionet t2t-subset", info={"assign": cfg.assign})
    if cfg.assign == "all":
        assigned = assign_wnids(pairs, cfg.buckets)
    else:
        assigned, counts = greedy_choices(spark, search)
        if cfg.assign == "max-sim":
            assigned = assign_wnids(pairs, cfg.buckets).join(assigned.select("laion_index"), "laion_index")
        assigned = assigned.select("laion_index", "wnid", "similarity", "n_wnids")
        report.info.update(counts)
    assigned = assigned.withColumnRenamed("similarity", "t2t_similarity")
    subset = laion_rows(spark, cfg.laion, without=assigned.columns).join(assigned, "laion_index")
    if cfg.index_out:
        index_report = StageReport("laionet t2t-index", balanced=False, info={"assign": cfg.assign})
        index = inverse_index(pairs) if cfg.assign == "all" else assigned.select("wnid", "laion_index")
        with atomic_dir(spark, cfg.index_out, cfg, index_report) as tmp:
            index.orderBy("wnid", "laion_index").write.parquet(tmp)
            index_report.read = pairs.count()
            index_report.kept = spark.read.parquet(tmp).count()
            index_report.info["why_unbalanced"] = ("one row per distinct (wnid, laion_index) pair" if cfg.assign == "all"
                                                   else "the assigned rows out of all retrievals")
    with atomic_dir(spark, cfg.out, cfg, report) as tmp:
        subset.write.parquet(tmp)
        written = spark.read.parquet(tmp)
        if cfg.assign == "all":
            report.read = assigned.count()
        else:
            # one text, at most one row: texts = rows taken + texts left without a row
            report.read = report.info["texts"]
            report.drop("text_without_free_row", report.info["texts"] - report.info["texts_with_a_row"])
        report.kept = written.count()
        report.drop("not_in_laion", report.read - report.kept - report.n_dropped)
        report.info.update({"retrievals": pairs.count(),
                            "rows_retrieved_for_several_classes": written.where(F.col("n_wnids") > 1).count(),
                            "classes": written.select("wnid").distinct().count()})
    print(report.summary())
    return report


JOBS = [
    Job(("laionet", "embed"), EmbedConfig, run_embed,
        help="LAION caption embeddings (laion_index, embedding), written once for text-to-text search"),
    Job(("laionet", "t2t-search"), T2TSearchConfig, run_search,
        help="exact top-k LAION captions for each ImageNet-Captions text (text-embedding cosine)"),
    Job(("laionet", "t2t-subset"), T2TSubsetConfig, run_subset,
        help="the retrieved LAION rows, one wnid each (default: the original's one row per text), "
             "and the inverse index"),
]

if __name__ == "__main__":
    main_for(JOBS)

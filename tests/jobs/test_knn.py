"""Exact top-k search: the numpy kernel against brute force, and the Spark search over
1, 2 and several corpus partitions (precomputed npy slices and embedding datasets)."""
from __future__ import annotations

import os

import numpy as np

import pyarrow as pa

import pyarrow.parquet as pq

import pytest

from curation.knn import brute_force_topk

from tests.support.knn import unit_rows


def write_laion_parts(directory, texts_by_part, uuid="0b0c0d0e-1111-2222-3333-444455556666"):
    """LAION-like part files (TEXT and URL are enough here); small row groups so that
    slices cross row-group boundaries. Returns {part: path}."""
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for part, texts in texts_by_part.items():
        path = os.path.join(directory, f"part-{part:05d}-{uuid}-c000.snappy.parquet")
        table = pa.table({"SAMPLE_ID": pa.array(range(len(texts)), pa.int64()),
                          "URL": [f"http://127.0.0.1/img/{part}_{i}.jpg" for i in range(len(texts))],
                          "TEXT": pa.array(texts, pa.string())})
        pq.write_table(table, path, row_group_size=7)
        paths[part] = path
    return paths


def corpus_fixture(tmp_path, rng, rows_by_part, d=16, blanks=(3, 10), dtype=np.float16):
    """Parts with a few blank captions, their text_emb_<part>.npy, and the searchable corpus
    (embeddings as float32 + laion_index) for brute force."""
    texts = {p: [("" if i in blanks else None if i == 4 else f"caption {p} {i}") for i in range(n)]
             for p, n in rows_by_part.items()}
    paths = write_laion_parts(str(tmp_path / "laion"), texts)
    emb_dir = tmp_path / "emb"
    emb_dir.mkdir()
    all_emb, all_ids = [], []
    for p, n in rows_by_part.items():
        e = unit_rows(rng, n, d, dtype)
        e[5] = e[6]  # a duplicate caption: an exact tie
        np.save(emb_dir / f"text_emb_{p}.npy", e)
        keep = [i for i in range(n) if i not in blanks and i != 4]
        all_emb.append(e[keep].astype(np.float32))
        all_ids.append(p * 100_000_000 + np.array(keep, np.int64))
    return paths, str(emb_dir), np.concatenate(all_emb), np.concatenate(all_ids)


# ---------------------------------------------------------------- the Spark search
def _spark_topk(spark, tmp_path, queries, corpus, k, query_chunk=1000):
    """The job's search: the queries as npy pieces (of 4, so chunks cross pieces) that the
    search tasks read."""
    import os

    from jobs.laionet_t2t import search_topk
    from udfs.knn import QueryPieces, SearchOptions

    pieces = QueryPieces(str(tmp_path / "queries"), len(queries), piece_rows=4)
    os.makedirs(pieces.folder)
    for p, start in enumerate(range(0, len(queries), 4)):
        pieces.write(p, queries[start:start + 4])
    ranked = search_topk(spark, pieces, corpus, SearchOptions(k=k, block_rows=16, device="cpu", chunk_rows=25),
                         query_chunk)
    rows = ranked.toPandas().sort_values(["qid", "rank"])
    n = len(queries)
    assert list(rows.groupby("qid")["rank"].max()) == [k] * n
    return (rows["laion_index"].to_numpy().reshape(n, k), rows["similarity"].to_numpy(np.float32).reshape(n, k))


@pytest.mark.parametrize("rows_per_task", [1000, 40, 9])
def test_spark_search_over_npy_slices_equals_brute_force(spark, tmp_path, rows_per_task):
    from jobs.laionet_t2t import precomputed_slices

    rng = np.random.default_rng(7)
    paths, emb_dir, corpus, ids = corpus_fixture(tmp_path, rng, {0: 45, 3: 30})
    slices, total, dim = precomputed_slices(spark, str(tmp_path / "laion"), emb_dir, rows_per_task)
    assert total == 75 and dim == 16
    assert len(slices) == {1000: 2, 40: 3, 9: 9}[rows_per_task]
    queries = np.vstack([corpus[4], unit_rows(rng, 11, 16)])
    got = _spark_topk(spark, tmp_path, queries, slices, 6, query_chunk=5)
    want = brute_force_topk(queries, corpus, ids, 6)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert not set(got[0].ravel()) & {3, 4, 10, 300_000_003}  # blank captions are never retrieved


@pytest.mark.parametrize("partitions", [1, 2, 5])
def test_spark_search_over_embedding_dataset_equals_brute_force(spark, tmp_path, partitions):
    import pandas as pd

    rng = np.random.default_rng(8)
    corpus = unit_rows(rng, 90, 12)
    corpus[40] = corpus[41]
    ids = rng.choice(10**9, 90, replace=False).astype(np.int64)
    df = spark.createDataFrame(pd.DataFrame({"laion_index": ids, "embedding": list(corpus)}),
                               "laion_index long, embedding array<float>").repartition(partitions)
    queries = np.vstack([corpus[40], unit_rows(rng, 6, 12)])
    got = _spark_topk(spark, tmp_path, queries, df, 5, query_chunk=3)
    want = brute_force_topk(queries, corpus, ids, 5)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


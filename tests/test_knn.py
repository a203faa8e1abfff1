"""Exact top-k search: the numpy kernel against brute force, and the Spark search over
1, 2 and several corpus partitions (precomputed npy slices and embedding datasets)."""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.knn import brute_force_topk, exact_topk, merge_topk, torch_block_topk


def unit_rows(rng, n, d, dtype=np.float32):
    x = rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)


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


# ---------------------------------------------------------------- the numpy kernel
@pytest.mark.parametrize("block_rows,query_rows", [(10_000, 1000), (37, 5), (1, 3)])
def test_exact_topk_equals_brute_force(block_rows, query_rows):
    rng = np.random.default_rng(1)
    q, c = unit_rows(rng, 23, 12), unit_rows(rng, 301, 12)
    ids = rng.permutation(10_000)[:301].astype(np.int64)
    got = exact_topk(q, c, ids, 7, block_rows=block_rows, query_rows=query_rows)
    want = brute_force_topk(q, c, ids, 7)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert np.all(np.diff(got[1], axis=1) <= 0)


def test_many_exact_ties_are_broken_by_laion_index():
    """More duplicates than the shortlist is wide: the kernel must widen it and still
    return the smallest laion_indices of the tied rows."""
    rng = np.random.default_rng(2)
    c = unit_rows(rng, 500, 8)
    c[100:300] = c[0]
    q = np.vstack([c[0], unit_rows(rng, 4, 8)])
    ids = rng.permutation(1_000_000)[:500].astype(np.int64)
    got = exact_topk(q, c, ids, 10, block_rows=64)
    want = brute_force_topk(q, c, ids, 10)
    np.testing.assert_array_equal(got[0], want[0])
    tied = np.sort(ids[np.r_[0, 100:300]])[:10]
    np.testing.assert_array_equal(got[0][0], tied)


def test_k_larger_than_corpus_and_empty_corpus():
    rng = np.random.default_rng(3)
    q, c = unit_rows(rng, 4, 6), unit_rows(rng, 5, 6)
    ids, sims = exact_topk(q, c, np.arange(5), 50)
    assert ids.shape == (4, 5) and sorted(ids[0]) == [0, 1, 2, 3, 4]
    ids, sims = exact_topk(q, c[:0], np.arange(0), 3)
    assert ids.shape == (4, 0)


def test_merge_of_chunk_lists_equals_whole_search():
    rng = np.random.default_rng(4)
    q, c = unit_rows(rng, 9, 10), unit_rows(rng, 200, 10)
    c[150] = c[20]
    ids = np.arange(200, dtype=np.int64)[::-1].copy()
    parts = [exact_topk(q, c[a:a + 60], ids[a:a + 60], 5) for a in range(0, 200, 60)]
    merged = merge_topk(parts, 5)
    whole = brute_force_topk(q, c, ids, 5)
    np.testing.assert_array_equal(merged[0], whole[0])
    np.testing.assert_array_equal(merged[1], whole[1])


def test_float16_memmap_corpus_and_torch_backend(tmp_path):
    rng = np.random.default_rng(5)
    q = unit_rows(rng, 6, 16)
    np.save(tmp_path / "c.npy", unit_rows(rng, 120, 16, np.float16))
    c = np.load(tmp_path / "c.npy", mmap_mode="r")
    ids = np.arange(120, dtype=np.int64)
    want = brute_force_topk(q, c, ids, 8)
    for kwargs in ({}, {"block_topk": torch_block_topk("cpu", half=False)}):
        got = exact_topk(q, c, ids, 8, block_rows=50, **kwargs)
        np.testing.assert_array_equal(got[0], want[0])


def test_bad_arguments():
    rng = np.random.default_rng(6)
    with pytest.raises(ValueError, match="k must be >= 1"):
        exact_topk(unit_rows(rng, 2, 4), unit_rows(rng, 3, 4), np.arange(3), 0)
    with pytest.raises(ValueError, match="dimension"):
        exact_topk(unit_rows(rng, 2, 4), unit_rows(rng, 3, 5), np.arange(3), 1)


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

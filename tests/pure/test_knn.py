"""Exact top-k search: the numpy kernel against brute force, and the Spark search over
1, 2 and several corpus partitions (precomputed npy slices and embedding datasets)."""
from __future__ import annotations

import numpy as np
import pytest

from curation.knn import (brute_force_topk, exact_topk, merge_topk,
                          torch_block_topk)
from tests.support.knn import unit_rows


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

"""Exact top-k inner-product search by block matrix products (pure numpy, optional torch).

The order of results is total and depends only on the vectors: a corpus row ranks above
another when its *score* is higher, or when the scores are equal and its id
(`laion_index`) is smaller. The score of a (query, corpus row) pair is the dot product
summed in float64 and rounded to float32.

Why not simply the float32 matrix product? Its value for one pair depends on where the
pair sits in the blocks a BLAS kernel happens to use, so two identical LAION captions
(common: "image", "photo") could get scores one ulp apart and the id tie-break, and
with it the output, would change with the partitioning. So the search runs in two steps:

1. *Shortlist*: float32 (or float16 on a GPU) block products keep, per query, the
   `width` best rows (`width` > k gives slack).
2. *Rescore*: the shortlist is rescored in float64 and sorted exactly. The shortlist is
   provably complete when the gap between its k-th and its last float32 value exceeds
   twice the rounding-error bound of the product; rows where it is not (more than
   `width` near-ties, e.g. many duplicate captions) are searched again with a wider
   shortlist, so the result is always the exact top-k under the order above.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import numpy as np

#: unit round-off of the shortlist's product inputs: float32, or float16 on a GPU
UNIT_ROUNDOFF = {"fp32": 2.0 ** -24, "fp16": 2.0 ** -11}

#: Matmul(queries_chunk, corpus_block, width) -> (values float32 [q, w], positions int64 [q, w]):
#: the `w` largest products of each query row within the block, in any order.
BlockTopK = Callable[[np.ndarray, np.ndarray, int], Tuple[np.ndarray, np.ndarray]]


def order_rows(ids: np.ndarray, sims: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Sort each row by (similarity desc, id asc) and keep the first k columns."""
    order = np.lexsort((ids, -sims.astype(np.float64)), axis=1)[:, :k]
    return np.take_along_axis(ids, order, 1), np.take_along_axis(sims, order, 1)


def merge_topk(parts: Sequence[Tuple[np.ndarray, np.ndarray]], k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Merge partial top-k lists of the same queries (e.g. from corpus chunks) into one.

    Each part is (ids int64 [q, w_i], sims float32 [q, w_i]) for the same q queries; the
    result is the top-k of their union under the search order (exact, since every part is
    the exact top-k of its chunk).
    """
    ids = np.concatenate([p[0] for p in parts], axis=1)
    sims = np.concatenate([p[1] for p in parts], axis=1)
    return order_rows(ids, sims, k)


def numpy_block_topk(q: np.ndarray, c: np.ndarray, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """float32 product of a query chunk and a corpus block, `width` best per row."""
    s = q @ c.T
    if width >= s.shape[1]:
        pos = np.broadcast_to(np.arange(s.shape[1]), s.shape)
        return s, np.ascontiguousarray(pos)
    pos = np.argpartition(s, s.shape[1] - width, axis=1)[:, -width:]
    return np.take_along_axis(s, pos, 1), pos


def torch_block_topk(device: str = "cuda", half: bool = True) -> BlockTopK:
    """The shortlist step on a torch device (float16 products with float32 accumulation)."""
    import torch

    dtype = torch.float16 if half else torch.float32
    # the same corpus block meets every query chunk in turn: copy it to the device once
    last: dict = {}

    def block_topk(q: np.ndarray, c: np.ndarray, width: int):
        tq = torch.from_numpy(np.ascontiguousarray(q)).to(device=device, dtype=dtype)
        if last.get("block") is not c:
            last["block"], last["tensor"] = c, torch.from_numpy(np.ascontiguousarray(c)).to(device=device, dtype=dtype)
        tc = last["tensor"]
        s = tq @ tc.T
        vals, pos = torch.topk(s, min(width, s.shape[1]), dim=1, sorted=False)
        return vals.float().cpu().numpy(), pos.cpu().numpy().astype(np.int64)

    return block_topk


def _rescore(queries: np.ndarray, corpus: np.ndarray, pos: np.ndarray, chunk: int = 256) -> np.ndarray:
    """float32(float64 dot) of each query with its shortlisted corpus rows.

    Every pair is summed along one contiguous row of length d, so identical vectors
    get bit-identical scores wherever they sit."""
    out = np.empty(pos.shape, dtype=np.float32)
    for a in range(0, len(pos), chunk):
        p = pos[a:a + chunk]
        q64 = queries[a:a + chunk].astype(np.float64)[:, None, :]
        out[a:a + chunk] = np.sum(corpus[p].astype(np.float64) * q64, axis=-1)
    return out


def _shortlist(queries: np.ndarray, corpus: np.ndarray, width: int, block_rows: int,
               query_rows: int, block_topk: BlockTopK) -> Tuple[np.ndarray, np.ndarray]:
    """Per query, the `width` largest float32 products over the corpus (positions, values)."""
    nq = len(queries)
    vals = np.full((nq, width), -np.inf, dtype=np.float32)
    pos = np.full((nq, width), -1, dtype=np.int64)
    for start in range(0, len(corpus), block_rows):
        block = np.ascontiguousarray(corpus[start:start + block_rows], dtype=np.float32)
        for a in range(0, nq, query_rows):
            bv, bp = block_topk(queries[a:a + query_rows], block, width)
            cv = np.concatenate([vals[a:a + query_rows], bv], axis=1)
            cp = np.concatenate([pos[a:a + query_rows], bp + start], axis=1)
            keep = np.argpartition(cv, cv.shape[1] - width, axis=1)[:, -width:]
            vals[a:a + query_rows] = np.take_along_axis(cv, keep, 1)
            pos[a:a + query_rows] = np.take_along_axis(cp, keep, 1)
    return vals, pos


def exact_topk(queries: np.ndarray, corpus: np.ndarray, ids: np.ndarray, k: int, *,
               block_rows: int = 16384, query_rows: int = 1024, precision: str = "fp32",
               block_topk: Optional[BlockTopK] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The exact top-k corpus rows of every query: (ids int64 [q, m], sims float32 [q, m]),
    m = min(k, len(corpus)), each row sorted by (similarity desc, id asc).

    `corpus` may be a memory-mapped array (it is read block by block); `ids` are the
    corpus rows' stable ids. `block_topk` computes the shortlist products (numpy float32
    by default; `torch_block_topk()` on a GPU with precision="fp16").
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    ids = np.asarray(ids, dtype=np.int64)
    n, d = corpus.shape[0], corpus.shape[1] if corpus.ndim == 2 else -1
    if queries.ndim != 2 or corpus.ndim != 2 or queries.shape[1] != d:
        raise ValueError(f"query dimension {queries.shape[1:]} does not match corpus dimension {corpus.shape[1:]}")
    if len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} corpus rows")
    m = min(k, n)
    if n == 0 or len(queries) == 0:
        return np.empty((len(queries), m), np.int64), np.empty((len(queries), m), np.float32)
    block_topk = block_topk or numpy_block_topk

    # rounding-error bound of one shortlist product, plus a few float32 ulps for the rescore
    qnorm = np.linalg.norm(queries.astype(np.float64), axis=1)
    cmax = max(float(np.linalg.norm(np.asarray(corpus[s:s + block_rows], np.float64), axis=1).max())
               for s in range(0, n, block_rows))
    err = (2 * UNIT_ROUNDOFF[precision] + (d + 8) * 2.0 ** -24) * np.maximum(qnorm * cmax, 1e-30)

    out_ids = np.empty((len(queries), m), np.int64)
    out_sims = np.empty((len(queries), m), np.float32)
    todo = np.arange(len(queries))
    width = min(n, max(2 * k, k + 16))
    while len(todo):
        vals, pos = _shortlist(queries[todo], corpus, width, block_rows, query_rows, block_topk)
        if width < n:
            # complete when everything outside the shortlist (<= its last value) is
            # certainly below the k best inside it
            kth = np.partition(vals, width - k, axis=1)[:, width - k]
            last = vals.min(axis=1)
            done = (kth.astype(np.float64) - last) > 2 * err[todo]
        else:
            done = np.ones(len(todo), bool)
        rows = todo[done]
        sims = _rescore(queries[rows], corpus, pos[done])
        out_ids[rows], out_sims[rows] = order_rows(ids[pos[done]], sims, m)
        todo = todo[~done]
        width = min(n, width * 4)
    return out_ids, out_sims


def brute_force_topk(queries: np.ndarray, corpus: np.ndarray, ids: np.ndarray, k: int):
    """Reference: all float64 scores, rounded to float32, fully sorted (small inputs only)."""
    s = (np.asarray(queries, np.float64) @ np.asarray(corpus, np.float64).T).astype(np.float32)
    return order_rows(np.broadcast_to(np.asarray(ids, np.int64), s.shape), s, k)

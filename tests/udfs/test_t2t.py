"""ImageNet-Captions queries, t2t-search (encoder and precomputed corpora), the inverse
index, the greedy (original) and max-similarity assignments, bad input, determinism
across masters."""
from __future__ import annotations

import os

import numpy as np
import pytest


def test_query_pieces_read_any_row_range(tmp_path):
    from udfs.knn import QueryPieces

    emb = np.random.default_rng(0).standard_normal((11, 4)).astype(np.float32)
    pieces = QueryPieces(str(tmp_path), len(emb), piece_rows=4)
    for p, start in enumerate(range(0, len(emb), 4)):
        pieces.write(p, emb[start:start + 4])
    assert sorted(os.listdir(tmp_path)) == ["000000.npy", "000001.npy", "000002.npy"]
    for start, stop in [(0, 11), (0, 4), (3, 5), (4, 8), (5, 11), (10, 11), (2, 2)]:
        np.testing.assert_array_equal(pieces.read(start, stop), emb[start:stop])
    os.remove(tmp_path / "000001.npy")
    with pytest.raises(FileNotFoundError):
        pieces.read(3, 5)

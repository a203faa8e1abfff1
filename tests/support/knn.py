"""Helpers and fixtures of the knn tests shared by more than one layer."""
from __future__ import annotations

import numpy as np


def unit_rows(rng, n, d, dtype=np.float32):
    x = rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)

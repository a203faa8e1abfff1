"""Seeded sampling: keyed by stable ids (`--sampling keyed`, the default), or the original
scripts' generators (`--sampling original`).

Keyed: every random choice is a function of (id, seed) only, never of row order or
partitioning: `stable_uniform` maps each id to a float in [0, 1) with a keyed BLAKE2b
hash, so "keep the n rows with the smallest keys" is the same sample wherever the rows
live, and a different seed gives an independent sample.

Original: the study's scripts drew from Python's `random`, numpy's `RandomState` and
pandas' `sample` over the rows in the order they read them; the functions at the end
drive the same generators on the driver and return positions and indices only (see
`numpy_class_choice`, `pandas_sample_positions`; the caption script's draws are run
with the captions, `curation.captions.caption_rows`).
"""
from __future__ import annotations

import hashlib
from typing import Iterable, List, Optional, Sequence

import numpy as np

_SCALE = float(2 ** 64)


def stable_key(item_id, seed: int, salt: str = "") -> int:
    """A 64-bit unsigned hash of (seed, salt, id)."""
    h = hashlib.blake2b(f"{seed}\x1f{salt}\x1f{item_id}".encode("utf-8"), digest_size=8)
    return int.from_bytes(h.digest(), "big")


def stable_uniform(ids: Iterable, seed: int, salt: str = "") -> np.ndarray:
    """Floats in [0, 1), one per id, depending only on (id, seed, salt)."""
    return np.array([stable_key(i, seed, salt) / _SCALE for i in ids], dtype=np.float64)


def stable_choice_index(item_id, n: int, seed: int, salt: str = "") -> int:
    """A reproducible index in [0, n) for one id (e.g. which template a row gets)."""
    if n <= 0:
        raise ValueError("n must be positive")
    return stable_key(item_id, seed, salt) % n


def stable_sample(ids: Sequence, k: int, seed: int, salt: str = "") -> List:
    """The k ids with the smallest hash keys (ties broken by id): a seeded sample without
    replacement that does not depend on the order of `ids`."""
    keyed = sorted((stable_key(i, seed, salt), i) for i in ids)
    return [i for _, i in keyed[:k]]


# ---------------------------------------------------------------- the original scripts' generators
# `--sampling original`: the seeded choices of the study's scripts, reproduced by driving the
# same generators (Python's `random`, numpy's legacy `RandomState`, pandas' `sample`) over
# the row order those scripts saw. Only positions and small indices come out of here; the
# Spark jobs apply them to the rows by position. (The caption script's Python `random`
# stream runs with the captions themselves: `curation.captions.caption_rows`.)
SAMPLING_MODES = ("keyed", "original")


def numpy_class_choice(n_classes: int, k: int, seed: int) -> List[int]:
    """`np.random.seed(seed); np.random.choice(n_classes, k, replace=False)`, sorted
    (`create_incaps_subsets.py --k`)."""
    return sorted(int(c) for c in np.random.RandomState(seed).choice(n_classes, k, replace=False))


def pandas_sample_positions(n_rows: int, seed: int, n: Optional[int] = None,
                            frac: Optional[float] = None) -> np.ndarray:
    """The positions, in sample order, that pandas' `DataFrame.sample(n=n | frac=frac,
    random_state=seed)` takes from a frame of `n_rows` rows (it depends on the length
    only, so a frame of positions stands in for the rows)."""
    import pandas as pd  # not at the top: `curation.captions` imports this module and needs no pandas

    positions = pd.Series(np.arange(n_rows, dtype=np.int64))
    if n is not None:
        return positions.sample(n=n, random_state=seed).to_numpy()
    return positions.sample(frac=1.0 if frac is None else frac, random_state=seed).to_numpy()

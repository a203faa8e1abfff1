"""Deterministic sampling keyed by stable ids (a LAION index, a filename) and a seed.

Every random choice in the recipes is a function of (id, seed) only, never of row order
or partitioning: `stable_uniform` maps each id to a float in [0, 1) with a keyed
BLAKE2b hash, so "keep the n rows with the smallest keys" is the same sample wherever the
rows live, and a different seed gives an independent sample.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, List, Sequence

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

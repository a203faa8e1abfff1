"""Seeded sampling: keyed by stable ids (`--sampling keyed`, the default), or the original
scripts' generators (`--sampling original`).

Keyed: every random choice is a function of (id, seed) only, never of row order or
partitioning: `stable_uniform` maps each id to a float in [0, 1) with a keyed BLAKE2b
hash, so "keep the n rows with the smallest keys" is the same sample wherever the rows
live, and a different seed gives an independent sample.

Original: the study's scripts drew from Python's `random`, numpy's `RandomState` and
pandas' `sample` over the rows in the order they read them; the functions at the end
drive the same generators on the driver and return positions and indices only (see
`original_caption_draws`, `numpy_class_choice`, `pandas_sample_positions`).
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

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
# Spark jobs apply them to the rows by position.
SAMPLING_MODES = ("keyed", "original")


@dataclass
class CaptionDraws:
    """The choices `create_incaps_caption_variants.py` makes, by entry position in the
    JSON list: `rank[p]` is entry p's place in the (shuffled) list, `template[p]` and
    `lemma[p]` the index of its template / synset lemma (-1: none drawn)."""
    rank: np.ndarray
    template: np.ndarray
    lemma: np.ndarray

    def picks(self, position: int) -> Tuple[int, int]:
        return int(self.template[position]), int(self.lemma[position])


def original_caption_draws(codes: Sequence[int], seed: int, shuffle: bool, n_templates: int,
                           lemma_counts: Optional[Sequence[int]]) -> CaptionDraws:
    """The caption script's random stream over the entries of the JSON list.

    `codes[p]` is the class label of entry p when the script builds its caption (a valid
    entry of a known wnid), else -1; the list length is `len(codes)`. The script seeds
    Python's generator with `seed`, shuffles the whole list with it (`shuffle`), then
    builds the captions in that order, each drawing `random.choice` of the templates
    (`n_templates` > 1, `openai80`) and then of its synset's lemmas (`lemma_counts[label]`,
    None without `--use-synset`). Without `--append-cname` nothing is drawn per entry
    (`n_templates` <= 1 and `lemma_counts` None)."""
    codes = np.asarray(codes, dtype=np.int64)
    n = len(codes)
    rng = random.Random(seed)
    order = list(range(n))
    if shuffle:
        rng.shuffle(order)
    rank = np.empty(n, dtype=np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(n, dtype=np.int64)
    template = np.full(n, -1, dtype=np.int16)
    lemma = np.full(n, -1, dtype=np.int16)
    if n_templates > 1 or lemma_counts is not None:
        templates = range(n_templates)
        lemmas = [range(int(c)) for c in lemma_counts] if lemma_counts is not None else None
        for p in order:
            label = codes[p]
            if label < 0:
                continue
            if n_templates > 1:
                template[p] = rng.choice(templates)
            if lemmas is not None:
                lemma[p] = rng.choice(lemmas[label])
    return CaptionDraws(rank, template, lemma)


def numpy_class_choice(n_classes: int, k: int, seed: int) -> List[int]:
    """`np.random.seed(seed); np.random.choice(n_classes, k, replace=False)`, sorted
    (`create_incaps_subsets.py --k`)."""
    return sorted(int(c) for c in np.random.RandomState(seed).choice(n_classes, k, replace=False))


def pandas_sample_positions(n_rows: int, seed: int, n: Optional[int] = None,
                            frac: Optional[float] = None) -> np.ndarray:
    """The positions, in sample order, that pandas' `DataFrame.sample(n=n | frac=frac,
    random_state=seed)` takes from a frame of `n_rows` rows (it depends on the length
    only, so a frame of positions stands in for the rows)."""
    import pandas as pd  # not at the top: the caption parse tasks import this module

    positions = pd.Series(np.arange(n_rows, dtype=np.int64))
    if n is not None:
        return positions.sample(n=n, random_state=seed).to_numpy()
    return positions.sample(frac=1.0 if frac is None else frac, random_state=seed).to_numpy()

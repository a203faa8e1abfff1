"""Which rows of the LAIONet metadata a threshold/scale subset keeps (pure pandas/numpy).

The rules of "Ablating intra-class variation" / "Ablating data scale":

1. keep rows whose text-to-synset similarity is >= `thresh`;
2. sample `n` of them, or `round(frac * rows)` (pandas' rule for `sample(frac=...)`);
3. every class that had at least one row before thresholding keeps at least one: a class
   missing from the sample gets back its first row by `laion_index`;
4. when that makes more than `n` rows, the excess is dropped at random from the sampled
   rows of the 10 largest classes (ties: smaller label first), never a class's last row.

`select_subset` (`--sampling keyed`): all randomness is a function of (`laion_index`,
seed) (`curation.sampling`): the sample is the rows with the smallest keys, so it does not
depend on row order or partitioning. `select_subset_original` (`--sampling original`):
the rules as `create_laionet_subsets.py` applies them, with pandas' `sample(...,
random_state=seed)` over the rows in file order, so the subsets equal the study's.
Only three numeric columns per row are needed, so a Spark job collects them and decides
here (about 20 bytes a row: 3.3M rows of LAIONet fit easily in the driver).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from curation.errors import InputError
from curation.sampling import pandas_sample_positions, stable_uniform

TOP_CLASSES = 10


def output_names(thresh: float, frac: float, n: Optional[int], n_rows: int) -> Tuple[str, str]:
    """(TSV name, frequency-file name) as the original recipe named them."""
    if n is not None:
        return f"laionet_thresh{thresh}_{n_rows}.tsv", f"class_frequency_laionet_thresh{thresh}_n{n}_ori.txt"
    if frac < 1:
        return (f"laionet_thresh{thresh}_frac{frac}_{n_rows}.tsv",
                f"class_frequency_laionet_thresh{thresh}_frac{frac}_ori.txt")
    return f"laionet_thresh{thresh}_{n_rows}.tsv", f"class_frequency_laionet_thresh{thresh}_ori.txt"


def sample_size(n_rows: int, frac: float, n: Optional[int]) -> int:
    """How many thresholded rows to sample."""
    return n if n is not None else int(round(frac * n_rows))


@dataclass
class SubsetSelection:
    #: selected laion_index values, sorted, and their labels
    laion_index: np.ndarray
    labels: np.ndarray
    #: input rows, and those not selected by reason (read == len(laion_index) + sum(dropped))
    read: int = 0
    dropped: Dict[str, int] = field(default_factory=dict)
    #: labels of classes given back their first row (rule 3)
    restored: List[int] = field(default_factory=list)
    #: labels of the largest classes the excess was dropped from (rule 4)
    trimmed_from: List[int] = field(default_factory=list)
    #: rows with similarity >= thresh, and how many of them were sampled
    above_threshold: int = 0
    sampled: int = 0

    def counts_by_label(self) -> Dict[int, int]:
        values, counts = np.unique(self.labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}


def _at_least(similarity: pd.Series, thresh: float) -> np.ndarray:
    """`similarity >= thresh` as pandas computes it on the column: a float32 column is
    compared in float32 (so a stored 0.7 passes 0.7), nulls fail."""
    dtype = similarity.dtype if similarity.dtype in (np.float32, np.float64) else np.float64
    return similarity.to_numpy(dtype=dtype, na_value=np.nan) >= thresh


def _checked_ids(meta: pd.DataFrame) -> np.ndarray:
    if meta["laion_index"].isna().any():
        raise InputError("column 'laion_index' has null values")
    ids = meta["laion_index"].to_numpy(dtype=np.int64)
    ordered = np.sort(ids)
    dup = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(dup):
        raise InputError(f"column 'laion_index' is not unique: {int(dup[0])} occurs more than once")
    return ids


def select_subset(meta: pd.DataFrame, thresh: float, frac: float = 1.0, n: Optional[int] = None,
                  seed: int = 42, top_classes: int = TOP_CLASSES) -> SubsetSelection:
    """The rows to keep from `meta` (columns `laion_index`, `label`, `similarity`).

    `label` is null for a row whose class is unknown (dropped as `unknown_wnid`); a null
    similarity is below any threshold.
    """
    if meta["laion_index"].isna().any():
        raise InputError("column 'laion_index' has null values")
    meta = meta.sort_values("laion_index", kind="stable").reset_index(drop=True)
    ids = meta["laion_index"].to_numpy(dtype=np.int64)
    dup = ids[1:][ids[1:] == ids[:-1]]
    if len(dup):
        raise InputError(f"column 'laion_index' is not unique: {int(dup[0])} occurs more than once")
    known = meta["label"].notna().to_numpy()
    labels = meta["label"].fillna(-1).to_numpy(dtype=np.int64)
    above = known & _at_least(meta["similarity"], thresh)

    k = sample_size(int(above.sum()), frac, n)
    if k > above.sum():
        raise InputError(f"n={k} is more than the {int(above.sum())} rows with similarity >= {thresh}")
    candidates = np.flatnonzero(above)
    keys = stable_uniform(ids[candidates], seed, "sample")
    # smallest keys first; laion_index breaks (astronomically unlikely) ties
    sampled = candidates[np.lexsort((ids[candidates], keys))[:k]]

    chosen = np.zeros(len(meta), dtype=bool)
    chosen[sampled] = True
    known_idx = np.flatnonzero(known)
    # rows are sorted by laion_index, so np.unique's first occurrence is each class's first row
    classes, first_rows = np.unique(labels[known_idx], return_index=True)
    present = np.isin(classes, labels[sampled])
    restored_rows = known_idx[first_rows[~present]]
    chosen[restored_rows] = True

    trimmed = np.zeros(len(meta), dtype=bool)
    trimmed_from: List[int] = []
    excess = int(chosen.sum()) - n if n is not None else 0
    if excess > 0:
        counts = pd.Series(labels[chosen]).value_counts()
        top = sorted(counts.index, key=lambda lab: (-counts[lab], lab))[:top_classes]
        trimmed_from = [int(lab) for lab in top]
        # the drop order is random by a second key; each class keeps the row it would drop
        # last, so trimming never empties a class that rule 3 kept
        pool = pd.DataFrame({"row": sampled, "label": labels[sampled],
                             "key": stable_uniform(ids[sampled], seed, "trim"), "id": ids[sampled]})
        pool = pool[pool["label"].isin(top)].sort_values(["key", "id"])
        pool = pool[pool.duplicated("label", keep="last")]
        if excess > len(pool):
            raise InputError(f"n={n} is too small: keeping one row of each of the {len(classes)} classes "
                             f"leaves {excess} rows to drop but the {len(top)} largest classes can give "
                             f"only {len(pool)}")
        trimmed[pool["row"].to_numpy()[:excess]] = True
        chosen &= ~trimmed

    dropped = {
        "unknown_wnid": int((~known).sum()),
        "below_threshold": int((known & ~above & ~chosen).sum()),
        "not_sampled": int((above & ~chosen & ~trimmed).sum()),
        "trimmed_top_classes": int(trimmed.sum()),
    }
    return SubsetSelection(laion_index=ids[chosen], labels=labels[chosen], read=len(meta),
                           dropped={r: c for r, c in dropped.items() if c},
                           restored=[int(lab) for lab in classes[~present]], trimmed_from=trimmed_from,
                           above_threshold=int(above.sum()), sampled=int(k))


def select_subset_original(meta: pd.DataFrame, thresh: float, frac: float = 1.0, n: Optional[int] = None,
                           seed: int = 42, wnids: Optional[List[str]] = None,
                           top_classes: int = TOP_CLASSES) -> SubsetSelection:
    """The rows `create_laionet_subsets.py` keeps from `meta` (columns `laion_index`,
    `label`, `similarity`), whose rows are in the order of the input file(s).

    As the original: the first row of each class in file order is set aside; the rows with
    similarity >= `thresh` (file order) are sampled with pandas' `sample(n=n | frac=frac,
    random_state=seed)`; each class missing from the sample gets its first row back (after
    the sample); with `n`, the excess is dropped by `sample(n=excess, random_state=seed)`
    from the rows (in that order) of the 10 classes `value_counts` ranks first, which may
    take a class's last row. `wnids[label]` names the classes for `value_counts` (its order
    of equal counts follows the installed pandas, as the original's did). Rows of an
    unknown class (null `label`; the original fails on them) are dropped first.
    """
    ids = _checked_ids(meta)
    known = meta["label"].notna().to_numpy()
    labels = meta["label"].fillna(-1).to_numpy(dtype=np.int64)
    above = known & _at_least(meta["similarity"], thresh)

    candidates = np.flatnonzero(above)
    k = sample_size(len(candidates), frac, n)
    if k > len(candidates):
        raise InputError(f"n={k} is more than the {len(candidates)} rows with similarity >= {thresh}")
    sampled = candidates[pandas_sample_positions(len(candidates), seed, n=n, frac=None if n is not None else frac)]

    known_idx = np.flatnonzero(known)
    classes, first = np.unique(labels[known_idx], return_index=True)
    present = np.isin(classes, labels[sampled])
    # `one_per_cls` keeps file order, and so does the concatenation after the sample
    restored_rows = np.sort(known_idx[first[~present]])
    taken = np.concatenate([sampled, restored_rows])

    chosen = np.zeros(len(meta), dtype=bool)
    chosen[taken] = True
    trimmed = np.zeros(len(meta), dtype=bool)
    trimmed_from: List[int] = []
    if n is not None and len(taken) > n:
        excess = len(taken) - n
        names = np.asarray(wnids, dtype=object)[labels[taken]] if wnids is not None else labels[taken]
        top = pd.Series(names).value_counts().index[:top_classes]
        label_of = dict(zip(names, labels[taken]))
        trimmed_from = [int(label_of[name]) for name in top]
        pool = taken[np.isin(names, top)]
        if excess > len(pool):
            raise InputError(f"n={n} is too small: {excess} rows to drop but the {len(top)} largest classes "
                             f"have only {len(pool)}")
        trimmed[pool[pandas_sample_positions(len(pool), seed, n=excess)]] = True
        chosen &= ~trimmed

    dropped = {
        "unknown_wnid": int((~known).sum()),
        "below_threshold": int((known & ~above & ~chosen & ~trimmed).sum()),
        "not_sampled": int((above & ~chosen & ~trimmed).sum()),
        "trimmed_top_classes": int(trimmed.sum()),
    }
    order = np.argsort(ids[chosen], kind="stable")  # the original's `sort_index()`
    return SubsetSelection(laion_index=ids[chosen][order], labels=labels[chosen][order], read=len(meta),
                           dropped={r: c for r, c in dropped.items() if c},
                           restored=[int(lab) for lab in classes[~present]], trimmed_from=trimmed_from,
                           above_threshold=int(above.sum()), sampled=int(k))

"""Helpers and fixtures of the original_sampling tests shared by more than one layer."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from curation import concepts


# ---------------------------------------------------------------- LAIONet subsets
@pytest.fixture(scope="session")
def laionet_meta(tmp_path_factory):
    """Success metadata in two files of several row groups: rows not in laion_index order,
    a long tail of 40 classes, float32 similarities, some exactly float32(0.7)."""
    wnids = concepts.wnids()
    rng = np.random.default_rng(1)
    n = 3000
    weights = 1.0 / np.arange(1, 41) ** 1.3
    classes = rng.choice(40, n, p=weights / weights.sum())
    sim = rng.uniform(0.55, 0.95, n).astype(np.float32)
    sim[rng.choice(n, 60, replace=False)] = np.float32(0.7)
    df = pd.DataFrame({"laion_index": rng.permutation(n).astype(np.int64) * 11 + 5_000_000,
                       "TEXT": [f"text {i}" for i in range(n)],
                       "wnid": [wnids[c * 17] for c in classes],
                       "text_to_name_def_wnid_similarity": sim})
    folder = tmp_path_factory.mktemp("orig_laionet") / "meta"
    os.makedirs(folder)
    df.iloc[:1700].to_parquet(folder / "part-0.parquet", index=False, row_group_size=200)
    df.iloc[1700:].to_parquet(folder / "part-1.parquet", index=False, row_group_size=200)
    return str(folder), df

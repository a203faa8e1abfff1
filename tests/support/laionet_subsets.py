"""Helpers and fixtures of the laionet_subsets tests shared by more than one layer."""

import os

import numpy as np
import pandas as pd


def _success_metadata(folder, n_rows=600, n_files=3, seed=0):
    """Success metadata as the arrange job writes it (several files, rows out of order)."""
    from curation.concepts import wnids

    all_wnids = wnids()
    rng = np.random.default_rng(seed)
    class_ids = rng.choice(30, size=n_rows, p=(w := 1 / np.arange(1, 31)) / w.sum())
    idx = rng.permutation(np.arange(n_rows) * 3 + 200_000_000)
    df = pd.DataFrame({
        "SAMPLE_ID": np.arange(n_rows, dtype=np.int64), "URL": [f"http://x/{i}.jpg" for i in idx],
        "TEXT": [f"a photo\tof thing {i}\r\nnice" for i in idx],
        "HEIGHT": np.int32(256), "WIDTH": np.int32(256), "LICENSE": "?", "NSFW": "UNLIKELY",
        "similarity": rng.uniform(0.2, 0.4, n_rows), "laion_index": idx,
        "wnid": [all_wnids[c * 7] for c in class_ids],
        "name_def_wnid": "x", "text_to_name_def_wnid_similarity": rng.uniform(0.6, 1.0, n_rows),
    })
    df.loc[5, "wnid"] = "n02112837"  # LAIONet's husky wnid: label of n02110185
    os.makedirs(folder, exist_ok=True)
    for i, rows in enumerate(np.array_split(np.arange(n_rows), n_files)):
        df.iloc[rows].to_parquet(os.path.join(folder, f"part-{i:05d}.parquet"), index=False)
    return df


def _subsets_cfg(**kw):
    from jobs.framework.config import build_config
    from jobs.laionet_subsets import SubsetsConfig

    return build_config(SubsetsConfig, kw)

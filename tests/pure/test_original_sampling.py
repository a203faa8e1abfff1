"""`--sampling original`: our outputs against the original scripts' generator calls on the
same input, written here as plain Python/pandas following `create_incaps_caption_variants.py`,
`create_incaps_subsets.py` and `create_laionet_subsets.py` (clip-beyond-tail `data_utils/`),
on the tests' local[2] Spark session with inputs split over several tasks (the captions job is one pass of
the driver's Python, with or without the session)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def test_laionet_float32_threshold_as_pandas_compares(laionet_meta):
    from curation.laionet_subsets import select_subset, select_subset_original

    _, df = laionet_meta
    meta = pd.DataFrame({"laion_index": df.laion_index, "label": 0,
                         "similarity": df.text_to_name_def_wnid_similarity})
    above = int((df.text_to_name_def_wnid_similarity >= 0.7).sum())
    assert select_subset_original(meta, 0.7).above_threshold == above == select_subset(meta, 0.7).above_threshold
    assert above > int((df.text_to_name_def_wnid_similarity.astype(np.float64) >= 0.7).sum())

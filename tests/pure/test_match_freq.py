"""match-freq: per-class targets from ImageNet-Captions, LAIONet first, the retrieved set
for the rest, shortfalls reported; the job's TSV, parquet twin, frequency file and report."""
from __future__ import annotations

import numpy as np
import pandas as pd

from curation.t2t import match_frequencies
from tests.support.match_freq import A, B, C


def _frame(rows):
    return pd.DataFrame(rows, columns=["laion_index", "wnid"])


def test_targets_reached_from_laionet_first_then_t2t():
    laionet = _frame([(i, A) for i in range(10)] + [(100 + i, B) for i in range(2)])
    t2t = _frame([(200 + i, B) for i in range(5)] + [(300, C)])
    sel = match_frequencies(laionet, t2t, {A: 4, B: 5, C: 3}, seed=1)
    t = sel.table.set_index("wnid")
    assert t.loc[A, ["from_laionet", "from_t2t", "shortfall"]].tolist() == [4, 0, 0]
    assert t.loc[B, ["from_laionet", "from_t2t", "shortfall"]].tolist() == [2, 3, 0]
    assert t.loc[C, ["from_laionet", "from_t2t", "achieved", "shortfall"]].tolist() == [0, 1, 1, 2]
    assert sel.rows.groupby(["wnid", "from"]).size().to_dict() == {
        (A, "laionet"): 4, (B, "laionet"): 2, (B, "laionet-t2t"): 3, (C, "laionet-t2t"): 1}
    assert sel.read == len(sel.rows) + sum(sel.dropped.values())
    assert sel.dropped == {"laionet_over_target": 6, "t2t_already_from_laionet": 0, "t2t_over_target": 2}


def test_sample_depends_only_on_ids_and_seed():
    rng = np.random.default_rng(0)
    laionet = _frame([(int(i), A) for i in rng.choice(10**6, 50, replace=False)])
    t2t = _frame([(int(i), A) for i in rng.choice(10**6, 50, replace=False) + 10**7])
    targets = {A: 70}
    one = match_frequencies(laionet, t2t, targets, seed=3).rows
    shuffled = match_frequencies(laionet.sample(frac=1, random_state=1), t2t.sample(frac=1, random_state=2),
                                 targets, seed=3).rows
    pd.testing.assert_frame_equal(one, shuffled)
    other = match_frequencies(laionet, t2t, targets, seed=4).rows
    assert (one["from"] == "laionet").sum() == 50 and len(one) == 70
    assert set(one["laion_index"]) != set(other["laion_index"])


def test_retrieved_row_already_taken_from_laionet_is_not_taken_twice():
    laionet = _frame([(1, A), (2, A)])
    t2t = _frame([(1, A), (3, A)])
    sel = match_frequencies(laionet, t2t, {A: 4}, seed=0)
    assert sorted(sel.rows["laion_index"]) == [1, 2, 3]
    assert sel.dropped["t2t_already_from_laionet"] == 1
    assert sel.table.set_index("wnid").loc[A, "shortfall"] == 1

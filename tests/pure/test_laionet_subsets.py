"""LAIONet subsets: the selection rules on pandas, then the Spark job end to end."""


import numpy as np
import pandas as pd
import pytest

from curation.errors import InputError
from curation.laionet_subsets import output_names, select_subset


def _meta(n_rows=2000, n_classes=40, seed=0):
    """Long-tailed classes; similarity uniform in [0.5, 1); laion_index sparse and shuffled."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_classes + 1) ** 1.2
    df = pd.DataFrame({
        "laion_index": rng.permutation(np.arange(n_rows) * 7 + 100_000_000),
        "label": rng.choice(n_classes, size=n_rows, p=weights / weights.sum()),
        "similarity": rng.uniform(0.5, 1.0, size=n_rows),
    })
    return df


def test_threshold_keeps_exactly_the_rows_above_and_restores_lost_classes():
    meta = _meta()
    sel = select_subset(meta, thresh=0.9, seed=1)
    above = meta[meta.similarity >= 0.9]
    restored = set(meta.label) - set(above.label)
    assert sel.restored == sorted(restored) and restored  # the threshold empties some tail classes
    first = meta.sort_values("laion_index").groupby("label").head(1).set_index("label").laion_index
    expected = set(above.laion_index) | {first[lab] for lab in restored}
    assert set(sel.laion_index) == expected
    assert sel.read == len(meta) == len(sel.laion_index) + sum(sel.dropped.values())
    assert sel.dropped == {"below_threshold": len(meta) - len(above) - len(restored)}


def test_frac_samples_round_frac_times_rows_and_keeps_every_class():
    meta = _meta()
    sel = select_subset(meta, thresh=0.7, frac=0.25, seed=3)
    n_above = int((meta.similarity >= 0.7).sum())
    assert sel.sampled == round(0.25 * n_above)
    assert len(sel.laion_index) == sel.sampled + len(sel.restored)
    assert set(sel.labels) == set(meta.label)
    out_above = int(meta.set_index("laion_index").loc[sel.laion_index].similarity.ge(0.7).sum())
    assert sel.dropped["not_sampled"] == n_above - out_above    # restored rows may be above too
    assert sel.dropped["below_threshold"] == len(meta) - n_above - (len(sel.laion_index) - out_above)


def test_exact_n_trims_the_excess_from_the_ten_largest_classes():
    from curation.sampling import stable_uniform

    meta = _meta()
    sel = select_subset(meta, thresh=0.7, n=100, seed=5)
    assert len(sel.laion_index) == 100
    assert set(sel.labels) == set(meta.label)  # every class kept
    assert len(sel.restored) > 0 and sel.dropped["trimmed_top_classes"] == len(sel.restored)
    # the sample before trimming: the 100 rows above the threshold with the smallest keys
    above = meta[meta.similarity >= 0.7]
    sampled = above.iloc[np.argsort(stable_uniform(above.laion_index, 5, "sample"))[:100]]
    trimmed = sampled[~sampled.laion_index.isin(sel.laion_index)]
    assert len(trimmed) == len(sel.restored)
    combined = pd.concat([sampled.label, pd.Series(sel.restored)]).value_counts()
    top10 = sorted(combined.index, key=lambda lab: (-combined[lab], lab))[:10]
    assert sel.trimmed_from == top10 and set(trimmed.label) <= set(top10)
    # trimming never takes a class's last row: here it would have to, so n is refused
    tiny = pd.DataFrame({"laion_index": [1, 2, 3], "label": [0, 1, 2], "similarity": [0.9, 0.9, 0.1]})
    with pytest.raises(InputError, match="n=2 is too small"):
        select_subset(tiny, thresh=0.5, n=2)


def test_sampling_depends_on_ids_and_seed_not_row_order():
    meta = _meta()
    a = select_subset(meta, thresh=0.7, n=300, seed=7)
    b = select_subset(meta.sample(frac=1, random_state=1), thresh=0.7, n=300, seed=7)
    c = select_subset(meta, thresh=0.7, n=300, seed=8)
    assert np.array_equal(a.laion_index, b.laion_index)
    assert not np.array_equal(a.laion_index, c.laion_index)


def test_unknown_classes_missing_similarity_and_bad_inputs():
    meta = _meta(200, 5)
    meta.loc[:9, "label"] = None
    meta.loc[10:19, "similarity"] = None
    sel = select_subset(meta, thresh=0.5, seed=0)
    assert sel.dropped["unknown_wnid"] == 10 and len(sel.laion_index) == 190 - 10 + len(sel.restored)
    with pytest.raises(InputError, match="more than the"):
        select_subset(meta, thresh=0.99, n=150)
    with pytest.raises(InputError, match="too small"):
        select_subset(_meta(500, 40), thresh=0.99, n=3)
    dup = pd.concat([meta, meta.head(1)])
    with pytest.raises(InputError, match="laion_index.*not unique"):
        select_subset(dup, thresh=0.5)
    with pytest.raises(InputError, match="laion_index.*null"):
        select_subset(meta.assign(laion_index=meta.laion_index.astype("Int64").mask(meta.index == 3)), thresh=0.5)


def test_output_names_follow_the_original():
    assert output_names(0.7, 1.0, None, 12) == ("laionet_thresh0.7_12.tsv", "class_frequency_laionet_thresh0.7_ori.txt")
    assert output_names(0.7, 0.03125, None, 5) == ("laionet_thresh0.7_frac0.03125_5.tsv",
                                                   "class_frequency_laionet_thresh0.7_frac0.03125_ori.txt")
    assert output_names(0.82, 1.0, 448896, 448896) == ("laionet_thresh0.82_448896.tsv",
                                                       "class_frequency_laionet_thresh0.82_n448896_ori.txt")

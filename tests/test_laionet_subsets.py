"""LAIONet subsets: the selection rules on pandas, then the Spark job end to end."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from curation.errors import ConfigError, InputError
from curation.laionet_subsets import output_names, select_subset

# ---------------------------------------------------------------- selection rules (pandas)


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


# ---------------------------------------------------------------- the Spark job


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


def test_job_writes_tsv_frequency_file_plot_and_report(spark, tmp_path):
    from curation.concepts import classnames, wnid_to_label
    from curation.frequency import read_frequency_file
    from jobs.laionet_subsets import run_subsets

    meta = _success_metadata(str(tmp_path / "meta"))
    report = run_subsets(spark, _subsets_cfg(df=str(tmp_path / "meta"), out_dir=str(tmp_path / "out"),
                                             thresh=0.8, n=100, seed=3, images_root="/data/laionet/"))
    tsv = tmp_path / "out" / "laionet_thresh0.8_100.tsv"
    out = pd.read_csv(tsv, sep="\t", dtype={"label": int})
    assert list(out.columns) == ["filepath", "label", "caption"] and len(out) == 100
    idx = out.filepath.str.extract(r"/(\d+)\.jpg$")[0].astype(int)
    assert idx.is_monotonic_increasing                            # laion_index order
    row = meta.set_index("laion_index").loc[idx.iloc[0]]
    assert out.filepath.iloc[0] == f"/data/laionet/{row.wnid}/{idx.iloc[0]}.jpg"
    assert out.caption.iloc[0] == f"a photo of thing {idx.iloc[0]}  nice"
    labels = {w: l for w, l in wnid_to_label().items()}
    labels["n02112837"] = labels["n02110185"]
    assert (out.label.to_numpy() == meta.set_index("laion_index").loc[idx].wnid.map(labels).to_numpy()).all()
    assert set(out.label) == set(meta.wnid.map(labels))          # every class kept
    freq = read_frequency_file(str(tmp_path / "out" / "class_frequency_laionet_thresh0.8_n100_ori.txt"), 1000)
    assert [name for name, _ in freq] == classnames()
    assert {i: c for i, (_, c) in enumerate(freq) if c} == out.label.value_counts().to_dict()
    assert (tmp_path / "out" / "class_frequency_laionet_thresh0.8_n100_ori.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "out" / "laionet_thresh0.8_100.tsv.report.json").read_text())
    assert saved["read"] == 600 and saved["kept"] == 100 == report.kept
    assert saved["read"] == saved["kept"] + sum(saved["dropped"].values())
    assert saved["info"]["freq_file"].endswith("class_frequency_laionet_thresh0.8_n100_ori.txt")


def test_job_is_deterministic_across_masters_and_partitioning(spark, tmp_path, local1_app):
    """One file read by local[1] (its own application) == the same rows shuffled into 5 files,
    read by the tests' local[2] session."""
    from jobs.laionet_subsets import run_subsets

    meta = _success_metadata(str(tmp_path / "a"), n_files=1)
    os.makedirs(tmp_path / "b")
    shuffled = meta.sample(frac=1, random_state=4)
    for i, rows in enumerate(np.array_split(np.arange(len(meta)), 5)):
        shuffled.iloc[rows].to_parquet(tmp_path / "b" / f"p{i}.parquet", index=False)
    run_subsets(spark, _subsets_cfg(df=str(tmp_path / "b"), out_dir=str(tmp_path / "out_b"),
                                    thresh=0.7, frac=0.5, seed=11))
    res = local1_app.curate("laionet", "subsets", "--df", str(tmp_path / "a"), "--out-dir", str(tmp_path / "out_a"),
                            "--thresh", "0.7", "--frac", "0.5", "--seed", "11")
    assert res.returncode == 0, res.output
    names = {src: sorted(p.name for p in (tmp_path / f"out_{src}").iterdir() if p.suffix == ".tsv")
             for src in "ab"}
    assert names["a"] == names["b"] and names["a"][0].startswith("laionet_thresh0.7_frac0.5_")
    assert (tmp_path / "out_a" / names["a"][0]).read_bytes() == (tmp_path / "out_b" / names["b"][0]).read_bytes()
    freq = "class_frequency_laionet_thresh0.7_frac0.5_ori.txt"
    assert (tmp_path / "out_a" / freq).read_bytes() == (tmp_path / "out_b" / freq).read_bytes()


@pytest.mark.parametrize("flags, key", [
    (["--thresh", "1.5"], "thresh"), (["--thresh", "-1.01"], "thresh"),
    (["--frac", "0"], "frac"), (["--frac", "1.2"], "frac"), (["--n", "0"], "n"),
    (["--n", "10", "--frac", "0.5"], "n"),
])
def test_bad_config_fails_before_any_work(flags, key):
    from jobs.framework.base import execute
    from jobs.laionet_subsets import JOB

    with pytest.raises(ConfigError, match=f"'{key}'"):
        _subsets_cfg(**{"df": "x", "out_dir": "y", **{f[2:]: v for f, v in zip(flags[::2], flags[1::2])}})
    # through the CLI entry: exit 2, no Spark (the input does not even exist)
    assert execute(JOB, ["--df", "/nonexistent", "--out-dir", "/tmp/x"] + flags) == 2


def test_missing_column_is_a_one_line_error(spark, tmp_path):
    from jobs.laionet_subsets import run_subsets

    meta = _success_metadata(str(tmp_path / "meta"), n_files=1)
    meta.drop(columns=["text_to_name_def_wnid_similarity"]).to_parquet(tmp_path / "meta" / "part-00000.parquet")
    with pytest.raises(InputError, match="no column 'text_to_name_def_wnid_similarity'"):
        run_subsets(spark, _subsets_cfg(df=str(tmp_path / "meta"), out_dir=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


def test_presets_parse():
    import glob

    from jobs.framework.config import load_yaml

    presets = glob.glob(os.path.join(os.path.dirname(__file__), "..", "conf", "laionet", "subsets-*.yaml"))
    assert len(presets) >= 3
    for path in presets:
        cfg = _subsets_cfg(**{**load_yaml(path), "df": "success.parquet"})
        assert cfg.similarity_col == "text_to_name_def_wnid_similarity"

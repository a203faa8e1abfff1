"""match-freq: per-class targets from ImageNet-Captions, LAIONet first, the retrieved set
for the rest, shortfalls reported; the job's TSV, parquet twin, frequency file and report."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from curation.concepts import classnames, wnid_to_label, wnids
from curation.t2t import match_frequencies
from jobs.framework.base import execute
from jobs.laionet_match_freq import JOB

A, B, C = wnids()[:3]


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


def test_match_freq_job(spark, tmp_path):
    caps = [{"filename": f"{w}_{i}.JPEG", "title": "t", "tags": [], "description": ""}
            for w, n in ((A, 3), (B, 4), (C, 2)) for i in range(n)]
    (tmp_path / "caps.json").write_text(json.dumps(caps + caps[:1]))
    laionet = pd.DataFrame({"laion_index": np.arange(6, dtype=np.int64), "wnid": [A] * 5 + ["n02112837"],
                            "TEXT": ["a\tb", "c\nd", ' say "e" ', '"f', "g", "husky"], "similarity": 0.5})
    t2t = pd.DataFrame({"laion_index": np.int64([100, 101, 102, 5]), "wnid": [B, B, B, A],
                        "TEXT": ["x", "y", "z", "dup"], "similarity": 0.3})
    laionet.to_parquet(tmp_path / "laionet.parquet")
    t2t.to_parquet(tmp_path / "t2t.parquet")
    out = tmp_path / "out"
    assert execute(JOB, ["--df", str(tmp_path / "laionet.parquet"), "--t2t-df", str(tmp_path / "t2t.parquet"),
                         "--captions-df", str(tmp_path / "caps.json"), "--out-dir", str(out),
                         "--laionet-root", "/d/laionet", "--t2t-root", "/d/t2t"]) == 0
    # targets A 3, B 4, C 2: A from LAIONet (3 of 5), B from t2t (3 of 3), C short
    tsv = pd.read_csv(out / "laionet_match_incaps_6.tsv", sep="\t", keep_default_na=False)
    assert list(tsv.columns) == ["filepath", "label", "caption"]
    assert len(tsv) == 6
    labels = wnid_to_label()
    assert tsv["label"].tolist().count(labels[A]) == 3 and tsv["label"].tolist().count(labels[B]) == 3
    assert all(p.startswith(f"/d/laionet/{A}/") for p in tsv["filepath"][tsv["label"] == labels[A]])
    assert set(tsv["filepath"][tsv["label"] == labels[B]]) == {f"/d/t2t/{B}/{i}.jpg" for i in (100, 101, 102)}
    assert not tsv["caption"].str.contains("[\t\n\r]").any()
    twin = pd.read_parquet(out / "laionet_match_incaps_6.parquet")
    # quotes and spaces come back as written; the file is pandas' to_csv of the rows
    rows = twin.sort_values(["laion_index", "from"])[["filepath", "label", "caption"]]
    assert tsv["caption"].tolist() == rows["caption"].tolist()
    assert (out / "laionet_match_incaps_6.tsv").read_bytes() == rows.to_csv(sep="\t", index=False).encode()
    assert twin.groupby("from").size().to_dict() == {"laionet": 3, "laionet-t2t": 3}

    freq = (out / "class_frequency_laionet_match_incaps_ori.txt").read_text().splitlines()
    assert len(freq) == 1000 and freq[0] == f"{classnames()[0]}\t3" and freq[1] == f"{classnames()[1]}\t3"
    assert (out / "class_frequency_laionet_match_incaps_ori.png").stat().st_size > 1000
    report = json.loads((out / "laionet_match_incaps_6.tsv.report.json").read_text())
    assert report["info"]["target_total"] == 9 and report["info"]["achieved_total"] == 6
    assert report["info"]["shortfalls"] == {B: {"achieved": 3, "target": 4}, C: {"achieved": 0, "target": 2}}
    assert report["read"] == 10 and report["kept"] == 6


def test_missing_column_is_named(spark, tmp_path, capsys):
    pd.DataFrame({"laion_index": [1], "TEXT": ["x"]}).to_parquet(tmp_path / "bad.parquet")
    (tmp_path / "caps.json").write_text(json.dumps([{"filename": f"{A}_1.JPEG"}]))
    assert execute(JOB, ["--df", str(tmp_path / "bad.parquet"), "--t2t-df", str(tmp_path / "bad.parquet"),
                         "--captions-df", str(tmp_path / "caps.json"), "--out-dir", str(tmp_path)]) == 2
    assert "bad.parquet has no column 'wnid'" in capsys.readouterr().err

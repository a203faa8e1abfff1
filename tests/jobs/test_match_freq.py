"""match-freq: per-class targets from ImageNet-Captions, LAIONet first, the retrieved set
for the rest, shortfalls reported; the job's TSV, parquet twin, frequency file and report."""
from __future__ import annotations

import json

import numpy as np

import pandas as pd

from curation.concepts import classnames, wnid_to_label


from jobs.framework.base import execute

from jobs.laionet_match_freq import JOB

from tests.support.match_freq import A, B, C


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


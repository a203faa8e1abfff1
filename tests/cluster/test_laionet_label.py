"""Spark tests of `laionet label`, `laionet subset`, reading LAION parts and `sample-data laion`."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest


@pytest.mark.slow
@pytest.mark.cluster
def test_label_is_identical_on_a_local_cluster(parts, label_run, lemma_map_file, tmp_path, cluster_app):
    out = str(tmp_path / "labels")
    res = cluster_app.curate("laionet", "label", "--laion", parts, "--out", out, "--lemma-map", lemma_map_file)
    assert res.returncode == 0, res.output
    key = [("laion_index", "ascending"), ("lemma", "ascending")]
    assert pq.read_table(out).sort_by(key).equals(pq.read_table(label_run[0]).sort_by(key))

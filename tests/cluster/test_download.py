"""`curate laionet download`: img2dataset's pyspark distributor on local[2] against 127.0.0.1."""
from __future__ import annotations

import json
import os

import pytest

from tests.support.download import laion_metadata

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # before the session's workers start


@pytest.mark.slow
@pytest.mark.cluster
def test_cli_download_and_arrange_on_separate_executors(server, cluster_app):
    """`curate` on local-cluster with paths relative to the user's directory (the
    application's): executors are separate Python processes in directories of their own."""
    d = cluster_app.folder()
    here = os.path.join(cluster_app.cwd, d)
    meta = laion_metadata(server.base_url, os.path.join(here, "m.parquet"))
    ok = int(meta.kind.isin(["img", "redirect", "huge"]).sum())
    dl = cluster_app.curate("laionet", "download", "--metadata", f"{d}/m.parquet", "--out", f"{d}/shards",
                            "--number-sample-per-shard", "10", "--thread-count", "8", "--retries", "0",
                            "--timeout", "5")
    assert dl.returncode == 0, dl.output
    report = json.load(open(os.path.join(here, "shards.report.json")))
    assert report["kept"] == ok, (report, dl.output)
    ar = cluster_app.curate("laionet", "arrange", "--shards", f"{d}/shards", "--metadata", f"{d}/m.parquet",
                            "--target", f"{d}/laionet", "--target-df", f"{d}/laionet_thresh0.7.parquet")
    assert ar.returncode == 0, ar.output
    assert sum(len(files) for _, _, files in os.walk(os.path.join(here, "laionet"))) == ok
    assert os.path.exists(os.path.join(here, f"laionet_thresh0.7_success{ok}.parquet", "_report.json"))
    bad = cluster_app.curate("laionet", "arrange", "--shards", f"{d}/shards", "--metadata", "nope.parquet",
                             "--target", f"{d}/laionet")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1] == "error: --metadata nope.parquet: not found"

"""The job framework end to end: the `curate` entry point, config sidecars, sessions.

A trivial Spark job (`curate concepts table`) runs under `local[2]` and, with executors in
separate processes, under `local-cluster[2,1,1024]`; both write the same rows and a
`_config.yaml` / `_report.json` beside them. Bad config values fail before Spark starts."""
from __future__ import annotations

import os
import subprocess

import pandas as pd
import pytest

from tests.support import REPO
from tests.support.framework import read_table, run_curate


@pytest.mark.cluster
def test_trivial_job_under_local_cluster_matches_local(curate_cmd, tmp_path):
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    # an unactivated venv: PATH without .venv/bin, PYSPARK_PYTHON unset -> executors must still
    # run this interpreter (separate processes in local-cluster mode); both runs at once
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_PYTHON"}
    env["PATH"] = "/usr/bin:/bin"
    on_cluster = subprocess.Popen([*curate_cmd, "concepts", "table", "--out", str(cluster),
                                   "--master", "local-cluster[2,1,1024]"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        res = run_curate(curate_cmd, "concepts", "table", "--out", str(local), "--master", "local[2]")
        assert res.returncode == 0, res.stderr
        _, stderr = on_cluster.communicate(timeout=300)
    finally:
        on_cluster.kill()
    assert on_cluster.returncode == 0, stderr
    assert (cluster / "_config.yaml").exists() and (cluster / "_report.json").exists()
    pd.testing.assert_frame_equal(read_table(local), read_table(cluster))

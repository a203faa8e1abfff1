"""The job framework end to end: the `curate` entry point, config sidecars, sessions.

A trivial Spark job (`curate concepts table`) runs on the suite's `local[2]` session and,
from an unactivated venv's `curate` with executors in separate processes, under
`local-cluster[2,1,1024]`; both write the same rows and a `_config.yaml` / `_report.json`."""
from __future__ import annotations

import os
import subprocess

import pandas as pd
import pytest

from tests.support import REPO
from tests.support.framework import read_table


@pytest.mark.cluster
def test_trivial_job_under_local_cluster_matches_local(spark, curate_cmd, tmp_path):
    from jobs.framework.base import execute
    from jobs.framework.cli import discover

    local, cluster = tmp_path / "local", tmp_path / "cluster"
    # an unactivated venv: PATH without .venv/bin, PYSPARK_PYTHON unset -> executors must still
    # run this interpreter (separate processes in local-cluster mode); the local[2] run meanwhile
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_PYTHON"}
    env["PATH"] = "/usr/bin:/bin"
    on_cluster = subprocess.Popen([*curate_cmd, "concepts", "table", "--out", str(cluster),
                                   "--master", "local-cluster[2,1,1024]"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        assert execute(discover()[("concepts", "table")], ["--out", str(local)]) == 0
        _, stderr = on_cluster.communicate(timeout=300)
    finally:
        on_cluster.kill()
    assert on_cluster.returncode == 0, stderr
    assert (cluster / "_config.yaml").exists() and (cluster / "_report.json").exists()
    pd.testing.assert_frame_equal(read_table(local), read_table(cluster))

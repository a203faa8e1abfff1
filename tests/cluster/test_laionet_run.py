"""`curate laionet run`: stages in order, skipping finished ones; same output on any master."""
from __future__ import annotations

import pandas as pd
import pytest

from tests.support.laionet_run import read_outputs, run_values


@pytest.mark.slow
@pytest.mark.cluster
def test_same_output_under_local1_local2_and_local_cluster(first_run, tmp_path, sample_laion, tiny_model,
                                                           local1_app, cluster_app):
    _, _, expected = first_run  # local[2]: the suite's session
    runs = {}
    for app in (local1_app, cluster_app):  # both at once: each mostly waits on its executors
        work = str(tmp_path / app.master.replace("[", "_").replace("]", "").replace(",", "_"))
        args = [f"--{k.replace('_', '-')}={v}" for k, v in run_values(sample_laion, work, tiny_model).items()
                if not isinstance(v, bool)]
        app.send("laionet", "run", *args, "--remove-nsfw")
        runs[work] = app
    for work, app in runs.items():
        res = app.receive(timeout=900)
        assert res.returncode == 0, res.output
        got = read_outputs(work)
        pd.testing.assert_frame_equal(got[0], expected[0], check_exact=True)
        pd.testing.assert_frame_equal(got[1], expected[1], check_exact=True)
        assert got[2] == expected[2]

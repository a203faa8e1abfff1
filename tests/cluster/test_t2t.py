"""ImageNet-Captions queries, t2t-search (encoder and precomputed corpora), the inverse
index, the greedy (original) and max-similarity assignments, bad input, determinism
across masters."""
from __future__ import annotations

import pandas as pd
import pytest

from jobs.framework.base import execute
from tests.support.t2t import SEARCH, _search_args, _write_npy


@pytest.mark.slow
def test_same_output_on_local1_and_local2(spark, t2t_inputs, tmp_path, local1_app):
    inp = t2t_inputs
    _write_npy(inp, tmp_path / "npy")
    common = ["--corpus", "precomputed", "--text-emb", str(tmp_path / "npy")]
    assert execute(SEARCH, _search_args(inp, tmp_path / "two", *common)) == 0
    args = _search_args(inp, tmp_path / "one", *common)
    args[args.index("--rows-per-task") + 1] = "1000"
    res = local1_app.curate("laionet", "t2t-search", *args, timeout=300)
    assert res.returncode == 0, res.output
    one = pd.read_parquet(tmp_path / "one").sort_values(["filename", "rank"]).reset_index(drop=True)
    two = pd.read_parquet(tmp_path / "two").sort_values(["filename", "rank"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(one, two)

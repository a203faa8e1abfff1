"""Helpers and fixtures of the laionet_run tests shared by more than one layer."""
from __future__ import annotations

import os

import pandas as pd
import pytest

from tests.support.tiny_clip import write_tiny_clip


@pytest.fixture(scope="session")
def sample_laion(tmp_path_factory):
    from jobs import sample_data
    from jobs.framework.config import build_config

    out = str(tmp_path_factory.mktemp("laion") / "parts")
    sample_data.run(None, build_config(sample_data.SampleLaionConfig,
                                       {"out": out, "rows": 400, "parts": 2, "seed": 3}))
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return write_tiny_clip(str(tmp_path_factory.mktemp("tiny_clip")))


def run_values(laion, work_dir, model, **extra):
    return {"laion": laion, "work_dir": work_dir, "model": model[0], "pretrained": model[1],
            "threshold": 0.0, "remove_nsfw": True, "partitions": 3, **extra}


def read_outputs(work_dir):
    sim = pd.read_parquet(os.path.join(work_dir, "similarity")).sort_values("laion_index").reset_index(drop=True)
    kept = pd.read_parquet(os.path.join(work_dir, "filter")).reset_index(drop=True)
    with open(os.path.join(work_dir, "filter.class_frequency.txt")) as fh:
        freq = fh.read()
    return sim, kept, freq


@pytest.fixture(scope="session")
def first_run(spark, tmp_path_factory, sample_laion, tiny_model):
    """(work dir, stage reports, outputs) of one run on the suite's local[2] session; the
    outputs are read at once (a later test re-runs stages in that work dir)."""
    from jobs.framework.config import build_config
    from jobs.laionet_run import RunConfig, run

    work = str(tmp_path_factory.mktemp("run") / "work")
    reports = run(spark, build_config(RunConfig, run_values(sample_laion, work, tiny_model)))
    return work, reports, read_outputs(work)

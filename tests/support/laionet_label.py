"""Helpers and fixtures of the laionet_label tests shared by more than one layer."""
from __future__ import annotations

import os

import pytest

from jobs.laionet_label import MatchConfig, run_label
from jobs.sample_data import SampleLaionConfig
from jobs.sample_data import run as run_sample

ROWS = 3000


@pytest.fixture(scope="session")
def lemma_map_file(reference_dir):
    return os.path.join(reference_dir, "lemma2wnid_unique_in_ilsvrc_ignored_empty_wnids.json")


@pytest.fixture(scope="session")
def parts(tmp_path_factory, lemma_map_file):
    """Three sample parts (numbers 4, 5, 6) with several row groups each."""
    out = str(tmp_path_factory.mktemp("laion") / "parts")
    run_sample(None, SampleLaionConfig(out=out, rows=ROWS, parts=3, seed=11, row_group_rows=250,
                                       first_part=4, lemma_map=lemma_map_file))
    return out


@pytest.fixture(scope="session")
def label_run(spark, parts, lemma_map_file, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("label") / "labels")
    report = run_label(spark, MatchConfig(laion=parts, out=out, lemma_map=lemma_map_file))
    return out, report

"""Similarity numerics: the study presets score in fp32, and the precision bench's counting."""
from __future__ import annotations

import dataclasses
import os
import sys

import pytest

from tests.support import REPO

sys.path.insert(0, REPO)


def _on_gpu(spec):
    """(device, precision) the spec resolves to in a task that Spark gave a GPU."""
    from udfs.encoders import task_device

    return task_device(dataclasses.replace(spec, device="cuda"))


@pytest.mark.parametrize("preset", ["thresh0.7.yaml", "thresh0.82.yaml"])
def test_study_presets_score_in_fp32_on_gpu(preset, tiny_model, tmp_path):
    from jobs.framework.config import parse_job_args
    from jobs.laionet_run import RunConfig, stage_config, stage_named
    from jobs.laionet_similarity import JOB

    path = os.path.join(REPO, "conf", "laionet", preset)
    # the tiny model stands in for the OpenAI weights (no download); precision comes from the preset
    cfg, _ = parse_job_args(RunConfig, ["--config", path, "--laion", str(tmp_path), "--work-dir", str(tmp_path),
                                        "--model", tiny_model[0], "--pretrained", tiny_model[1]])
    sim_cfg = stage_config(cfg, stage_named("similarity"), JOB)
    assert sim_cfg.precision == "fp32"
    assert _on_gpu(sim_cfg.encoder_spec()) == ("cuda:0", "fp32")
    # without the preset key a GPU task would score in fp16
    assert _on_gpu(dataclasses.replace(sim_cfg.encoder_spec(), precision="auto")) == ("cuda:0", "fp16")


def test_t2t_search_preset_encodes_queries_in_fp32(tiny_model, tmp_path):
    from jobs.framework.config import parse_job_args
    from jobs.laionet_t2t import T2TSearchConfig

    path = os.path.join(REPO, "conf", "laionet", "t2t.yaml")
    cfg, _ = parse_job_args(T2TSearchConfig, ["--config", path, "--captions-json", str(tmp_path / "c.json"),
                                              "--laion", str(tmp_path), "--text-emb", str(tmp_path),
                                              "--out", str(tmp_path / "o"),
                                              "--model", tiny_model[0], "--pretrained", tiny_model[1]])
    assert _on_gpu(cfg.encoder_spec()) == ("cuda:0", "fp32")

"""Similarity numerics: the study presets score in fp32, and the precision bench's counting."""
from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import pytest

from tiny_clip import write_tiny_clip

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_clip(str(tmp_path_factory.mktemp("tiny_clip")))


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


def test_decision_flips_counts_strict_threshold_crossings():
    from bench.bench_precision import decision_flips, precision_flips

    ref = np.array([0.10, 0.50, 0.70, 0.71, 0.70, 0.90])
    other = np.array([0.10, 0.71, 0.69, 0.71, 0.7000001, 0.69])
    # row 1 dropped -> kept, row 4 (0.7 is not > 0.7) dropped -> kept, row 5 kept -> dropped
    assert decision_flips(ref, other, 0.7) == 3
    assert decision_flips(ref, ref, 0.7) == 0
    r = precision_flips({"fp32": ref, "x": other}, quantile=0.5)
    assert r["fp32"]["flips"] == 0 and r["fp32"]["threshold"] == pytest.approx(np.median(ref))
    assert r["x"]["max_abs_delta"] == pytest.approx(0.21)


def test_precision_scores_of_a_tiny_clip(tiny_model):
    from bench.bench_precision import precision_flips, score_precisions
    from udfs.encoders import EncoderSpec, OpenClipTextEncoder

    spec = EncoderSpec(model=tiny_model[0], pretrained=tiny_model[1], batch_size=8)
    captions = [f"a photo of kit fox number {i}" + " in the desert" * (i % 4) for i in range(24)]
    queries = ["kit fox which is a small grey fox", "tench which is a freshwater fish"] * 12
    scores = score_precisions(lambda p: OpenClipTextEncoder(spec, "cpu", p), captions, queries,
                              precisions=("fp32", "bf16"))
    again = score_precisions(lambda p: OpenClipTextEncoder(spec, "cpu", p), captions, queries, precisions=("fp32",))
    np.testing.assert_array_equal(scores["fp32"], again["fp32"])  # deterministic reference
    delta = np.abs(scores["bf16"] - scores["fp32"])
    assert 0 < delta.max() < 0.05  # bf16 rounds (8-bit mantissa) but scores stay close
    r = precision_flips(scores)
    assert r["bf16"]["flips"] == int(np.sum((scores["fp32"] > r["bf16"]["threshold"])
                                            != (scores["bf16"] > r["bf16"]["threshold"])))
    assert r["bf16"]["flips"] <= r["bf16"]["within_max_delta"]  # only rows that close can flip


def test_tokenizer_cleanings_differ_only_where_open_clip_unescapes_again():
    import open_clip

    from bench.bench_precision import (open_clip_clean, open_clip_token_ids, original_clean,
                                       original_token_ids)

    tok = open_clip.get_tokenizer("ViT-B-32")
    same = ["Tom &amp; Jerry", "A  Photo\tof a\nDOG ", "Schöner Hund", "goldfish " * 100]
    for t in same:
        assert original_clean(t) == open_clip_clean(t)
        assert original_token_ids(tok, t) == open_clip_token_ids(tok, t)
    assert len(original_token_ids(tok, "goldfish " * 100)) == 77
    # ftfy leaves entities in text holding '<'; open_clip unescapes them anyway
    t = "<b>Sale</b> shoes &amp; bags"
    assert original_clean(t) == "<b>sale</b> shoes &amp; bags" and open_clip_clean(t) == "<b>sale</b> shoes & bags"
    assert original_token_ids(tok, t) != open_clip_token_ids(tok, t)
    # a literal <|endoftext|> is the special token for transformers only
    ids = original_token_ids(tok, "a <|endoftext|> b")
    assert ids.count(tok.eot_token_id) == 2 and open_clip_token_ids(tok, "a <|endoftext|> b").count(tok.eot_token_id) == 1

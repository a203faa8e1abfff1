"""`curate laionet run`: stages in order, skipping finished ones; same output on any master."""
from __future__ import annotations

import os

import pandas as pd

import pytest


from tests.support import CONF

from tests.support.laionet_run import read_outputs, run_values


def test_run_executes_stages_then_skips_them(spark, first_run, sample_laion, tiny_model, capsys):
    from jobs.framework.config import build_config
    from jobs.laionet_run import RunConfig, run

    work, first, _ = first_run
    assert list(first) == ["label", "subset", "similarity", "filter"]
    assert not any(r["skipped"] for r in first.values())
    assert first["similarity"]["read"] == first["subset"]["kept"] > 0
    assert first["filter"]["read"] == first["similarity"]["kept"] > 0
    assert first["filter"]["dropped"].get("nsfw", 0) > 0
    mtimes = {s: os.path.getmtime(os.path.join(work, s, "_report.json")) for s in first}

    capsys.readouterr()
    second = run(spark, build_config(RunConfig, run_values(sample_laion, work, tiny_model)))
    assert all(r["skipped"] for r in second.values())
    assert "[similarity] skipped" in capsys.readouterr().out
    assert {s: os.path.getmtime(os.path.join(work, s, "_report.json")) for s in second} == mtimes
    assert second["filter"]["kept"] == first["filter"]["kept"]

    # a new threshold re-runs only the filter
    median = float(read_outputs(work)[0]["text_to_name_def_wnid_similarity"].median())
    third = run(spark, build_config(RunConfig, run_values(sample_laion, work, tiny_model, threshold=median)))
    assert [s for s, r in third.items() if not r["skipped"]] == ["filter"]
    assert 0 < third["filter"]["kept"] < first["filter"]["kept"]
    kept = pd.read_parquet(os.path.join(work, "filter"))
    assert (kept["text_to_name_def_wnid_similarity"] > median).all() and (kept["NSFW"] == "UNLIKELY").all()


def test_run_rejects_unknown_or_unordered_stages(tmp_path, tiny_model):
    from curation.errors import ConfigError
    from jobs.framework.config import build_config
    from jobs.laionet_run import RunConfig

    with pytest.raises(ConfigError, match="unknown stage"):
        build_config(RunConfig, run_values("x", "y", tiny_model, stages=["label", "download-all"]))
    with pytest.raises(ConfigError, match="pipeline order"):
        build_config(RunConfig, run_values("x", "y", tiny_model, stages=["filter", "similarity"]))
    with pytest.raises(ConfigError, match="'lemma_map': unknown lemma map 'laionet2'; allowed values: standard, laionet"):
        build_config(RunConfig, run_values("x", "y", tiny_model, lemma_map="laionet2"))


def test_every_run_option_reaches_a_stage_and_the_encoder_options_are_declared_once():
    import dataclasses

    from jobs.encoding import EncoderOptions
    from jobs.laionet_run import STAGES, RunConfig, options_no_stage_takes
    from jobs.laionet_similarity import SimilarityConfig
    from jobs.laionet_t2t import EmbedConfig, T2TSearchConfig

    assert options_no_stage_takes() == []
    # without the similarity stage, its options (the encoder's among them) reach no stage
    others = [s for s in STAGES if s.name != "similarity"]
    assert {"encoder", "model", "batch_size", "query_type", "partitions"} <= set(options_no_stage_takes(others))
    encoder_fields = [f.name for f in dataclasses.fields(EncoderOptions)]
    for cls in (RunConfig, SimilarityConfig, EmbedConfig, T2TSearchConfig):
        assert issubclass(cls, EncoderOptions)
        assert [f.name for f in dataclasses.fields(cls) if f.name in encoder_fields] == encoder_fields


def test_presets_parse_and_differ_only_in_threshold(monkeypatch):
    from jobs.framework.config import load_yaml

    seed = load_yaml(os.path.join(CONF, "laionet", "thresh0.7.yaml"))
    paper = load_yaml(os.path.join(CONF, "laionet", "thresh0.82.yaml"))
    assert seed["threshold"] == 0.7 and paper["threshold"] == 0.82
    assert seed["remove_nsfw"] is True and paper["remove_nsfw"] is True
    assert {k: v for k, v in seed.items() if k != "threshold"} == {k: v for k, v in paper.items() if k != "threshold"}
    assert seed["model"] == "ViT-B-32" and seed["pretrained"] == "openai"
    # the study's lemma map reaches label and subset; the bare job keeps `standard`
    from jobs.framework.config import build_config
    from jobs.laionet_run import RunConfig, stage_config, stage_named

    cfg = build_config(RunConfig, {**seed, "laion": "l", "work_dir": "w", "stages": ["label", "subset"]})
    assert RunConfig.__dataclass_fields__["lemma_map"].default == "standard"
    for name in ("label", "subset"):
        stage = stage_named(name)
        assert stage_config(cfg, stage, stage.resolve_job()).lemma_map == "laionet"


"""`curate laionet run`: stages in order, skipping finished ones; same output on any master."""
from __future__ import annotations

import os

import pandas as pd
import pytest

from tiny_clip import write_tiny_clip


@pytest.fixture(scope="module")
def sample_laion(tmp_path_factory):
    from jobs import sample_data
    from jobs.framework.config import build_config

    out = str(tmp_path_factory.mktemp("laion") / "parts")
    sample_data.run(None, build_config(sample_data.SampleLaionConfig,
                                       {"out": out, "rows": 400, "parts": 2, "seed": 3}))
    return out


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def first_run(spark, tmp_path_factory, sample_laion, tiny_model):
    """(work dir, stage reports, outputs) of one run on the suite's local[2] session; the
    outputs are read at once (a later test re-runs stages in that work dir)."""
    from jobs.framework.config import build_config
    from jobs.laionet_run import RunConfig, run

    work = str(tmp_path_factory.mktemp("run") / "work")
    reports = run(spark, build_config(RunConfig, run_values(sample_laion, work, tiny_model)))
    return work, reports, read_outputs(work)


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

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    seed = load_yaml(os.path.join(repo, "conf", "laionet", "thresh0.7.yaml"))
    paper = load_yaml(os.path.join(repo, "conf", "laionet", "thresh0.82.yaml"))
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

"""Synset queries (pure), the text encoders, and `curate laionet similarity` on Spark."""
from __future__ import annotations

import os

import numpy as np

import pandas as pd

import pytest





KIT_FOX = "n02119789"


TENCH = "n01440764"


GOLDFISH = "n01443537"


# ---------------------------------------------------------------- test data
def subset_rows() -> pd.DataFrame:
    """Subset-shaped rows (the contract of `curate laionet subset`)."""
    rows = [
        # laion_index, TEXT, wnids, lemmas, NSFW, similarity
        (5, "a kit fox in the desert", [KIT_FOX], ["kit fox"], "UNLIKELY"),
        (7, "Tench caught in a lake, tench fishing", [TENCH], ["tench"], "UNLIKELY"),
        (9, "goldfish and tench in one pond", [GOLDFISH, TENCH], ["goldfish", "tench"], "UNLIKELY"),
        (100_000_003, "Carassius auratus goldfish bowl", [GOLDFISH], ["Carassius auratus", "goldfish"], "UNSURE"),
        (100_000_004, "goldfish " * 60, [GOLDFISH], ["goldfish"], "NSFW"),
        (100_000_008, "my goldfish", [GOLDFISH], ["goldfish"], None),
        (200_000_001, "Vulpes macrotis at night", [KIT_FOX], ["Vulpes macrotis"], "UNLIKELY"),
        (200_000_002, "kit fox, tench, goldfish", [GOLDFISH, KIT_FOX, TENCH],
         ["goldfish", "kit fox", "tench"], "UNLIKELY"),
    ]
    return pd.DataFrame({
        "SAMPLE_ID": [r[0] * 3 for r in rows],
        "URL": [f"http://127.0.0.1:1/img/{r[0]}.jpg" for r in rows],
        "TEXT": [r[1] for r in rows],
        "HEIGHT": np.full(len(rows), 64, dtype=np.int32),
        "WIDTH": np.full(len(rows), 48, dtype=np.int32),
        "LICENSE": ["?"] * len(rows),
        "NSFW": [r[4] for r in rows],
        "similarity": [0.3] * len(rows),
        "laion_index": np.array([r[0] for r in rows], dtype=np.int64),
        "wnids": [r[2] for r in rows],
        "lemmas": [r[3] for r in rows],
    })


def write_subset(spark, path: str, df: pd.DataFrame | None = None, partitions: int = 3) -> str:
    (spark.createDataFrame(subset_rows() if df is None else df)
     .repartition(partitions).write.mode("overwrite").parquet(path))
    return path


def direct_cosines(config_json, checkpoint, texts, queries):
    """Cosines computed with open_clip's own API (tokenizer + encode_text at 77 tokens)."""
    import open_clip
    import torch

    open_clip.add_model_config(config_json)
    name = os.path.splitext(os.path.basename(config_json))[0]
    model = open_clip.create_model(name, pretrained=checkpoint).eval()
    tok = open_clip.get_tokenizer(name)
    with torch.no_grad():
        a = model.encode_text(tok(texts), normalize=True)
        b = model.encode_text(tok(queries), normalize=True)
    return (a * b).sum(-1).numpy()


@pytest.mark.parametrize("flags, key, message", [
    (["--model", "ViT-Nope-99"], "model", "unknown open_clip model 'ViT-Nope-99'"),
    (["--model", "/nonexistent/tiny.json"], "model", "model config file not found"),
    (["--pretrained", "/nonexistent/ckpt.pt"], "pretrained", "checkpoint file not found"),
    (["--pretrained", "laion9000"], "pretrained", "neither a checkpoint file nor a pretrained tag"),
    ([], "pretrained", "not in the local cache"),  # OpenAI weights: no network here
    (["--encoder", "sentence-transformers", "--model", "/nonexistent"], "model",
     "not a local sentence-transformers model directory"),
])
def test_bad_model_fails_in_one_line_before_spark(monkeypatch, capsys, tmp_path, flags, key, message):
    from jobs.framework.base import execute
    from jobs.laionet_similarity import JOB

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("jobs.framework.session.spark_session", lambda *a, **k: pytest.fail("Spark started"))
    rc = execute(JOB, ["--subset", str(tmp_path / "in"), "--out", str(tmp_path / "out"), *flags])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and f"config key '{key}'" in err and message in err


# ---------------------------------------------------------------- the Spark job
def test_similarity_job_scores_single_wnid_rows(spark, tmp_path, tiny_clip):
    from jobs.framework.config import build_config
    from jobs.laionet_similarity import SimilarityConfig, run
    from jobs.io.output import read_report

    subset = write_subset(spark, str(tmp_path / "subset"))
    out = str(tmp_path / "similarity")
    cfg = build_config(SimilarityConfig, {"subset": subset, "out": out, "model": tiny_clip[0],
                                          "pretrained": tiny_clip[1], "batch_size": 2, "partitions": 3})
    report = run(spark, cfg)
    got = pd.read_parquet(out).sort_values("laion_index").reset_index(drop=True)

    src = subset_rows()
    single = src[src["wnids"].map(len) == 1].sort_values("laion_index").reset_index(drop=True)
    assert report.read == 8 and report.kept == 6 and report.dropped == {"multiple_wnids": 2}
    assert read_report(spark, out)["dropped"] == {"multiple_wnids": 2}
    assert list(got.columns) == ["SAMPLE_ID", "URL", "TEXT", "HEIGHT", "WIDTH", "LICENSE", "NSFW",
                                 "similarity", "laion_index", "wnid", "lemmas", "name_def_wnid",
                                 "text_to_name_def_wnid_similarity"]
    assert got["laion_index"].tolist() == single["laion_index"].tolist()
    assert got["wnid"].tolist() == [w[0] for w in single["wnids"]]
    from curation.concepts import load_concepts

    table = load_concepts().set_index("wnid")
    expected_queries = [f"{table.loc[w, 'name'].replace('_', ' ')} which is {table.loc[w, 'definition']}"
                        for w in got["wnid"]]
    assert got["name_def_wnid"].tolist() == expected_queries
    want = direct_cosines(*tiny_clip, got["TEXT"].tolist(), expected_queries)
    np.testing.assert_allclose(got["text_to_name_def_wnid_similarity"].to_numpy(), want, atol=1e-4)
    assert got["text_to_name_def_wnid_similarity"].std() > 0.01


def test_similarity_lemma_key_drops_rows_with_several_lemmas(spark, tmp_path, tiny_clip):
    from jobs.framework.config import build_config
    from jobs.laionet_similarity import SimilarityConfig, run

    subset = write_subset(spark, str(tmp_path / "subset"), partitions=1)
    out = str(tmp_path / "similarity")
    cfg = build_config(SimilarityConfig, {"subset": subset, "out": out, "model": tiny_clip[0],
                                          "pretrained": tiny_clip[1], "query_key": "lemma",
                                          "query_type": "a_photo_of_name", "partitions": 2})
    report = run(spark, cfg)
    got = pd.read_parquet(out).set_index("laion_index")
    assert report.dropped == {"multiple_wnids": 2, "multiple_lemmas": 1} and report.kept == 5
    assert got.loc[200_000_001, "a_photo_of_name_lemma"] == "a photo of Vulpes macrotis"
    assert "text_to_a_photo_of_name_lemma_similarity" in got.columns


def test_similarity_bad_input_names_file_and_column(spark, tmp_path, tiny_clip):
    from curation.errors import InputError
    from jobs.framework.config import build_config
    from jobs.laionet_similarity import SimilarityConfig, run

    bad = subset_rows().drop(columns=["wnids"])
    subset = write_subset(spark, str(tmp_path / "subset"), bad, partitions=1)
    cfg = build_config(SimilarityConfig, {"subset": subset, "out": str(tmp_path / "o"),
                                          "model": tiny_clip[0], "pretrained": tiny_clip[1]})
    with pytest.raises(InputError, match=r"subset: column 'wnids' is missing"):
        run(spark, cfg)
    typed = subset_rows().assign(laion_index=lambda d: d["laion_index"].astype(str))
    subset2 = write_subset(spark, str(tmp_path / "subset2"), typed, partitions=1)
    cfg2 = build_config(SimilarityConfig, {"subset": subset2, "out": str(tmp_path / "o"),
                                           "model": tiny_clip[0], "pretrained": tiny_clip[1]})
    with pytest.raises(InputError, match=r"subset2: column 'laion_index' has type string, expected bigint"):
        run(spark, cfg2)
    assert not os.path.exists(tmp_path / "o")


def test_scoring_partitions_shrink_for_small_inputs_only():
    from types import SimpleNamespace

    from jobs.laionet_similarity import ROWS_PER_PARTITION_BATCHES, scoring_partitions

    cfg = SimpleNamespace(batch_size=100, partitions=64)
    per = ROWS_PER_PARTITION_BATCHES * 100
    assert scoring_partitions(0, cfg) == 1
    assert scoring_partitions(1, cfg) == 1
    assert scoring_partitions(per, cfg) == 1
    assert scoring_partitions(per + 1, cfg) == 2
    assert scoring_partitions(10 * per, cfg) == 10
    assert scoring_partitions(10_000_000, cfg) == 64


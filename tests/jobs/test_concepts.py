"""Concept data: the packaged table and lemma maps against the reference files, the
LAIONet lemma rules, the `curate concepts ...` jobs and their errors."""
from __future__ import annotations

import os
import subprocess

import pytest

from curation import concepts as C
from curation.errors import ConfigError
from tests.support.concepts import _json, _ref


# ---------------------------------------------------------------- the jobs
def _run(cmd, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def test_cli_lemma_map_writes_the_reference_map_with_sidecars(curate_cmd, reference_dir, tmp_path):
    out = tmp_path / "maps" / "ilsvrc.json"
    res = _run(curate_cmd + ["concepts", "lemma-map", "--synsets", _ref(reference_dir, "ILSVRC2012_synsets.txt"),
                             "--scope", "ilsvrc", "--out", str(out)])
    assert res.returncode == 0, res.stderr
    assert "1,825 lemmas over 995 wnids" in res.stdout
    with open(_ref(reference_dir, "lemma2wnid_unique_in_ilsvrc_ignored_empty_wnids.json"), encoding="utf-8") as fh:
        assert out.read_text(encoding="utf-8") == fh.read()
    report = _json(str(out) + ".report.json")
    assert (report["read"], report["kept"], report["dropped"]) == (1859, 1825, {"not_unique": 34})
    assert "scope: ilsvrc" in (tmp_path / "maps" / "ilsvrc.json.config.yaml").read_text()
    assert not [p for p in os.listdir(tmp_path / "maps") if "__tmp-" in p]


def test_cli_summary_and_bad_values(curate_cmd, tmp_path):
    res = _run(curate_cmd + ["concepts", "summary"])
    assert res.returncode == 0, res.stderr
    for fact in ("1000 classes", "1,824 lemmas over 994 wnids; 6 wnids without a lemma",
                 "ImageNet-100: 100 classes"):
        assert fact in res.stdout
    res = _run(curate_cmd + ["concepts", "lemma-map", "--scope", "everywhere", "--out", str(tmp_path / "m.json")])
    assert res.returncode == 2 and "config key 'scope'" in res.stderr and "ilsvrc, wordnet" in res.stderr
    from jobs.concepts import LemmaMapConfig
    from jobs.framework.config import build_config

    with pytest.raises(ConfigError, match="'out': must be a local path"):
        build_config(LemmaMapConfig, {"out": "s3a://bucket/map.json"})
    missing = str(tmp_path / "nope.txt")
    res = _run(curate_cmd + ["concepts", "lemma-map", "--synsets", missing, "--out", str(tmp_path / "m.json")])
    assert res.returncode == 2 and res.stderr.strip() == f"error: --synsets {missing}: not found"


@pytest.mark.parametrize("corrupt", [False, True], ids=["missing", "corrupt"])
def test_cli_without_wordnet_says_how_to_get_it(curate_cmd, tmp_path, corrupt):
    nltk_data = tmp_path / "nltk_data"
    (nltk_data / "corpora").mkdir(parents=True)
    if corrupt:
        (nltk_data / "corpora" / "wordnet.zip").write_text("not a zip")
    env = {**os.environ, "NLTK_DATA": str(nltk_data), "HOME": str(tmp_path)}
    out = tmp_path / "m.json"
    res = _run(curate_cmd + ["concepts", "lemma-map", "--scope", "wordnet", "--out", str(out)], env=env)
    assert res.returncode == 2 and not out.exists()
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "python -m nltk.downloader wordnet" in lines[0] and "NLTK_DATA" in lines[0]
    assert (str(nltk_data / "corpora" / "wordnet.zip") if corrupt else str(nltk_data)) in lines[0]
    if not corrupt:  # the default (ilsvrc) map of the standard list needs no WordNet
        res = _run(curate_cmd + ["concepts", "lemma-map", "--out", str(out)], env=env)
        assert res.returncode == 0 and C.load_lemma_map(str(out)) == C.load_lemma_map()


def test_table_job_writes_the_concept_table_as_a_dataset(spark, tmp_path):
    from jobs.concepts import TableConfig, run_table
    from jobs.io.output import read_report

    out = str(tmp_path / "concepts")
    run_table(spark, TableConfig(out=out, subset="imagenet100"))
    got = spark.read.parquet(out).toPandas().sort_values("label").reset_index(drop=True)
    assert list(got["wnid"]) == C.imagenet100_wnids() and list(got.columns) == list(C.CONCEPT_COLUMNS)
    assert got["lemmas"].map(list).tolist() == C.load_concepts().set_index("wnid").loc[C.imagenet100_wnids(), "lemmas"].tolist()
    report = read_report(spark, out)
    assert (report["read"], report["kept"], report["dropped"]) == (1000, 100, {"not_in_subset": 900})
    assert "subset: imagenet100" in (tmp_path / "concepts" / "_config.yaml").read_text()

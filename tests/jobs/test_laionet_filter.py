"""`curate laionet filter`: threshold edges, NSFW removal, class-frequency file, reports."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from curation.concepts import classnames, wnid_to_label
from curation.frequency import read_frequency_file

KIT_FOX, TENCH, GOLDFISH = "n02119789", "n01440764", "n01443537"
SIM = "text_to_name_def_wnid_similarity"


def similarity_rows() -> pd.DataFrame:
    rows = [  # laion_index, wnid, NSFW, score
        (1, KIT_FOX, "UNLIKELY", 0.95),
        (2, KIT_FOX, "UNLIKELY", 0.7),      # exactly at the threshold
        (3, KIT_FOX, "UNSURE", 0.9),
        (4, TENCH, "NSFW", 0.99),
        (5, TENCH, None, 0.8),
        (6, TENCH, "UNLIKELY", 0.69999),
        (7, GOLDFISH, "UNLIKELY", None),     # no score
        (8, GOLDFISH, "UNLIKELY", 0.71),
        (9, GOLDFISH, "unlikely", 0.75),     # not exactly UNLIKELY
    ]
    n = len(rows)
    return pd.DataFrame({
        "SAMPLE_ID": np.arange(n, dtype=np.int64), "URL": [f"u{i}" for i in range(n)],
        "TEXT": [f"caption {i}" for i in range(n)], "HEIGHT": np.ones(n, np.int32),
        "WIDTH": np.ones(n, np.int32), "LICENSE": ["?"] * n, "NSFW": [r[2] for r in rows],
        "similarity": np.full(n, 0.3), "laion_index": np.array([r[0] for r in rows], np.int64),
        "wnid": [r[1] for r in rows], "lemmas": [["x"]] * n, "name_def_wnid": ["q"] * n,
        SIM: [r[3] for r in rows],
    })


@pytest.fixture
def similarity_dir(spark, tmp_path):
    path = str(tmp_path / "similarity")
    spark.createDataFrame(similarity_rows()).repartition(3).write.parquet(path)
    return path


def run_filter(spark, similarity_dir, out, **values):
    from jobs.framework.config import build_config
    from jobs.laionet_filter import FilterConfig, run

    cfg = build_config(FilterConfig, {"similarity": similarity_dir, "out": out, **values})
    return cfg, run(spark, cfg)


@pytest.mark.parametrize("values, kept, dropped", [
    ({"threshold": 0.7}, [1, 3, 4, 5, 8, 9], {"below_threshold": 2, "no_similarity": 1}),
    ({"threshold": 0.7, "inclusive": True}, [1, 2, 3, 4, 5, 8, 9], {"below_threshold": 1, "no_similarity": 1}),
    ({"threshold": 0.7, "remove_nsfw": True}, [1, 8],
     {"nsfw": 4, "below_threshold": 2, "no_similarity": 1}),
    ({"threshold": 0.82, "remove_nsfw": True}, [1], {"nsfw": 4, "below_threshold": 3, "no_similarity": 1}),
])
def test_threshold_and_nsfw_edges(spark, similarity_dir, tmp_path, values, kept, dropped):
    out = str(tmp_path / "laionet")
    cfg, report = run_filter(spark, similarity_dir, out, **values)
    got = pd.read_parquet(out)
    assert sorted(got["laion_index"]) == kept
    assert report.read == 9 and report.kept == len(kept) and report.dropped == dropped
    assert list(got.columns) == list(similarity_rows().columns)
    on_disk = json.load(open(os.path.join(out, "_report.json")))
    assert on_disk["read"] == on_disk["kept"] + sum(on_disk["dropped"].values())


def test_frequency_file_lists_1000_classes_in_label_order(spark, similarity_dir, tmp_path):
    out = str(tmp_path / "laionet")
    cfg, _ = run_filter(spark, similarity_dir, out, threshold=0.7, remove_nsfw=True)
    assert cfg.frequency_path == out + ".class_frequency.txt"
    rows = read_frequency_file(cfg.frequency_path, expected_lines=1000)
    assert [name for name, _ in rows] == classnames()
    labels = wnid_to_label()
    counts = {i: c for i, (_, c) in enumerate(rows) if c}
    assert counts == {labels[KIT_FOX]: 1, labels[GOLDFISH]: 1}
    assert rows[labels[KIT_FOX]][0] == "kit fox"
    assert os.path.exists(cfg.frequency_path + ".report.json")
    assert os.path.exists(cfg.frequency_path + ".config.yaml")


def test_filter_output_is_sorted_and_rerun_is_atomic(spark, similarity_dir, tmp_path):
    out = str(tmp_path / "laionet")
    run_filter(spark, similarity_dir, out, threshold=0.5)
    run_filter(spark, similarity_dir, out, threshold=0.9)  # overwrite in place
    got = pd.read_parquet(out)
    assert got["laion_index"].tolist() == [1, 4]
    assert not [p for p in os.listdir(tmp_path) if "__tmp" in p]


def test_filter_bad_input(spark, tmp_path, similarity_dir):
    from curation.errors import ConfigError, InputError

    bad = str(tmp_path / "bad")
    spark.createDataFrame(similarity_rows().drop(columns=[SIM])).write.parquet(bad)
    with pytest.raises(InputError, match=r"bad: expected one text_to_\*_similarity column, found none"):
        run_filter(spark, bad, str(tmp_path / "o"))
    with pytest.raises(InputError, match="column 'text_to_x_similarity' is missing"):
        run_filter(spark, similarity_dir, str(tmp_path / "o"), similarity_column="text_to_x_similarity")
    with pytest.raises(ConfigError, match="threshold"):
        run_filter(spark, similarity_dir, str(tmp_path / "o"), threshold=7)
    with pytest.raises(InputError, match="not found"):
        run_filter(spark, str(tmp_path / "missing"), str(tmp_path / "o"))


@pytest.mark.parametrize("threshold, inclusive", [(0.7, True), (0.7, False), (0.1, False), (0.1, True)])
def test_float32_scores_compare_as_pandas_compares_them(spark, tmp_path, threshold, inclusive):
    # scores stored as float32 (as the similarity job writes them) at and around float32(threshold):
    # the original thresholds a float32 pandas column with a Python float, in float32
    rows = similarity_rows().iloc[[0] * 5].reset_index(drop=True)
    at = np.float32(threshold)
    rows["laion_index"] = np.arange(5, dtype=np.int64)
    rows[SIM] = np.array([np.nextafter(at, np.float32(0)), at, np.nextafter(at, np.float32(1)),
                          np.float32(threshold - 1e-3), np.float32(threshold + 1e-3)], dtype=np.float32)
    path = str(tmp_path / "similarity")
    spark.createDataFrame(rows).write.parquet(path)
    assert pd.read_parquet(path)[SIM].dtype == np.float32
    series = pd.read_parquet(path)[SIM]
    expected = rows["laion_index"][(series >= threshold) if inclusive else (series > threshold)].tolist()
    _, report = run_filter(spark, path, str(tmp_path / "out"), threshold=threshold, inclusive=inclusive)
    assert sorted(pd.read_parquet(str(tmp_path / "out"))["laion_index"]) == sorted(expected)
    assert report.kept == len(expected)

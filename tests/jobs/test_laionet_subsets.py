"""LAIONet subsets: the selection rules on pandas, then the Spark job end to end."""
import json
import os

import pandas as pd
import pytest

from curation.errors import ConfigError, InputError
from tests.support import CONF
from tests.support.laionet_subsets import _subsets_cfg, _success_metadata


def test_job_writes_tsv_frequency_file_plot_and_report(spark, tmp_path):
    from curation.concepts import classnames, wnid_to_label
    from curation.frequency import read_frequency_file
    from jobs.laionet_subsets import run_subsets

    meta = _success_metadata(str(tmp_path / "meta"))
    report = run_subsets(spark, _subsets_cfg(df=str(tmp_path / "meta"), out_dir=str(tmp_path / "out"),
                                             thresh=0.8, n=100, seed=3, images_root="/data/laionet/"))
    tsv = tmp_path / "out" / "laionet_thresh0.8_100.tsv"
    out = pd.read_csv(tsv, sep="\t", dtype={"label": int})
    assert list(out.columns) == ["filepath", "label", "caption"] and len(out) == 100
    idx = out.filepath.str.extract(r"/(\d+)\.jpg$")[0].astype(int)
    assert idx.is_monotonic_increasing                            # laion_index order
    row = meta.set_index("laion_index").loc[idx.iloc[0]]
    assert out.filepath.iloc[0] == f"/data/laionet/{row.wnid}/{idx.iloc[0]}.jpg"
    assert out.caption.iloc[0] == f"a photo of thing {idx.iloc[0]}  nice"
    labels = {w: l for w, l in wnid_to_label().items()}
    labels["n02112837"] = labels["n02110185"]
    assert (out.label.to_numpy() == meta.set_index("laion_index").loc[idx].wnid.map(labels).to_numpy()).all()
    assert set(out.label) == set(meta.wnid.map(labels))          # every class kept
    freq = read_frequency_file(str(tmp_path / "out" / "class_frequency_laionet_thresh0.8_n100_ori.txt"), 1000)
    assert [name for name, _ in freq] == classnames()
    assert {i: c for i, (_, c) in enumerate(freq) if c} == out.label.value_counts().to_dict()
    assert (tmp_path / "out" / "class_frequency_laionet_thresh0.8_n100_ori.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "out" / "laionet_thresh0.8_100.tsv.report.json").read_text())
    assert saved["read"] == 600 and saved["kept"] == 100 == report.kept
    assert saved["read"] == saved["kept"] + sum(saved["dropped"].values())
    assert saved["info"]["freq_file"].endswith("class_frequency_laionet_thresh0.8_n100_ori.txt")


@pytest.mark.parametrize("flags, key", [
    (["--thresh", "1.5"], "thresh"), (["--thresh", "-1.01"], "thresh"),
    (["--frac", "0"], "frac"), (["--frac", "1.2"], "frac"), (["--n", "0"], "n"),
    (["--n", "10", "--frac", "0.5"], "n"),
])
def test_bad_config_fails_before_any_work(flags, key):
    from jobs.framework.base import execute
    from jobs.laionet_subsets import JOB

    with pytest.raises(ConfigError, match=f"'{key}'"):
        _subsets_cfg(**{"df": "x", "out_dir": "y", **{f[2:]: v for f, v in zip(flags[::2], flags[1::2])}})
    # through the CLI entry: exit 2, no Spark (the input does not even exist)
    assert execute(JOB, ["--df", "/nonexistent", "--out-dir", "/tmp/x"] + flags) == 2


def test_missing_column_is_a_one_line_error(spark, tmp_path):
    from jobs.laionet_subsets import run_subsets

    meta = _success_metadata(str(tmp_path / "meta"), n_files=1)
    meta.drop(columns=["text_to_name_def_wnid_similarity"]).to_parquet(tmp_path / "meta" / "part-00000.parquet")
    with pytest.raises(InputError, match="no column 'text_to_name_def_wnid_similarity'"):
        run_subsets(spark, _subsets_cfg(df=str(tmp_path / "meta"), out_dir=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


def test_presets_parse():
    import glob

    from jobs.framework.config import load_yaml

    presets = glob.glob(os.path.join(CONF, "laionet", "subsets-*.yaml"))
    assert len(presets) >= 3
    for path in presets:
        cfg = _subsets_cfg(**{**load_yaml(path), "df": "success.parquet"})
        assert cfg.similarity_col == "text_to_name_def_wnid_similarity"

"""LAIONet subsets: the selection rules on pandas, then the Spark job end to end."""

import os

import numpy as np

from tests.support.laionet_subsets import _subsets_cfg, _success_metadata


def test_job_is_deterministic_across_masters_and_partitioning(spark, tmp_path, local1_app):
    """One file read by local[1] (its own application) == the same rows shuffled into 5 files,
    read by the tests' local[2] session."""
    from jobs.laionet_subsets import run_subsets

    meta = _success_metadata(str(tmp_path / "a"), n_files=1)
    os.makedirs(tmp_path / "b")
    shuffled = meta.sample(frac=1, random_state=4)
    for i, rows in enumerate(np.array_split(np.arange(len(meta)), 5)):
        shuffled.iloc[rows].to_parquet(tmp_path / "b" / f"p{i}.parquet", index=False)
    run_subsets(spark, _subsets_cfg(df=str(tmp_path / "b"), out_dir=str(tmp_path / "out_b"),
                                    thresh=0.7, frac=0.5, seed=11))
    res = local1_app.curate("laionet", "subsets", "--df", str(tmp_path / "a"), "--out-dir", str(tmp_path / "out_a"),
                            "--thresh", "0.7", "--frac", "0.5", "--seed", "11")
    assert res.returncode == 0, res.output
    names = {src: sorted(p.name for p in (tmp_path / f"out_{src}").iterdir() if p.suffix == ".tsv")
             for src in "ab"}
    assert names["a"] == names["b"] and names["a"][0].startswith("laionet_thresh0.7_frac0.5_")
    assert (tmp_path / "out_a" / names["a"][0]).read_bytes() == (tmp_path / "out_b" / names["b"][0]).read_bytes()
    freq = "class_frequency_laionet_thresh0.7_frac0.5_ori.txt"
    assert (tmp_path / "out_a" / freq).read_bytes() == (tmp_path / "out_b" / freq).read_bytes()

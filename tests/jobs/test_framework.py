"""The job framework end to end: the `curate` entry point, config sidecars, sessions.

A trivial Spark job (`curate concepts table`) runs under `local[2]` and, with executors in
separate processes, under `local-cluster[2,1,1024]`; both write the same rows and a
`_config.yaml` / `_report.json` beside them. Bad config values fail before Spark starts."""
from __future__ import annotations

import json




import pytest

import yaml


from tests.support.framework import read_table, run_curate


def test_curate_lists_discovered_jobs(curate_cmd):
    res = run_curate(curate_cmd, "--help")
    assert res.returncode == 0
    for command in ("laionet label", "concepts table", "concepts lemma-map"):
        assert command in res.stdout


def test_dry_run_prints_resolved_config_without_spark(curate_cmd, tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("subset: imagenet100\n")
    res = run_curate(curate_cmd, "concepts", "table", "--config", str(preset),
                     "--out", str(tmp_path / "t"), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load(res.stdout) == {"out": str(tmp_path / "t"), "subset": "imagenet100"}
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("args, expected", [
    (["--out", "x", "--subset", "imagenet1k"], "config key 'subset': got 'imagenet1k'; allowed values: all, imagenet100"),
    ([], "config key 'out': is required"),
])
def test_bad_config_value_is_a_one_line_error(curate_cmd, tmp_path, args, expected):
    res = run_curate(curate_cmd, "concepts", "table", *args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {expected}"), res.stderr
    assert "Traceback" not in res.stderr


def test_unknown_yaml_key_names_key_and_file(curate_cmd, tmp_path):
    preset = tmp_path / "bad.yaml"
    preset.write_text("out: x\nsubsett: all\n")
    res = run_curate(curate_cmd, "concepts", "table", "--config", str(preset))
    assert res.returncode == 2 and "subsett" in res.stderr and str(preset) in res.stderr
    assert "Traceback" not in res.stderr


def test_debug_shows_traceback(curate_cmd, tmp_path):
    res = run_curate(curate_cmd, "concepts", "table", "--subset", "nope", "--debug")
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_trivial_job_in_process_writes_sidecars(spark, tmp_path):
    from jobs.framework.base import execute
    from jobs.framework.cli import discover

    out = tmp_path / "table"
    assert execute(discover()[("concepts", "table")], ["--out", str(out)]) == 0
    assert yaml.safe_load((out / "_config.yaml").read_text()) == {"out": str(out), "subset": "all"}
    report = json.loads((out / "_report.json").read_text())
    assert report["kept"] == 1000 and report["read"] == report["kept"] + sum(report["dropped"].values())
    table = read_table(out)
    assert list(table["label"]) == list(range(1000))
    # the active session was reused, not stopped
    assert spark.range(3).count() == 3


def test_rerun_after_killed_run_removes_its_temporary_outputs(spark, tmp_path):
    """What a killed driver leaves (`<out>.__tmp-*` directories and files) is removed by the
    next run writing the same output; other outputs' temporaries are left alone."""
    from curation.report import StageReport
    from jobs.io import output
    from jobs.framework.base import execute
    from jobs.framework.cli import discover
    from jobs.concepts import TableConfig

    out = tmp_path / "table"
    stale_dir = tmp_path / "table.__tmp-deadbeef"
    (stale_dir / "sub").mkdir(parents=True)
    (stale_dir / "sub" / "part-0.parquet").write_bytes(b"half")
    other = tmp_path / "tablex.__tmp-0badf00d"
    other.mkdir()
    assert execute(discover()[("concepts", "table")], ["--out", str(out)]) == 0
    assert not stale_dir.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table", "tablex.__tmp-0badf00d"]

    single = tmp_path / "freq.txt"
    (tmp_path / "freq.txt.__tmp-12345678").write_text("partial")
    output.write_text(spark, str(single), "a\t1\n")
    output.finish_file(spark, str(single), TableConfig(out=str(single)), StageReport("t", read=1, kept=1))
    local = tmp_path / "local.tsv"
    (tmp_path / "local.tsv.__tmp-87654321").write_text("partial")
    output.write_local_bytes(str(local), b"x")
    assert sorted(p.name for p in tmp_path.iterdir() if "__tmp" in p.name) == ["tablex.__tmp-0badf00d"]
    assert single.read_text() == "a\t1\n" and local.read_bytes() == b"x"


"""Never lose a user's data (issue 15): outputs that overlap inputs, folders we did not
write, replaces killed half-way, values from data that would become paths."""
from __future__ import annotations

import hashlib

import os

import subprocess

import sys

import pandas as pd

import pytest

from curation.paths import overlap

from jobs.framework.base import execute

from tests.support import REPO



def test_overlap_resolves_relative_file_uri_symlink_and_trailing_slash(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "laion").mkdir(parents=True)
    os.symlink(data / "laion", tmp_path / "link")
    monkeypatch.chdir(tmp_path)
    laion = str(data / "laion")
    assert overlap("data/laion/", laion) == "equal"
    assert overlap(f"file://{laion}", "data/laion") == "equal"
    assert overlap(f"file:{laion}/out", laion) == "inside"
    assert overlap("link/out", laion) == "inside"  # through the symlink
    assert overlap("data", "link") == "contains"
    assert overlap("data/laion2", laion) is None and overlap("data/other", laion) is None
    # a glob input: matched component-wise; its static folder counts as the input's place
    assert overlap("data/laion/x.parquet", "data/laion/*.parquet") == "equal"
    assert overlap("data/laion/out", "data/laion/*.parquet") is None
    assert overlap("data", "data/laion/*.parquet") == "contains"
    # URIs: the same scheme and authority only
    assert overlap("hdfs://nn:8020/laion/out", "hdfs://NN:8020/laion/") == "inside"
    assert overlap("hdfs://other:8020/laion", "hdfs://nn:8020/laion") is None
    assert overlap("s3a://b/laion", f"{laion}") is None


# ---------------------------------------------------------------- 1. outputs never overlap inputs
@pytest.fixture(scope="module")
def laion(tmp_path_factory):
    from jobs.framework.config import build_config
    from jobs.sample_data import SampleLaionConfig
    from jobs.sample_data import run as run_sample

    out = tmp_path_factory.mktemp("safety") / "laion"
    run_sample(None, build_config(SampleLaionConfig, {"out": str(out), "rows": 60, "parts": 2, "seed": 5}))
    return out


def snapshot(folder) -> dict:
    """{relative path: sha256} of every file below `folder` (what must stay untouched)."""
    found = {}
    for base, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(base, f)
            with open(p, "rb") as fh:
                found[os.path.relpath(p, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return found


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_label_refuses_an_output_equal_to_inside_or_containing_its_input(spark, laion, capsys):
    from jobs.laionet_label import JOBS

    label = next(j for j in JOBS if j.command[-1] == "label")
    before = snapshot(laion.parent)
    cases = [(str(laion), "is input"), (str(laion) + "/", "is input"), (str(laion / "label"), "is inside input"),
             (str(laion.parent), "contains input"), (f"file://{laion}", "is input")]
    for out, words in cases:
        assert execute(label, ["--laion", str(laion), "--out", out]) == 2
        line = one_line_error(capsys)
        assert f"output --out {out} {words} --laion {laion}" in line, line
    assert snapshot(laion.parent) == before  # nothing written, nothing deleted


def test_laionet_run_refuses_a_work_dir_inside_the_laion_folder(spark, laion, capsys):
    from jobs.laionet_run import JOB

    before = snapshot(laion)
    assert execute(JOB, ["--laion", str(laion), "--work-dir", str(laion / "work"),
                        "--stages", "label,subset"]) == 2
    line = one_line_error(capsys)
    assert f"output --work-dir {laion / 'work'} is inside input --laion {laion}" in line, line
    assert snapshot(laion) == before and not (laion / "work").exists()


def test_a_derived_output_name_that_hits_an_input_is_refused_before_any_rename(spark, tmp_path):
    """Names known only at run time (e.g. `_success<N>`) are checked when written."""
    from curation.errors import InputError
    from curation.report import StageReport
    from jobs.io import output
    from jobs.concepts import TableConfig

    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "keep.txt").write_text("user data")
    cfg = TableConfig(out=str(tmp_path / "t"))
    with output.guarded(cfg, inputs=[("laion", str(inp))]):
        with pytest.raises(InputError, match=r"is inside input --laion"):
            output.write_text(spark, str(inp / "x.txt"), "new")
        with pytest.raises(InputError, match="is input --laion"):
            with output.atomic_dir(spark, str(inp), cfg, StageReport("t")) as tmp:
                spark.range(2).write.parquet(tmp)
        output.write_text(spark, str(tmp_path / "beside.txt"), "fine")  # beside the input: fine
    assert sorted(os.listdir(inp)) == ["keep.txt"] and (inp / "keep.txt").read_text() == "user data"


# ---------------------------------------------------------------- 2. we replace only what we wrote
def test_an_output_folder_with_a_users_file_is_refused_unless_overwrite(spark, tmp_path, capsys):
    from jobs.framework.cli import discover

    table = discover()[("concepts", "table")]
    out = tmp_path / "datasets"
    out.mkdir()
    (out / "mine.txt").write_text("the user's")
    assert execute(table, ["--out", str(out)]) == 2
    line = one_line_error(capsys)
    assert str(out) in line and "--overwrite" in line and "was not written by `curate concepts table`" in line
    assert sorted(os.listdir(out)) == ["mine.txt"] and (out / "mine.txt").read_text() == "the user's"

    # our own output of the same job is replaced without asking; another job's is not
    ours = tmp_path / "table"
    assert execute(table, ["--out", str(ours)]) == 0
    assert (ours / "_config.yaml").read_text().startswith("# curate concepts table (jobs.concepts.TableConfig)\n")
    assert execute(table, ["--out", str(ours), "--subset", "imagenet100"]) == 0
    assert len(pd.read_parquet(ours)) == 100
    (ours / "_config.yaml").write_text("# curate laionet label (jobs.laionet_label.MatchConfig)\nout: x\n")
    assert execute(table, ["--out", str(ours)]) == 2
    assert "was not written by" in one_line_error(capsys)

    assert execute(table, ["--out", str(out), "--overwrite"]) == 0
    assert not (out / "mine.txt").exists() and len(pd.read_parquet(out)) == 1000
    assert [p for p in os.listdir(tmp_path) if "__" in p] == []


def test_a_users_single_file_is_refused_and_ours_is_replaced(spark, tmp_path):
    """The presets write the authors' frequency-file names: a file without our sidecar is
    theirs. (`write_single_csv`, `write_text`, `write_bytes` share this rule.)"""
    from curation.errors import InputError
    from jobs.io import output
    from jobs.freq import FreqConfig

    freq = tmp_path / "class_frequency_yfcc15m_cls.txt"
    freq.write_text("the authors' counts\n")
    cfg = FreqConfig(input="x", out=str(freq))
    with output.guarded(cfg, name="freq"):
        with pytest.raises(InputError, match=r"output --out .* exists and was not written by `curate freq`"):
            output.write_text(spark, str(freq), "ours\n")
        assert freq.read_text() == "the authors' counts\n"
        mine = tmp_path / "ours.txt"
        output.write_text(spark, str(mine), "1\n")
        assert (tmp_path / "ours.txt.config.yaml").read_text().startswith("# curate freq (jobs.freq.FreqConfig)")
        output.write_text(spark, str(mine), "2\n")  # ours: replaced
        assert mine.read_text() == "2\n"
    with output.guarded(cfg, overwrite=True):
        output.write_text(spark, str(freq), "ours\n")
    assert freq.read_text() == "ours\n"


# ---------------------------------------------------------------- 3. a replace is safe at every instant
class Killed(BaseException):
    pass


@pytest.mark.parametrize("step", ["aside", "place", "delete"])
def test_a_replace_killed_at_each_step_leaves_old_or_new_and_the_next_run_cleans_up(spark, tmp_path, step):
    from curation.report import StageReport
    from jobs.io import output
    from jobs.concepts import TableConfig

    out = str(tmp_path / "out")
    cfg = TableConfig(out=out)

    def write(n):
        with output.atomic_dir(spark, out, cfg, StageReport("t", read=n, kept=n)) as tmp:
            spark.range(n).coalesce(1).write.parquet(tmp)

    write(3)

    def kill(name):
        if name == step:
            raise Killed(name)

    output.STEP_HOOK = kill
    try:
        with pytest.raises(Killed):
            write(5)
    finally:
        output.STEP_HOOK = None
    # what the kill left: the complete old output, aside (step "place") or in place, or the new one
    there = len(pd.read_parquet(out)) if os.path.exists(out) else None
    aside = [p for p in os.listdir(tmp_path) if ".__old-" in p]
    if step == "aside":
        assert there == 3 and not aside
    elif step == "place":
        assert there is None and len(aside) == 1 and len(pd.read_parquet(tmp_path / aside[0])) == 3
        assert output.recover(spark, out) is not None and len(pd.read_parquet(out)) == 3
    else:
        assert there == 5 and len(aside) == 1
    write(7)  # the next run restores or removes what the kill left
    assert len(pd.read_parquet(out)) == 7 and os.listdir(tmp_path) == ["out"]


KILL_SCRIPT = """
import os, signal, sys
from jobs.io import output
step, new, dst = sys.argv[1:]
def kill(name):
    if name == step:
        os.kill(os.getpid(), signal.SIGKILL)
output.STEP_HOOK = kill
output.replace_path(None, new, dst)
"""


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_a_real_kill_during_a_local_replace(tmp_path, kind):
    """SIGKILL at each step of `replace_path` (local paths, no Spark): the reader sees the
    complete old or new output; `recover` restores the old one when it was aside."""
    from jobs.io import output

    def make(path, text):
        if kind == "dir":
            os.makedirs(path)
            path = os.path.join(path, "part-0")
        with open(path, "w") as fh:
            fh.write(text)

    def read(path):
        with open(os.path.join(path, "part-0") if kind == "dir" else path) as fh:
            return fh.read()

    for step in ("aside", "place", "delete"):
        root = tmp_path / step
        root.mkdir()
        dst, new = str(root / "out"), str(root / "out.__tmp-1")
        make(dst, "old")
        make(new, "new")
        proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, step, new, dst], capture_output=True, text=True,
                              cwd=REPO)
        if kind == "file":  # one atomic rename: killed before it (old) or not killed at all
            assert read(dst) == ("old" if step == "place" else "new"), proc.stderr
            continue
        assert proc.returncode == -9, proc.stderr
        output.recover(None, dst)
        assert read(dst) == ("new" if step == "delete" else "old")
        assert not [p for p in os.listdir(root) if ".__old-" in p]


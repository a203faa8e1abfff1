"""`curate report`: the page of a LAIONet run and of a `cls` output (HTML that parses, one
long-tail image per frequency file, numbers equal to the files the stages wrote), the
comparison with the study or another file, bad work dirs; and the live progress line
(on a pseudo-terminal, not on a pipe)."""
from __future__ import annotations

import json

import os

import time

from html.parser import HTMLParser

import numpy as np

import pandas as pd

import pytest

from curation.errors import InputError

from tests.support.tiny_clip import write_tiny_clip



class Page(HTMLParser):
    """The parts of the page the tests read: images, tables (rows of cell texts), bold texts."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.tables, self.bold, self.items = [], [], {}, []
        self._cell = self._bold = None
        self._li = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self.tables.append({"class": attrs.get("class"), "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "b":
            self._bold = (attrs.get("class"), "")
        elif tag == "li":
            self._li = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1]["rows"][-1].append(self._cell)
            self._cell = None
        elif tag == "b" and self._bold:
            self.bold.setdefault(self._bold[0], []).append(self._bold[1])
            self._bold = None
        elif tag == "li":
            self.items.append(self._li)
            self._li = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._bold is not None:
            self._bold = (self._bold[0], self._bold[1] + data)
        if self._li is not None:
            self._li += data

    def table(self, cls):
        return [t["rows"] for t in self.tables if t["class"] == cls]


def _num(text: str) -> int:
    return int(text.replace(",", ""))


def _report(workdir, **kw):
    from jobs.framework.config import build_config
    from jobs.report import ReportConfig, write_report

    page, out = write_report(build_config(ReportConfig, {"workdir": str(workdir), **kw}))
    with open(out, encoding="utf-8") as fh:
        return page, out, Page(fh.read())


def _reports_under(root):
    found = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f == "_report.json" or f.endswith(".report.json"):
                with open(os.path.join(dirpath, f)) as fh:
                    rep = json.load(fh)
                found[rep["stage"]] = rep
    return found


def _check_frequency_numbers(page: Page, freq_paths):
    """Each stats table equals what the frequency file says."""
    from curation.frequency import read_frequency_file

    stats = page.table("stats")
    assert len(stats) == len(freq_paths)
    for rows, path in zip(stats, freq_paths):
        counts = np.array([c for _, c in read_frequency_file(path)])
        ordered = np.sort(counts)[::-1]
        got = {r[0]: r[1] for r in rows[1:]}
        assert _num(got["images"]) == counts.sum()
        assert _num(got["classes with 0 images"]) == (counts == 0).sum()
        assert _num(got["classes with < 10"]) == (counts < 10).sum()
        assert _num(got["classes with < 100"]) == (counts < 100).sum()
        assert _num(got["largest class"]) == counts.max()
        share = ordered[:round(len(counts) / 10)].sum() / counts.sum()
        assert got["share of the top 10% of classes"] == f"{share:.1%}"


# ---------------------------------------------------------------- a LAIONet run
@pytest.fixture(scope="module")
def laionet_work(spark, tmp_path_factory):
    from jobs import sample_data
    from jobs.framework.config import build_config
    from jobs.laionet_run import RunConfig, run

    root = tmp_path_factory.mktemp("report_run")
    laion = str(root / "laion")
    sample_data.run(None, build_config(sample_data.SampleLaionConfig,
                                       {"out": laion, "rows": 400, "parts": 2, "seed": 5}))
    model = write_tiny_clip(str(root / "tiny_clip"))
    work = str(root / "work")
    run(spark, build_config(RunConfig, {"laion": laion, "work_dir": work, "model": model[0],
                                        "pretrained": model[1], "threshold": 0.0, "partitions": 3}))
    return work


def test_report_of_a_laionet_run_matches_the_stage_files(laionet_work, tmp_path, capsys):
    page, out, html_page = _report(laionet_work, out=str(tmp_path / "r.html"), compare="study")
    reports = _reports_under(laionet_work)
    freq = os.path.join(laionet_work, "filter.class_frequency.txt")
    # the funnel: one row per stage, in pipeline order, with the reports' numbers
    funnel = html_page.table("funnel")[0][1:]
    assert [r[0] for r in funnel] == ["laionet label", "laionet subset", "laionet similarity", "laionet filter"]
    for row in funnel:
        rep = reports[row[0]]
        assert (_num(row[1]), _num(row[2])) == (rep["read"], rep["kept"])
        assert row[3] == (", ".join(f"{k} {v:,}" for k, v in sorted(rep["dropped"].items())) or "-")
        assert float(row[4]) == rep["seconds"] > 0
    # one long-tail image per frequency file, the numbers of that file
    assert [i["class"] for i in html_page.images].count("longtail") == 1
    assert [i["class"] for i in html_page.images].count("histogram") == 1
    assert all(i["src"].startswith("data:image/png;base64,") for i in html_page.images)
    _check_frequency_numbers(html_page, [freq])
    # threshold 0.0: the study has no file for it, and the page says so
    assert "class_frequency_laionet_thresh0_ori.txt" in page["frequencies"][0]["compare_note"]
    sim = pd.read_parquet(os.path.join(laionet_work, "similarity"))
    assert page["similarity"]["n"] == len(sim) == reports["laionet similarity"]["kept"]
    assert page["similarity"]["above"] == (sim["text_to_name_def_wnid_similarity"] > 0.0).sum()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) <= 8


def test_compare_with_a_frequency_file_and_rows(laionet_work, tmp_path):
    from curation.frequency import read_frequency_file
    from curation.report_page import study_path

    study = study_path("class_frequency_laionet_thresh0.7_ori.txt")
    page, _, html_page = _report(laionet_work, out=str(tmp_path / "c.html"), compare=study)
    ours = [c for _, c in read_frequency_file(os.path.join(laionet_work, "filter.class_frequency.txt"))]
    theirs = [c for _, c in read_frequency_file(study)]
    expected = pd.Series(ours).corr(pd.Series(theirs), method="spearman")
    assert float(html_page.bold["spearman"][0]) == pytest.approx(expected, abs=1e-4)
    cmp_ = page["frequencies"][0]["comparison"]
    assert len(cmp_["empty_here_only"]) == sum(1 for o, t in zip(ours, theirs) if o == 0 < t)
    assert len(cmp_["empty_there_only"]) == sum(1 for o, t in zip(ours, theirs) if t == 0 < o)

    # rows: half of our filtered rows, plus rows we do not have
    kept = pd.read_parquet(os.path.join(laionet_work, "filter"))
    theirs_rows = pd.concat([kept[["laion_index", "wnid"]].iloc[::2],
                             pd.DataFrame({"laion_index": [-1, -2], "wnid": ["n01440764", "n01443537"]})])
    theirs_rows.to_parquet(tmp_path / "published.parquet")
    page, _, html_page = _report(laionet_work, out=str(tmp_path / "o.html"),
                                 compare_rows=str(tmp_path / "published.parquet"))
    assert _num(html_page.bold["common"][0]) == len(kept.iloc[::2]) == page["overlap"]["common"]
    assert page["overlap"]["ours"] == len(kept) and page["overlap"]["theirs"] == len(theirs_rows)


def test_compare_with_a_wrong_frequency_file_names_it(laionet_work, tmp_path):
    bad = tmp_path / "short.txt"
    bad.write_text("tench\t3\ngoldfish\t4\n")
    with pytest.raises(InputError, match=str(bad)):
        _report(laionet_work, out=str(tmp_path / "x.html"), compare=str(bad))
    assert not (tmp_path / "x.html").exists()


def test_unreadable_report_is_skipped_and_named(laionet_work, tmp_path, capsys):
    broken = os.path.join(laionet_work, "similarity", "_report.json")
    with open(broken) as fh:
        saved = fh.read()
    with open(broken, "w") as fh:
        fh.write("{ not json")
    try:
        page, _, html_page = _report(laionet_work, out=str(tmp_path / "b.html"))
    finally:
        with open(broken, "w") as fh:
            fh.write(saved)
    assert broken in capsys.readouterr().err
    assert [s["name"] for s in page["stages"]] == ["laionet label", "laionet subset", "laionet filter"]
    assert any(broken in item for item in html_page.items)
    assert [i["class"] for i in html_page.images].count("longtail") == 1


def test_a_work_dir_without_outputs_is_one_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=str(tmp_path / "empty")):
        _report(tmp_path / "empty")


# ---------------------------------------------------------------- a cls output
def test_report_of_a_cls_output(spark, tmp_path):
    from jobs.cls import run_cls
    from jobs.framework.config import build_config
    from jobs.cls import ClsConfig
    from jobs.sample_captions import generate_captions

    with open(tmp_path / "yfcc.jsonl", "w") as fh:
        for row in generate_captions(300, 4):
            fh.write(json.dumps(row) + "\n")
    out = tmp_path / "o" / "yfcc15m_cls.tsv"
    run_cls(spark, build_config(ClsConfig, {"captions": str(tmp_path / "yfcc.jsonl"), "out": str(out)}))
    page, _, html_page = _report(tmp_path / "o", compare="study")
    freq = str(tmp_path / "o" / "class_frequency_yfcc15m_cls_imagenet_ori.txt")
    rep = _reports_under(tmp_path / "o")["cls"]
    funnel = html_page.table("funnel")[0][1:]
    assert [(r[0], _num(r[1]), _num(r[2])) for r in funnel] == [("cls", rep["read"], rep["kept"])]
    assert [i["class"] for i in html_page.images] == ["longtail"]
    _check_frequency_numbers(html_page, [freq])
    # the study's file has the same name: it is drawn beside ours
    section = page["frequencies"][0]
    assert section["other_name"] == "study: class_frequency_yfcc15m_cls_imagenet_ori.txt"
    assert section["other_stats"]["total"] > 1_000_000


# ---------------------------------------------------------------- progress
def _slow_job(spark):
    def slow(batches):
        for b in batches:
            time.sleep(0.6)
            yield b
    spark.range(0, 8, 1, 8).mapInPandas(slow, "id long").count()


def test_progress_shows_on_a_terminal_not_on_a_pipe(spark, monkeypatch):
    from jobs.framework import progress

    monkeypatch.setattr(progress, "DELAY", 0.3)
    monkeypatch.setattr(progress, "INTERVAL", 0.2)
    master, slave = os.openpty()
    tty = os.fdopen(slave, "w")
    try:
        assert progress.enabled(tty)
        line = progress.ProgressLine(spark.sparkContext, stream=tty)
        progress.set_label("slow")
        line.start()
        _slow_job(spark)
        line.stop()
        tty.flush()
        shown = os.read(master, 65536).decode()
    finally:
        tty.close()
        os.close(master)
    assert "[slow] " in shown and "/8 tasks" in shown and "tasks/s" in shown

    read, write = os.pipe()
    with os.fdopen(write, "w") as pipe:
        assert not progress.enabled(pipe)
        monkeypatch.setattr("sys.stderr", pipe)
        with progress.progress(spark, "slow"):
            _slow_job(spark)
    with os.fdopen(read) as fh:
        assert fh.read() == ""
    progress.set_quiet(True)
    try:
        master, slave = os.openpty()
        with os.fdopen(slave, "w") as tty:
            assert not progress.enabled(tty)
        os.close(master)
    finally:
        progress.set_quiet(False)


"""Spark tests of `curate incaps captions|subsets|trim-tail` and `curate sample-data imagenet-captions`."""
from __future__ import annotations

import json
import os
import subprocess

import pandas as pd
import pytest

from curation import captions as C
from curation import concepts
from curation.errors import ConfigError, InputError
from curation.frequency import read_frequency_file
from curation.samples.incaps import entries_json, generate_entries, tiny_jpeg
from jobs import incaps
from jobs.framework.config import build_config

FULL = dict(use_title=True, use_tags=True, use_description=True, append_cname=True, shuffle=True)


def write_root(root, entries, images=False):
    os.makedirs(os.path.join(root, "imagenet-captions"), exist_ok=True)
    with open(os.path.join(root, "imagenet-captions", "imagenet_captions.json"), "w", encoding="utf-8") as fh:
        fh.write(entries_json(entries))
    if images:
        for e in entries:
            os.makedirs(os.path.join(root, "imagenet", "train", e["wnid"]), exist_ok=True)
            with open(os.path.join(root, "imagenet", "train", e["wnid"], e["filename"]), "wb") as fh:
                fh.write(tiny_jpeg(0))
    return str(root)


@pytest.fixture(scope="module")
def entries():
    """12 classes, 5 of them ImageNet-100 classes, sizes 40 down to 0."""
    wnids = concepts.imagenet100_wnids()[:5] + [w for w in concepts.wnids()[:20]
                                                if w not in concepts.imagenet100_wnids()][:7]
    names = dict(zip(concepts.wnids(), concepts.classnames()))
    return generate_entries(wnids, 40, seed=7, classnames=names)


@pytest.fixture(scope="module")
def root(tmp_path_factory, entries):
    return write_root(tmp_path_factory.mktemp("incaps"), entries, images=True)


def captions(spark, root, out, **kw):
    cfg = build_config(incaps.CaptionsConfig, dict(root=root, out=str(out), **kw))
    return incaps.run_captions(spark, cfg)


def read_tsv(path):
    """As open_clip's loader reads a TSV (quotes parsed), without turning 'NA' into NaN."""
    return pd.read_csv(path, sep="\t", keep_default_na=False, dtype={"caption": str, "filepath": str})


def report_of(path):
    with open(path + ".report.json") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def full_text(spark, root, tmp_path_factory):
    return captions(spark, root, tmp_path_factory.mktemp("full"), **FULL)


# ---------------------------------------------------------------- captions
def test_full_text_variant(full_text, entries, root):
    tsv = full_text["tsv"]
    assert os.path.basename(tsv) == f"incaps_title_tags_description+cname_{len(entries)}.tsv"
    with open(tsv, encoding="utf-8") as fh:
        assert fh.readline() == "filepath\tlabel\tcaption\n"
    df = read_tsv(tsv)
    builder = C.CaptionBuilder(C.CaptionSpec(True, True, True, True), f"{root}/imagenet",
                               concepts.load_concepts())
    expected = sorted((C.order_key(e["filename"], 0, "shuffle"), builder.row(e)) for e in entries)
    assert list(df.filepath) == [r.filepath for _, r in expected]
    assert list(df.caption) == [r.caption for _, r in expected]
    assert list(df.label) == [concepts.wnids().index(r.filepath.split("/")[-2]) for _, r in expected]
    assert all(os.path.exists(p) for p in df.filepath)
    freq = read_frequency_file(full_text["frequency_file"], expected_lines=1000)
    assert os.path.basename(full_text["frequency_file"]) == "class_frequency_incaps_imagenet_ori.txt"
    assert [name for name, _ in freq] == concepts.classnames()
    assert {i: c for i, (_, c) in enumerate(freq) if c} == df.label.value_counts().to_dict()
    report = report_of(tsv)
    assert (report["read"], report["kept"], report["dropped"]) == (len(entries), len(entries), {})


def test_without_shuffle_the_json_order_is_kept(spark, root, entries, tmp_path):
    df = read_tsv(captions(spark, root, tmp_path, use_description=True)["tsv"])
    spec = C.CaptionSpec(use_description=True)
    kept = [e["filename"] for e in entries if C.join_caption("", [], e["description"], spec)]
    assert 0 < len(kept) < len(entries)
    assert [p.rsplit("/", 1)[1] for p in df.filepath] == kept


def test_same_output_with_or_without_spark(spark, root, full_text, tmp_path, curate_cmd):
    with open(full_text["tsv"], "rb") as fh:
        reference = fh.read()
    # the deprecated --parse-tasks is accepted and changes nothing
    no_spark = captions(None, root, tmp_path / "one", parse_tasks=1, **FULL)["tsv"]
    with open(no_spark, "rb") as fh:
        assert fh.read() == reference
    # the command on local paths starts no JVM (`captions_need_spark`)
    flags = [f"--{k.replace('_', '-')}" for k in FULL]
    proc = subprocess.run(curate_cmd + ["incaps", "captions", "--root", root, "--out", str(tmp_path / "l1"),
                                        "--master", "local[1]", "--parse-tasks", "3", *flags],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / "l1" / os.path.basename(full_text["tsv"]), "rb") as fh:
        assert fh.read() == reference
    other_seed = captions(spark, root, tmp_path / "seed1", seed=1, **FULL)["tsv"]
    with open(other_seed, "rb") as fh:
        changed = fh.read()
    assert changed != reference and sorted(changed.splitlines()) == sorted(reference.splitlines())


def test_title_only_drops_and_counts_empty_captions(spark, root, entries, tmp_path):
    out = captions(spark, root, tmp_path, use_title=True)
    empty = sum(1 for e in entries if not C.clean_text(e["title"]).replace(" ", ""))
    assert empty > 0
    assert os.path.basename(out["tsv"]) == f"incaps_title_{len(entries) - empty}.tsv"
    assert os.path.basename(out["frequency_file"]) == "class_frequency_incaps_title_only_imagenet_ori.txt"
    report = report_of(out["tsv"])
    assert report["dropped"] == {"empty_caption": empty} and report["kept"] == len(entries) - empty


def test_rerun_removes_a_killed_runs_temporary_file_of_its_variant_only(spark, root, tmp_path):
    mine = tmp_path / "incaps_title.__tmp-deadbeef.tsv"  # what a killed title-only run leaves
    other = tmp_path / "incaps_title_tags.__tmp-cafecafe.tsv"  # another variant, maybe running
    mine.write_text("filepath\tlabel\tcaption\npartial")
    other.write_text("filepath\tlabel\tcaption\n")
    out = captions(spark, root, tmp_path, use_title=True)
    assert not mine.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.glob("*.__tmp-*")) == [other.name]
    assert os.path.exists(out["tsv"])


def test_template_synset_openai80(spark, root, entries, tmp_path):
    out = captions(spark, root, tmp_path, append_cname=True, use_synset=True, mode="openai80", shuffle=True)
    assert os.path.basename(out["tsv"]) == f"incaps_openai80_synset_{len(entries)}.tsv"
    df = read_tsv(out["tsv"])
    lemmas = concepts.load_concepts()["lemmas"]
    filled = {t.format(lemma) + " " for t in concepts.openai_templates() for ls in lemmas for lemma in ls}
    assert set(df.caption) <= filled and df.caption.nunique() > 20


def _bad_entries(entries):
    bad = [dict(e) for e in entries[:6]]
    bad[1]["title"] = 5
    del bad[3]["tags"]
    bad[4]["wnid"] = "n00000001"
    return bad


def test_bad_entries_stop_the_job_naming_the_first(spark, tmp_path, entries):
    root = write_root(tmp_path / "root", _bad_entries(entries))
    with pytest.raises(InputError, match=r"imagenet_captions.json: entry 1 \(filename '.*'\): "
                                         r"field 'title' is a JSON number.*3 bad entries"):
        captions(spark, root, tmp_path / "out", use_title=True)
    assert not os.path.exists(tmp_path / "out") or os.listdir(tmp_path / "out") == []


def test_skip_bad_rows_counts_and_samples_them(spark, tmp_path, entries):
    bad = _bad_entries(entries)
    root = write_root(tmp_path / "root", bad)
    out = captions(spark, root, tmp_path / "out", append_cname=True, skip_bad_rows=True)
    report = report_of(out["tsv"])
    assert report["dropped"] == {"bad_entry": 2, "unknown_wnid": 1} and report["kept"] == 3
    sample = report["info"]["bad_rows"]["sample"]
    assert [(s["entry"], s["filename"]) for s in sample] == [(i, bad[i]["filename"]) for i in (1, 3, 4)]


def test_broken_json_is_one_error(spark, tmp_path):
    root = tmp_path / "root"
    os.makedirs(root / "imagenet-captions")
    (root / "imagenet-captions" / "imagenet_captions.json").write_text('[{"filename": "a"}, oops]')
    with pytest.raises(InputError, match="imagenet_captions.json: invalid JSON at byte 20: Expecting value$"):
        captions(spark, str(root), tmp_path / "out", use_title=True)
    with pytest.raises(InputError, match=r"^ImageNet-Captions metadata not found: .*nowhere/imagenet-captions/"
                                         r"imagenet_captions.json$"):
        captions(spark, str(tmp_path / "nowhere"), tmp_path / "out", use_title=True)
    assert not os.path.exists(tmp_path / "out")


def test_spark_only_for_other_file_systems(monkeypatch):
    from jobs.framework.session import under_spark_submit

    if under_spark_submit():
        pytest.skip("under spark-submit the job always takes the session")
    def need(**kw):
        return incaps.captions_need_spark(build_config(incaps.CaptionsConfig, dict(use_title=True, **kw)))

    assert not need(root="/data/incaps") and not need(root="file:///data/incaps", out="rel/out")
    assert need(root="hdfs:///data/incaps") and need(root="/data/incaps", out="s3a://bucket/out")
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "1")  # spark-submit's JVM is up: plain paths are Hadoop's
    assert need(root="/data/incaps")


def test_reads_and_writes_through_hadoop(spark, root, full_text, tmp_path, monkeypatch):
    """What an hdfs:// or s3a:// root gets: the list read in chunks and the TSV written
    through Hadoop's FileSystem (its local file system here), the same bytes."""
    from udfs import files

    local_for = files.local_for
    monkeypatch.setattr(files, "local_for", lambda spark, path: None if spark is not None else local_for(spark, path))
    monkeypatch.setattr(files, "HADOOP_CHUNK_BYTES", 4096)
    out = captions(spark, "file://" + root, "file://" + str(tmp_path), imagenet_root=f"{root}/imagenet", **FULL)
    with open(full_text["tsv"], "rb") as a, open(tmp_path / os.path.basename(full_text["tsv"]), "rb") as b:
        assert a.read() == b.read()
    assert out["tsv"] == "file://" + str(tmp_path / os.path.basename(full_text["tsv"]))
    assert report_of(str(tmp_path / os.path.basename(full_text["tsv"])))["kept"] == report_of(full_text["tsv"])["kept"]
    with pytest.raises(InputError, match="^ImageNet-Captions metadata not found: file:///nowhere/"):
        captions(spark, "file:///nowhere", "file://" + str(tmp_path / "x"), **FULL)


def test_file_names_are_written_as_given(spark, tmp_path, entries):
    """The file names come back as given: nothing trims them; a quote is quoted as pandas does."""
    odd = [dict(entries[0], filename=" lead.JPEG"), dict(entries[1], filename="trail .JPEG "),
           dict(entries[2], filename='quote"d,.JPEG')]
    out = captions(spark, write_root(tmp_path / "root", odd), tmp_path / "out", use_title=True,
                   append_cname=True, shuffle=True)
    assert {p.rsplit("/", 1)[1] for p in read_tsv(out["tsv"]).filepath} == {e["filename"] for e in odd}


#: captions that break an unquoted TSV, or that a trimming writer changes
AWKWARD_TITLES = ['"Quoted" start', 'ends with a quote"', 'a "quoted" word', 'say "cheese', '"', '""',
                  "it's", "back\\slash \\", "tab\tinside", "new\nline", "cr\r\nlf", "Zürich 東京 🙂",
                  "  leading", "trailing  ", " both ", "NA", "null", "nan", "", " ", "\t"]


def test_captions_round_trip_through_pandas(spark, tmp_path, entries):
    """Every caption comes back from `pd.read_csv(sep='\\t')` exactly as the rule builds it,
    and the file is byte for byte pandas' `to_csv` of those rows."""
    odd = [dict(e, title=t) for e, t in zip(entries, AWKWARD_TITLES)]
    root = write_root(tmp_path / "root", odd)
    concept_table = concepts.load_concepts()
    for kw in (dict(use_title=True), dict(use_title=True, append_cname=True, shuffle=True)):
        out = captions(spark, root, tmp_path / "out", **kw)
        spec = C.CaptionSpec(use_title=True, append_cname=kw.get("append_cname", False))
        builder = C.CaptionBuilder(spec, f"{root}/imagenet", concept_table)
        rows = [builder.row(e) for e in odd]
        if kw.get("shuffle"):
            rows = [r for _, r in sorted((C.order_key(r.filename, 0, "shuffle"), r) for r in rows)]
        kept = [r for r in rows if r.status == C.KEPT]
        expected = pd.DataFrame({"filepath": [r.filepath for r in kept], "label": [r.label for r in kept],
                                 "caption": [r.caption for r in kept]})
        got = read_tsv(out["tsv"])
        assert list(got.caption) == list(expected.caption) and len(got) == len(kept)
        assert list(got.filepath) == list(expected.filepath) and list(got.label) == list(expected.label)
        with open(out["tsv"], "rb") as fh:
            assert fh.read() == expected.to_csv(sep="\t", index=False).encode("utf-8")
    # with a class name, an entry without text keeps the space after the name, as the original
    untitled = odd[AWKWARD_TITLES.index("")]
    assert f"{dict(zip(concepts.wnids(), concepts.classnames()))[untitled['wnid']]} " in set(got.caption)
    assert report_of(out["tsv"])["kept"] == len(odd)


# ---------------------------------------------------------------- subsets and trim-tail
def subsets(spark, df, out, **kw):
    return incaps.run_subsets(spark, build_config(incaps.SubsetsConfig, dict(df=df, out=str(out), **kw)))


def test_imagenet100_subset_remaps_labels(spark, full_text, tmp_path):
    out = subsets(spark, full_text["tsv"], tmp_path, use_in100=True)
    full = read_tsv(full_text["tsv"])
    df = read_tsv(out["tsv"])
    in100 = concepts.imagenet100_labels()
    expected = full[full.label.isin(in100)]
    assert os.path.basename(out["tsv"]) == f"in100caps_title_tags_description+cname_{len(expected)}.tsv"
    assert list(df.columns) == ["filepath", "label", "caption", "label_ori"]
    assert list(df.filepath) == list(expected.filepath)  # input order kept
    assert list(df.label_ori) == list(expected.label)
    assert list(df.label) == [in100.index(lab) for lab in expected.label]
    freq = read_frequency_file(out["frequency_file"], expected_lines=100)
    assert os.path.basename(out["frequency_file"]) == "class_frequency_incaps_imagenet100_ori.txt"
    assert [n for n, _ in freq] == [concepts.classnames()[i] for i in in100]
    assert sum(c for _, c in freq) == len(df)
    report = report_of(out["tsv"])
    assert report["dropped"] == {"class_not_kept": len(full) - len(df)}


def test_random_rows_and_classes_are_seeded(spark, full_text, tmp_path):
    n = 30
    a = subsets(spark, full_text["tsv"], tmp_path / "a", n=n)
    assert os.path.basename(a["tsv"]) == f"incaps_title_tags_description+cname_{n}.tsv"
    assert os.path.basename(a["frequency_file"]) == f"class_frequency_incaps_n{n}_ori.txt"
    rows_a = read_tsv(a["tsv"])
    assert len(rows_a) == n and rows_a.filepath.is_unique
    assert list(rows_a.filepath) == sorted(read_tsv(full_text["tsv"]).filepath,
                                           key=lambda p: C.order_key(p, 42, "rows"))[:n]
    b = read_tsv(subsets(spark, full_text["tsv"], tmp_path / "b", n=n, seed=1)["tsv"])
    assert set(b.filepath) != set(rows_a.filepath)
    k = subsets(spark, full_text["tsv"], tmp_path / "k", k=600, n=10, seed=3)
    df = read_tsv(k["tsv"])
    assert os.path.basename(k["tsv"]) == "in600caps_title_tags_description+cname_10.tsv"
    assert len(df) == 10 and df.label.max() < 600 and (df.label_ori >= df.label).all()
    assert len(read_frequency_file(k["frequency_file"], expected_lines=600)) == 600


def test_subset_errors(spark, full_text, tmp_path):
    rows = len(read_tsv(full_text["tsv"]))
    with pytest.raises(InputError, match=f"--n {rows + 1} is larger than the {rows} rows"):
        subsets(spark, full_text["tsv"], tmp_path, n=rows + 1)
    for k in (1, 1001):
        with pytest.raises(ConfigError, match="'k'.*2..1000"):
            build_config(incaps.SubsetsConfig, dict(df="x.tsv", k=k))
    with pytest.raises(ConfigError, match="nothing to do"):
        build_config(incaps.SubsetsConfig, dict(df="x.tsv"))
    bad = tmp_path / "incaps_bad_3.tsv"
    bad.write_text("filepath\tlabel\tcaption\na.jpg\t3\tx\nb.jpg\tdog\ty\n")
    with pytest.raises(InputError, match=r"filepath 'b.jpg': label 'dog'"):
        subsets(spark, str(bad), tmp_path, n=1)


def test_trim_tail(spark, full_text, tmp_path):
    out = incaps.run_trim_tail(spark, build_config(incaps.TrimTailConfig,
                                                   dict(df=full_text["tsv"], out=str(tmp_path), lastk=993, ceil=2)))
    assert os.path.basename(out["tsv"]) == "incaps_title_tags_description+cname_tail993ceil2.tsv"
    assert os.path.basename(out["frequency_file"]) == "class_frequency_incaps_tail993ceil2_imagenet_ori.txt"
    before = read_tsv(full_text["tsv"]).label.value_counts()
    after = read_tsv(out["tsv"]).label.value_counts()
    # 989 classes are empty: the 993 smallest are those and the 4 smallest others
    tail = [lab for lab in C.tail_labels(before.to_dict(), 1000, 993) if lab in before.index]
    assert len(tail) == 4 and max(before[lab] for lab in tail) > 2
    assert all(after[lab] == min(before[lab], 2) for lab in tail)
    assert all(after[lab] == before[lab] for lab in before.index if lab not in tail)
    freq = dict(enumerate(c for _, c in read_frequency_file(out["frequency_file"], 1000)))
    assert {lab: c for lab, c in freq.items() if c} == after.to_dict()
    report = report_of(out["tsv"])
    assert report["kept"] == after.sum() and report["dropped"] == {"tail_trimmed": before.sum() - after.sum()}
    # the same rows, in the same order, as the pandas rule (`curation.captions.trim_tail`)
    want = C.trim_tail(read_tsv(full_text["tsv"]), 1000, lastk=993, ceil=2, seed=0)
    got = read_tsv(out["tsv"])
    assert got.to_dict("list") == want.reset_index(drop=True).to_dict("list")


# ---------------------------------------------------------------- sample data
def test_sample_data_writes_a_root(tmp_path, curate_cmd):
    proc = subprocess.run(curate_cmd + ["sample-data", "imagenet-captions", "--out", str(tmp_path),
                                        "--classes", "6", "--per-class-max", "10", "--seed", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / "imagenet-captions" / "imagenet_captions.json", encoding="utf-8") as fh:
        data = json.load(fh)
    assert {e["wnid"] for e in data} <= set(concepts.wnids()) and len({e["wnid"] for e in data}) == 5
    assert all((tmp_path / "imagenet" / "train" / e["wnid"] / e["filename"]).stat().st_size > 100 for e in data)

"""Spark tests of `laionet label`, `laionet subset`, reading LAION parts and `sample-data laion`."""
from __future__ import annotations

import glob

import json

import os

import shutil

import pyarrow as pa

import pyarrow.parquet as pq

import pytest

from curation.laion import INDEX_SHIFT_PER_PART, part_number

from curation.matching import laionet_reference_match

from jobs.framework.base import execute

from jobs.io.laion import read_laion

from jobs.laionet_label import JOBS, MatchConfig, run_label, run_subset

from jobs.sample_data import JOB as SAMPLE_JOB



from tests.support.laionet_label import ROWS


LABEL_JOB, SUBSET_JOB = JOBS


@pytest.fixture(scope="module")
def lemma_map(lemma_map_file):
    with open(lemma_map_file) as fh:
        return json.load(fh)


def part_files(directory):
    return sorted(glob.glob(os.path.join(directory, "part-*.parquet")))


def source_rows(directory):
    """{laion_index: row dict} computed with pyarrow from row positions."""
    rows = {}
    for f in part_files(directory):
        part = part_number(f)
        for i, row in enumerate(pq.read_table(f).to_pylist()):
            rows[part * INDEX_SHIFT_PER_PART + i] = row
    return rows


def test_sample_parts_have_several_row_groups_and_reproduce(parts, tmp_path, lemma_map_file):
    files = part_files(parts)
    assert [part_number(f) for f in files] == [4, 5, 6]
    assert all(pq.ParquetFile(f).num_row_groups == 4 for f in files)
    again = str(tmp_path / "again")
    assert execute(SAMPLE_JOB, ["--out", again, "--rows", str(ROWS), "--parts", "3", "--seed", "11",
                                "--row-group-rows", "1000", "--first-part", "4",
                                "--lemma-map", lemma_map_file]) == 0
    for a, b in zip(files, part_files(again)):
        assert os.path.basename(a) == os.path.basename(b)
        assert pq.read_table(a).equals(pq.read_table(b))
    assert json.load(open(os.path.join(again, "_report.json")))["kept"] == ROWS


def test_laion_index_is_the_row_position_across_splits_and_row_groups(spark, parts):
    expected = {i: row["SAMPLE_ID"] for i, row in source_rows(parts).items()}
    old = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "24k")
    try:
        df = read_laion(spark, parts).df.select("laion_index", "SAMPLE_ID")
        assert df.rdd.getNumPartitions() > 6  # several splits per file
        got = {r["laion_index"]: r["SAMPLE_ID"] for r in df.collect()}
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", old)
    assert got == expected


@pytest.mark.parametrize("lookup", ["size", "size map", "name", "name map", "regex"])
def test_laion_index_part_lookup_paths_agree(spark, parts, lookup, monkeypatch):
    """The part offset is looked up by file size (distinct sizes), by file name (else),
    in a CASE WHEN or a map (many files), or found by the regex (a file not listed): all
    give the same index."""
    import jobs.io.laion as label

    laion = read_laion(spark, parts)
    sizes = [os.path.getsize(f.replace("file:", "")) for f in laion.files]
    assert len(set(sizes)) == len(sizes) > 1  # the size lookup is what read_laion uses here
    if lookup.endswith("map"):
        monkeypatch.setattr(label, "_WHEN_CHAIN_MAX_FILES", 0)
    files = None if lookup == "regex" else laion.files
    column = label.laion_index_column(files, sizes if lookup.startswith("size") else None)
    assert ("file_size" in str(column)) == lookup.startswith("size")
    df = spark.read.parquet(*laion.files).select(column, "SAMPLE_ID")
    got = {r["laion_index"]: r["SAMPLE_ID"] for r in df.collect()}
    assert got == {i: row["SAMPLE_ID"] for i, row in source_rows(parts).items()}


def test_label_equals_the_original_rule_on_every_row(parts, lemma_map, label_run, spark):
    out, report = label_run
    lemmas = sorted(lemma_map)
    expected = set()
    source = source_rows(parts)
    for index, row in source.items():
        for lemma in laionet_reference_match(row["TEXT"], lemmas):
            expected.add((index, lemma_map[lemma], lemma))
    table = pq.read_table(out)
    assert table.schema.field("laion_index").type == pa.int64()
    got = list(zip(*(table.column(c).to_pylist() for c in ("laion_index", "wnid", "lemma"))))
    assert len(got) == len(set(got)) and set(got) == expected and len(expected) > 1000
    texts = [row["TEXT"] for row in source.values()]
    assert (report.read, report.kept) == (ROWS, len({i for i, _, _ in expected}))
    assert report.dropped["null_caption"] == sum(t is None for t in texts)
    assert report.dropped["empty_caption"] == sum(t == "" for t in texts)
    assert report.info["pairs"] == len(expected)
    on_disk = json.load(open(os.path.join(out, "_report.json")))
    assert on_disk["read"] == on_disk["kept"] + sum(on_disk["dropped"].values()) == ROWS


def test_label_output_does_not_depend_on_partitioning(spark, parts, lemma_map_file, label_run, tmp_path):
    out = str(tmp_path / "labels")
    old = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "32k")
    try:
        run_label(spark, MatchConfig(laion=parts, out=out, lemma_map=lemma_map_file))
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", old)
    assert len(glob.glob(os.path.join(out, "*.parquet"))) > len(glob.glob(os.path.join(label_run[0], "*.parquet")))
    key = ["laion_index", "lemma"]
    assert pq.read_table(out).sort_by([(k, "ascending") for k in key]).equals(
        pq.read_table(label_run[0]).sort_by([(k, "ascending") for k in key]))


def test_lemma_map_is_read_through_the_jobs_file_system(spark, parts, lemma_map_file, label_run, tmp_path,
                                                          monkeypatch):
    """--lemma-map goes through the same file-system layer as every other path (Hadoop's:
    hdfs://, s3a://, ... as --laion), not through pyarrow's, which lacks s3a://."""
    import curation.concepts
    from curation.errors import InputError

    def no_pyarrow(path):
        raise AssertionError(f"{path} read outside the jobs' file-system layer")

    monkeypatch.setattr(curation.concepts, "_read_text", no_pyarrow)
    out = str(tmp_path / "labels")
    run_label(spark, MatchConfig(laion=parts, out=out, lemma_map=f"file://{os.path.abspath(lemma_map_file)}"))
    key = [("laion_index", "ascending"), ("lemma", "ascending")]
    assert pq.read_table(out).sort_by(key).equals(pq.read_table(label_run[0]).sort_by(key))
    missing = f"file://{tmp_path}/no_such_map.json"
    with pytest.raises(InputError, match=f"^lemma map \\(--lemma-map\\) not found: {missing}$"):
        run_label(spark, MatchConfig(laion=parts, out=str(tmp_path / "x"), lemma_map=missing))


def test_subset_has_all_columns_and_the_sorted_wnids_and_lemmas(spark, parts, lemma_map_file, label_run, tmp_path):
    out = str(tmp_path / "subset")
    report = run_subset(spark, MatchConfig(laion=parts, out=out, lemma_map=lemma_map_file))
    subset = pq.read_table(out).to_pylist()
    labels = pq.read_table(label_run[0]).to_pylist()
    expected = {}
    for r in labels:
        w, l = expected.setdefault(r["laion_index"], (set(), set()))
        w.add(r["wnid"])
        l.add(r["lemma"])
    source = source_rows(parts)
    assert len(subset) == len(expected) == report.kept
    for row in subset:
        wnids, lemmas = expected[row["laion_index"]]
        assert row["wnids"] == sorted(wnids) and row["lemmas"] == sorted(lemmas)
        original = {k: v for k, v in row.items() if k not in ("laion_index", "wnids", "lemmas")}
        assert original == source[row["laion_index"]]
    assert sum(len(r["wnids"]) > 1 for r in subset) > 10  # multi-class rows survive to be dropped later
    assert list(pq.read_table(out).schema.names)[:9] == ["SAMPLE_ID", "URL", "TEXT", "HEIGHT", "WIDTH", "LICENSE",
                                                    "NSFW", "similarity", "laion_index"]


def write_part(directory, name, table):
    os.makedirs(directory, exist_ok=True)
    pq.write_table(table, os.path.join(directory, name))


def test_normalized_matching_finds_punctuated_lemmas(spark, tmp_path, lemma_map_file):
    d = str(tmp_path / "parts")
    texts = ["A U-BOAT in port", "the R.V. Calypso", "Jack-O'-Lantern!!", "u boat", None, "", "nothing"]
    write_part(d, "part-00002-x-c000.snappy.parquet", pa.table({"TEXT": texts}))
    out = str(tmp_path / "labels")
    report = run_label(spark, MatchConfig(laion=d, out=out, matching="normalized", lemma_map=lemma_map_file))
    got = sorted((r["laion_index"], r["lemma"]) for r in pq.read_table(out).to_pylist())
    assert got == [(200_000_000, "U-boat"), (200_000_001, "R.V."), (200_000_002, "jack"),
                   (200_000_002, "jack-o'-lantern"), (200_000_003, "U-boat")]
    assert (report.read, report.kept, report.dropped) == (
        7, 4, {"null_caption": 1, "empty_caption": 1, "no_match": 1})
    laionet_out = str(tmp_path / "laionet")
    assert run_label(spark, MatchConfig(laion=d, out=laionet_out, lemma_map=lemma_map_file)).kept == 0


# ---------------------------------------------------------------- bad input
def copy_parts(parts, directory):
    shutil.copytree(parts, directory, ignore=shutil.ignore_patterns("_*"))
    return part_files(directory)


def run_cli(job, argv, capsys):
    """Run a job through the CLI entry point in this process; (exit code, stderr)."""
    code = execute(job, argv)
    return code, capsys.readouterr().err.strip()


def test_part_without_text_or_with_non_string_text_names_file_and_column(spark, parts, tmp_path, capsys):
    for case, table in (("missing", pa.table({"URL": ["u"]})), ("int", pa.table({"TEXT": pa.array([1], pa.int64())}))):
        d = str(tmp_path / case)
        copy_parts(parts, d)
        bad = "part-00009-x-c000.snappy.parquet"
        write_part(d, bad, table)
        code, err = run_cli(LABEL_JOB, ["--laion", d, "--out", str(tmp_path / f"{case}-out")], capsys)
        assert code == 2 and len(err.splitlines()) == 1
        assert bad in err and "TEXT" in err
        assert not os.path.exists(tmp_path / f"{case}-out")


def test_corrupt_part_is_an_error_or_skipped_and_counted(spark, parts, tmp_path, capsys, lemma_map_file):
    d = str(tmp_path / "corrupt")
    files = copy_parts(parts, d)
    with open(files[1], "r+b") as fh:  # truncate: the footer is gone
        fh.truncate(os.path.getsize(files[1]) // 2)
    code, err = run_cli(SUBSET_JOB, ["--laion", d, "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and os.path.basename(files[1]) in err
    report = run_label(spark, MatchConfig(laion=d, out=str(tmp_path / "skipped"), skip_bad_files=True,
                                          lemma_map=lemma_map_file))
    assert "skipping unreadable parquet file" in capsys.readouterr().err
    assert report.info["skipped_bad_files"] == 1 and report.info["input_files"] == 2
    assert report.read == ROWS - ROWS // 3


def corrupt_text_pages(path):
    """Garble the first TEXT data page of a parquet file; its footer stays readable."""
    chunk = next(c for c in (pq.ParquetFile(path).metadata.row_group(0).column(i) for i in range(8))
                 if c.path_in_schema == "TEXT")
    with open(path, "r+b") as fh:
        fh.seek(chunk.data_page_offset + 4)
        fh.write(bytes(range(256)) * 8)


def test_corrupt_pages_are_an_error_or_skipped_and_counted(spark, parts, tmp_path, capsys, lemma_map_file):
    d = str(tmp_path / "pages")
    files = copy_parts(parts, d)
    corrupt_text_pages(files[0])
    code, err = run_cli(LABEL_JOB, ["--laion", d, "--out", str(tmp_path / "out"), "--lemma-map", lemma_map_file],
                        capsys)
    assert code == 2 and err.splitlines()[-1].startswith("error: ") and os.path.basename(files[0]) in err.splitlines()[-1]
    report = run_label(spark, MatchConfig(laion=d, out=str(tmp_path / "skipped"), skip_bad_files=True,
                                          lemma_map=lemma_map_file))
    assert report.info["rows_in_unreadable_pages"] > 0
    assert report.read + report.info["rows_in_unreadable_pages"] == ROWS


def test_other_bad_inputs_are_one_line_errors(spark, parts, tmp_path, capsys):
    d = str(tmp_path / "names")
    copy_parts(parts, d)
    write_part(d, "laion-extra.parquet", pa.table({"TEXT": ["x"]}))
    code, err = run_cli(LABEL_JOB, ["--laion", d, "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "laion-extra.parquet" in err and "part" in err
    os.remove(os.path.join(d, "laion-extra.parquet"))
    write_part(d, "part-00004-other-c000.snappy.parquet", pa.table({"TEXT": ["x"]}))
    code, err = run_cli(LABEL_JOB, ["--laion", d, "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "part number 4" in err
    code, err = run_cli(LABEL_JOB, ["--laion", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "nowhere" in err
    code, err = run_cli(LABEL_JOB, ["--laion", parts, "--out", "x", "--lemma-map", "/no/such.json"], capsys)
    assert code == 2 and "lemma_map" in err
    code, err = run_cli(LABEL_JOB, ["--laion", parts, "--out", "x", "--lemma-map", "ilsvrc"], capsys)
    assert code == 2 and "'lemma_map': unknown lemma map 'ilsvrc'; allowed values: standard, laionet" in err


def test_glob_input_and_default_lemma_map(spark, parts, tmp_path):
    out = str(tmp_path / "labels")
    report = run_label(spark, MatchConfig(laion=os.path.join(parts, "part-0000[45]-*.parquet"), out=out))
    assert report.info["input_files"] == 2 and report.info["lemmas"] == 1824
    assert report.info["lemma_map"] == "standard"
    named = run_label(spark, MatchConfig(laion=os.path.join(parts, "part-00004-*.parquet"), out=out + "-laionet",
                                         lemma_map="laionet"))
    assert named.info["lemmas"] == 1825 and named.info["lemma_map"] == "laionet"
    indexes = pq.read_table(out).column("laion_index").to_pylist()
    assert indexes and all(400_000_000 <= i < 600_000_000 for i in indexes)


"""The authors' published metadata (seed "Option 1"): pandas files whose DataFrame index is
the LAION index, taken as they are by download, arrange, subsets, match-freq, t2t-subset."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from curation.errors import InputError
from curation.samples.images import SampleImageServer, sample_url
from jobs.framework.config import build_config
from jobs.io.metadata import PANDAS_UNNAMED_INDEX, read_metadata

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

WNIDS = ["n01440764", "n02102040", "n03028079"]
#: (kind, ext, rows): kinds of the sample image server
KINDS = [("img", "jpg", 5), ("img", "png", 2), ("redirect", "jpg", 1), ("404", "jpg", 2)]


def published(base: str, path, index_name=None) -> pd.DataFrame:
    """An Option-1 file as the authors' scripts write it: `df.to_parquet(path)` with the LAION
    index as the DataFrame index (unnamed: `__index_level_0__`; or named `index_name`), rows
    not in index order. Returns the frame (index = LAION index, plus a `kind` column)."""
    rows = []
    for kind, ext, n in KINDS:
        for _ in range(n):
            i = len(rows)
            rows.append(dict(SAMPLE_ID=float(i), URL=sample_url(base, kind, f"m{i}", ext), TEXT=f"caption {i}",
                             HEIGHT=256, WIDTH=256, LICENSE="?", NSFW="UNLIKELY", similarity=0.31,
                             text_to_name_def_wnid_similarity=0.75 + 0.01 * i, wnid=WNIDS[i % 3], kind=kind))
    df = pd.DataFrame(rows, index=pd.Index([1_200_000_000 + 13 * i + 5 for i in range(len(rows))],
                                           name=index_name))
    df = df.sample(frac=1.0, random_state=1)
    df.drop(columns=["kind"]).to_parquet(path)  # pandas' default: a non-range index is stored
    return df


def test_pandas_files_store_the_index_as_the_reader_expects(tmp_path):
    """What the reader relies on: the footer's pandas metadata names the stored index column."""
    df = published("http://127.0.0.1:1", tmp_path / "a.parquet")
    meta = json.loads(pq.read_metadata(tmp_path / "a.parquet").metadata[b"pandas"])
    assert meta["index_columns"] == [PANDAS_UNNAMED_INDEX] and "laion_index" not in pq.read_schema(tmp_path / "a.parquet").names
    published("http://127.0.0.1:1", tmp_path / "b.parquet", index_name="key")
    assert json.loads(pq.read_metadata(tmp_path / "b.parquet").metadata[b"pandas"])["index_columns"] == ["key"]
    assert pd.read_parquet(tmp_path / "a.parquet").index.tolist() == df.index.tolist()


@pytest.mark.parametrize("index_name", [None, "key", "laion_index"])
def test_reader_takes_the_pandas_index_as_laion_index(spark, tmp_path, index_name):
    df = published("http://127.0.0.1:1", tmp_path / "m.parquet", index_name=index_name)
    got = read_metadata(spark, str(tmp_path / "m.parquet")).toPandas()
    assert "laion_index" in got.columns and PANDAS_UNNAMED_INDEX not in got.columns and "key" not in got.columns
    assert sorted(zip(got.laion_index, got.URL)) == sorted(zip(df.index, df.URL))
    assert dict(read_metadata(spark, str(tmp_path / "m.parquet")).dtypes)["laion_index"] == "bigint"


def test_reader_bad_files_are_one_line_errors_naming_file_and_columns(spark, tmp_path):
    pd.DataFrame({"URL": ["u"], "wnid": [WNIDS[0]]}).to_parquet(tmp_path / "range.parquet")  # RangeIndex: no column
    pd.DataFrame({"URL": ["u"], "wnid": [WNIDS[0]]}).to_parquet(tmp_path / "noindex.parquet", index=False)
    for name in ("range.parquet", "noindex.parquet"):
        with pytest.raises(InputError) as e:
            read_metadata(spark, str(tmp_path / name), "metadata")
        assert str(e.value) == f"metadata {tmp_path / name}: no 'laion_index' column and no pandas index; " \
                               "its columns: URL, wnid"
    pd.DataFrame({"URL": ["u"]}, index=pd.Index(["a"])).to_parquet(tmp_path / "str.parquet")
    with pytest.raises(InputError, match="'__index_level_0__' .*must be an integer id, got string"):
        read_metadata(spark, str(tmp_path / "str.parquet"))
    pd.DataFrame({"URL": ["u"]}, index=pd.MultiIndex.from_tuples([(1, 2)])).to_parquet(tmp_path / "multi.parquet")
    with pytest.raises(InputError, match="MultiIndex"):
        read_metadata(spark, str(tmp_path / "multi.parquet"))


def test_every_metadata_job_refuses_a_file_without_an_index(spark, tmp_path, capsys):
    """The same one line (exit 2) from each job that takes LAIONet metadata."""
    from jobs.framework.base import execute
    from jobs.laionet_arrange import JOB as ARRANGE
    from jobs.laionet_download import JOB as DOWNLOAD
    from jobs.laionet_match_freq import JOB as MATCH
    from jobs.laionet_subsets import JOB as SUBSETS

    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"URL": ["u"], "TEXT": ["t"], "wnid": [WNIDS[0]]}).to_parquet(bad)
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "00000.tar").write_bytes(b"\0" * 1024)
    (tmp_path / "caps.json").write_text(json.dumps([{"filename": f"{WNIDS[0]}_1.JPEG"}]))
    line = f"{bad}: no 'laion_index' column and no pandas index; its columns: URL, TEXT, wnid"
    runs = [(DOWNLOAD, ["--metadata", str(bad), "--out", str(tmp_path / "dl")]),
            (ARRANGE, ["--shards", str(tmp_path / "shards"), "--metadata", str(bad), "--target", str(tmp_path / "t")]),
            (SUBSETS, ["--df", str(bad), "--out-dir", str(tmp_path / "s")]),
            (MATCH, ["--df", str(bad), "--t2t-df", str(bad), "--captions-df", str(tmp_path / "caps.json"),
                     "--out-dir", str(tmp_path / "mf")])]
    for job, argv in runs:
        assert execute(job, argv) == 2, job.name
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].endswith(line), (job.name, err)
    assert not any((tmp_path / d).exists() for d in ("dl", "t", "s", "mf"))


@pytest.fixture(scope="module")
def server():
    with SampleImageServer() as srv:
        yield srv


@pytest.mark.parametrize("index_name", [None, "key"])
def test_option1_file_goes_through_download_arrange_and_subsets(spark, server, tmp_path, index_name):
    """Seed Option 1, one command a step: the published file as it is, no conversion."""
    from jobs.laionet_arrange import ArrangeConfig
    from jobs.laionet_arrange import run as arrange
    from jobs.laionet_download import DownloadConfig
    from jobs.laionet_download import run as download
    from jobs.laionet_subsets import SubsetsConfig, run_subsets

    meta_path = str(tmp_path / "laionet_thresh07_success12.parquet")
    df = published(server.base_url, meta_path, index_name=index_name)
    ok = df[df.kind.isin(["img", "redirect"])]

    shards = str(tmp_path / "laionet-thresh07-data")
    report = download(spark, build_config(DownloadConfig, dict(
        metadata=meta_path, out=shards, number_sample_per_shard=6, thread_count=4, retries=0, timeout=2.0)))
    assert (report.read, report.kept) == (len(df), len(ok))
    assert sorted(os.listdir(tmp_path)) == ["laionet-thresh07-data", "laionet-thresh07-data.config.yaml",
                                            "laionet-thresh07-data.report.json", "laionet_thresh07_success12.parquet"]
    # every sample's json carries its row's LAION index; shards are cut in the file's row order
    first = pd.read_parquet(os.path.join(shards, "00000.parquet"))
    assert sorted(first.laion_index) == sorted(df.index[:6])

    target = tmp_path / "laionet"
    report = arrange(spark, build_config(ArrangeConfig, dict(
        shards=shards, metadata=meta_path, target=str(target), target_df=str(tmp_path / "laionet_thresh0.7.parquet"))))
    assert (report.kept, report.dropped) == (len(ok), {"not_downloaded": len(df) - len(ok)})
    arranged = sorted(os.path.relpath(os.path.join(d, f), target) for d, _, fs in os.walk(target) for f in fs)
    assert arranged == sorted(f"{r.wnid}/{li}.jpg" for li, r in ok.iterrows())  # img2dataset names all .jpg
    success = pd.read_parquet(tmp_path / f"laionet_thresh0.7_success{len(ok)}.parquet")
    assert success.laion_index.tolist() == sorted(ok.index)
    assert PANDAS_UNNAMED_INDEX not in success.columns and "key" not in success.columns

    # subsets on the published file itself (the seed's create_laionet_subsets.py --df ...)
    out = tmp_path / "subsets"
    report = run_subsets(spark, build_config(SubsetsConfig, dict(df=meta_path, out_dir=str(out), thresh=0.8,
                                                                 images_root=str(target))))
    above = df[df.text_to_name_def_wnid_similarity >= 0.8]
    tsv = pd.read_csv(out / f"laionet_thresh0.8_{len(above)}.tsv", sep="\t", keep_default_na=False)
    assert report.kept == len(above) == len(tsv)
    assert tsv.filepath.tolist() == [f"{target}/{above.wnid[li]}/{li}.jpg" for li in sorted(above.index)]
    assert tsv.caption.tolist() == [above.TEXT[li] for li in sorted(above.index)]
    # the TSV's paths of the downloaded rows are the arranged images
    assert {p for p in tsv.filepath if os.path.exists(p)} == \
        {f"{target}/{above.wnid[li]}/{li}.jpg" for li in above.index if li in ok.index}


def test_match_freq_and_t2t_subset_take_published_files(spark, tmp_path):
    from jobs.framework.base import execute
    from jobs.framework.config import build_config as build
    from jobs.laionet_match_freq import JOB as MATCH
    from jobs.laionet_t2t import T2TSubsetConfig, run_subset

    a, b = WNIDS[0], WNIDS[1]
    laionet = pd.DataFrame({"wnid": [a] * 4, "TEXT": ["w", "x", "y", "z"], "similarity": 0.5},
                           index=np.int64([40, 10, 30, 20]))
    t2t = pd.DataFrame({"wnid": [b] * 3, "TEXT": ["p", "q", "r"]}, index=pd.Index(np.int64([7, 5, 6]), name="idx"))
    laionet.to_parquet(tmp_path / "laionet.parquet")
    t2t.to_parquet(tmp_path / "t2t.parquet")
    caps = [{"filename": f"{w}_{i}.JPEG", "title": "t", "tags": [], "description": ""}
            for w, n in ((a, 2), (b, 2)) for i in range(n)]
    (tmp_path / "caps.json").write_text(json.dumps(caps))
    assert execute(MATCH, ["--df", str(tmp_path / "laionet.parquet"), "--t2t-df", str(tmp_path / "t2t.parquet"),
                           "--captions-df", str(tmp_path / "caps.json"), "--out-dir", str(tmp_path / "mf"),
                           "--laionet-root", "/l", "--t2t-root", "/t"]) == 0
    twin = pd.read_parquet(tmp_path / "mf" / "laionet_match_incaps_4.parquet")
    got = dict(zip(twin.laion_index, twin["from"]))
    assert len(got) == 4 and {i for i, f in got.items() if f == "laionet"} <= {10, 20, 30, 40}
    assert {i for i, f in got.items() if f == "laionet-t2t"} <= {5, 6, 7}
    assert all(p == f"/{'l' if f == 'laionet' else 't'}/{w}/{i}.jpg"
               for p, f, w, i in zip(twin.filepath, twin["from"], twin.wnid, twin.laion_index))

    # t2t-subset: --laion as a published file holding the retrieved rows (with a wnid column
    # of its own: the assignment's wnid wins)
    search = pd.DataFrame({"filename": [f"{b}_0.JPEG", f"{b}_1.JPEG", f"{a}_1.JPEG"], "wnid": [b, b, a],
                           "rank": [1, 1, 1], "laion_index": np.int64([5, 6, 7]),
                           "similarity": np.float32([0.9, 0.8, 0.7])})
    search.to_parquet(tmp_path / "search.parquet", index=False)
    pool = pd.DataFrame({"URL": ["u5", "u6", "u7", "u8"], "TEXT": ["p", "q", "r", "s"], "wnid": ["n0"] * 4},
                        index=np.int64([5, 6, 7, 8]))
    pool.to_parquet(tmp_path / "pool.parquet")
    report = run_subset(spark, build(T2TSubsetConfig, dict(search=str(tmp_path / "search.parquet"),
                                                           laion=str(tmp_path / "pool.parquet"),
                                                           out=str(tmp_path / "t2t-subset"))))
    out = pd.read_parquet(tmp_path / "t2t-subset").sort_values("laion_index")
    assert report.kept == 3 and out.laion_index.tolist() == [5, 6, 7]
    assert out.URL.tolist() == ["u5", "u6", "u7"] and out.wnid.tolist() == [b, b, a]

"""`curate laionet download`: img2dataset's pyspark distributor on local[2] against 127.0.0.1."""
from __future__ import annotations

import glob

import io

import json

import os

import tarfile

import pandas as pd

import pytest

from curation.errors import ConfigError, InputError


from jobs.framework.config import build_config

from jobs.laionet_arrange import ArrangeConfig

from jobs.laionet_arrange import run as arrange

from jobs.laionet_download import DownloadConfig, run, stats_report

from tests.support.download import laion_metadata

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # before the session's workers start



REASONS = {"404": "HTTP Error 404: Not Found", "timeout": "timed out",
           "text": "Image decoding error", "noai": "Use of image disallowed by X-Robots-Tag directive"}


def read_samples(out: str) -> dict:
    """{laion_index: (json meta, image bytes)} over every tar; asserts no laion_index twice."""
    samples = {}
    for tar in sorted(glob.glob(os.path.join(out, "*.tar"))):
        with tarfile.open(tar) as tf:
            members = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}
        for name, data in members.items():
            if name.endswith(".json"):
                meta = json.loads(data)
                assert meta["laion_index"] not in samples
                samples[meta["laion_index"]] = (meta, members[name[:-5] + ".jpg"])
    return samples


def config(**kw) -> DownloadConfig:
    values = dict(number_sample_per_shard=10, thread_count=8, retries=0, timeout=0.5)
    values.update(kw)
    return build_config(DownloadConfig, values)


def test_download_spark_mode_reports_every_row(spark, server, tmp_path):
    meta = laion_metadata(server.base_url, str(tmp_path / "laionet.parquet"))
    out = str(tmp_path / "shards")
    server.hits.clear()
    report = run(spark, config(metadata=str(tmp_path / "laionet.parquet"), out=out))

    ok = meta[meta.kind.isin(["img", "redirect", "huge"])]
    assert report.read == len(meta) == report.kept + report.n_dropped
    assert report.kept == len(ok)
    assert report.dropped == {REASONS[k]: int((meta.kind == k).sum()) for k in REASONS}
    assert json.load(open(out + ".report.json"))["kept"] == len(ok)
    assert sorted(os.path.basename(p) for p in glob.glob(out + "/*_stats.json")) == \
        [f"{i:05d}_stats.json" for i in range(4)]

    samples = read_samples(out)
    assert sorted(samples) == sorted(ok.laion_index)
    from PIL import Image
    for row in ok.itertuples():
        m, img = samples[row.laion_index]
        assert (m["wnid"], m["url"], m["status"]) == (row.wnid, row.URL, "success")
        size = Image.open(io.BytesIO(img)).size
        assert min(size) <= 256 if row.kind == "huge" else min(size) >= 48
    # every served image was fetched exactly once (retries=0, no shard ran twice)
    img_paths = [p for p in server.hits if p.startswith("/img/")]
    assert len(img_paths) == int(meta.kind.isin(["img", "redirect"]).sum())
    assert set(server.hits[p] for p in img_paths) == {1}

    # and arrange puts each downloaded image, byte for byte, at <wnid>/<laion_index>.jpg
    report = arrange(spark, build_config(ArrangeConfig, dict(
        shards=out, metadata=str(tmp_path / "laionet.parquet"), target=str(tmp_path / "laionet"))))
    assert (report.kept, report.dropped) == (len(ok), {"not_downloaded": len(meta) - len(ok)})
    for row in ok.itertuples():
        assert open(tmp_path / "laionet" / row.wnid / f"{row.laion_index}.jpg", "rb").read() == samples[row.laion_index][1]
    assert len(pd.read_parquet(tmp_path / f"laionet_success{len(ok)}.parquet")) == len(ok)


def test_download_resumes_shard_by_shard(spark, server, tmp_path):
    laion_metadata(server.base_url, str(tmp_path / "m.parquet"))
    out = str(tmp_path / "shards")
    cfg = config(metadata=str(tmp_path / "m.parquet"), out=out)
    first = run(spark, cfg)
    # a shard cut off mid-way has a tar but no stats file yet
    os.remove(os.path.join(out, "00002_stats.json"))
    with open(os.path.join(out, "00002.tar"), "r+b") as fh:
        fh.truncate(1000)
    server.hits.clear()
    second = run(spark, cfg)
    assert second.to_dict() == first.to_dict()
    # only shard 2's rows were requested again (a redirect is two requests for one key)
    assert len({p.rsplit("/", 1)[1] for p in server.hits}) == 10
    assert len(read_samples(out)) == first.kept


def test_large_metadata_file_reaches_img2dataset_in_whole_shard_pieces(spark, server, tmp_path, monkeypatch, capfd):
    """A file over MAX_ROWS_PER_FILE is copied in pieces of whole shards: the driver holds one
    piece at a time, and the shards are those of the file itself (ids, rows, order)."""
    import jobs.laionet_download as dl

    meta = laion_metadata(server.base_url, str(tmp_path / "big.parquet"))
    cfg = config(metadata=str(tmp_path / "big.parquet"), out=str(tmp_path / "shards"), timeout=0.2)
    pieces = dl.copy_for_img2dataset(cfg, "laion_index", str(tmp_path / "pieces"), max_rows=25)
    assert sorted(os.listdir(pieces)) == ["00000-00000.parquet", "00000-00001.parquet"]  # 20 + 15 rows
    assert [len(pd.read_parquet(os.path.join(pieces, f))) for f in sorted(os.listdir(pieces))] == [20, len(meta) - 20]

    monkeypatch.setattr(dl, "MAX_ROWS_PER_FILE", 15)  # 35 rows: pieces of 10
    report = run(spark, cfg)
    out = capfd.readouterr().out
    assert "reads a copy in pieces of whole shards" in out and "Sharding file number 4 of 4" in out
    assert report.read == len(meta) == report.kept + report.n_dropped
    assert not glob.glob(str(tmp_path / "shards.__input-*"))  # the copy is removed
    for k in range(4):  # shard k holds rows 10k .. 10k+9 of the file, as without pieces
        shard = pd.read_parquet(tmp_path / "shards" / f"{k:05d}.parquet")
        assert sorted(shard["laion_index"]) == sorted(meta["laion_index"][10 * k:10 * k + 10])


def test_stats_report_counts_missing_shards_and_capped_reasons():
    stats = [{"count": 10, "successes": 7, "status_dict": {"success": 7, "timed out": 2}}]
    r = stats_report(stats, attempted=25)
    assert (r.read, r.kept, r.dropped) == (25, 7, {"timed out": 2, "other_failure": 1,
                                                   "shard_not_downloaded": 15})
    with pytest.raises(InputError, match="another metadata"):
        stats_report(stats, attempted=5)
    many = [{"count": 60, "successes": 0, "status_dict": {f"error {i}": 1 for i in range(60)}}]
    r = stats_report(many, attempted=60)
    assert len(r.dropped) == 51 and r.dropped["other_failure"] == 10 and r.read == r.kept + r.n_dropped


def test_bad_config_and_metadata_are_one_line_errors(spark, tmp_path):
    with pytest.raises(ConfigError, match="img2dataset.output_folder"):
        config(metadata="m", out="o", img2dataset={"output_folder": "x"})
    with pytest.raises(ConfigError, match="img2dataset.no_such_option"):
        config(metadata="m", out="o", img2dataset={"no_such_option": 1})
    pd.DataFrame({"URL": ["u"], "TEXT": ["t"], "laion_index": [1]}).to_parquet(tmp_path / "m.parquet")
    with pytest.raises(InputError, match="missing column 'NSFW'"):
        run(spark, config(metadata=str(tmp_path / "m.parquet"), out=str(tmp_path / "o")))
    with pytest.raises(InputError, match="metadata not found"):
        run(spark, config(metadata=str(tmp_path / "nope.parquet"), out=str(tmp_path / "o")))


def test_laionet_run_wires_download_and_arrange():
    from jobs.laionet_run import RunConfig, stage_config, stage_named

    cfg = build_config(RunConfig, dict(laion="parts", work_dir="w", retries=1, timeout=2.0, images=False,
                                       stages=["filter", "download", "arrange"]))
    dl = stage_named("download")
    d = stage_config(cfg, dl, dl.resolve_job())
    assert (d.metadata, d.out, d.retries, d.timeout) == ("w/filter", "w/download", 1, 2.0)
    ar = stage_named("arrange")
    a = stage_config(cfg, ar, ar.resolve_job())
    assert (a.shards, a.metadata, a.target, a.images, a.success_df_stem()) == \
        ("w/download", "w/filter", "w/arrange", False, "w/arrange.parquet")
    assert RunConfig.__dataclass_fields__["stages"].default_factory() == ["label", "subset", "similarity", "filter"]


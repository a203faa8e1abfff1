"""`curate laionet arrange`: rules on plain Python, the job on the local[2] session."""
from __future__ import annotations

import io

import json

import os


import tarfile


import numpy as np

import pandas as pd

import pytest

from curation.arrange import sniff_image

from curation.errors import ConfigError, InputError

from curation.samples.images import generate_image

from jobs.framework.config import build_config

from jobs.laionet_arrange import ArrangeConfig, read_index, run

from udfs.arrange import STAGING, TreeWriter, arrange_shard

from tests.support import CONF

from tests.support.arrange import _encoded, add, png_bomb, sample

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")



WNIDS = ["n01440764", "n02102040", "n03028079"]


@pytest.fixture
def dataset(tmp_path):
    """Three shards + metadata; returns (paths, {relpath: bytes expected in the tree}, reasons)."""
    shards = tmp_path / "shards"
    shards.mkdir()
    rows, expected = [], {}

    def row(i, wnid=None):
        li = 500_000_000 + 11 * i
        rows.append(dict(URL=f"http://127.0.0.1/img/k{i}.jpg", TEXT=f"t{i}", laion_index=li,
                         wnid=wnid or WNIDS[i % 3], NSFW="UNLIKELY", LICENSE="?", similarity=0.3))
        return li

    def good(tf, i, key):
        li, img = row(i), generate_image(f"k{i}", "jpg")
        sample(tf, key, li, img, WNIDS[i % 3])
        expected[f"{WNIDS[i % 3]}/{li}.jpg"] = img

    with tarfile.open(shards / "00000.tar", "w") as tf:
        for i in range(6):
            good(tf, i, f"{i:09d}")
        sample(tf, "000000006", row(6, wnid="../n01440764"), generate_image("x", "jpg"))  # invalid wnid
        sample(tf, "000000007", row(7, wnid="n01440764/.."), generate_image("y", "jpg"))  # invalid wnid
    with tarfile.open(shards / "00001.tar", "w") as tf:
        good(tf, 10, "000010000")
        sample(tf, "000010001", row(11), b"<html>not an image</html>")
        sample(tf, "000010002", row(12), png_bomb())
        sample(tf, "000010003", 999, generate_image("z", "jpg"))  # laion_index not in the metadata
        add(tf, "../escape.jpg", generate_image("e", "jpg"))
        add(tf, "/abs.jpg", generate_image("a", "jpg"))
        add(tf, "000010004.jpg", b"", kind=tarfile.SYMTYPE, linkname="/etc/passwd")
        sample(tf, "000010005", row(15), None)  # json but no image
        good(tf, 16, "000010006")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for i in range(20, 26):
            good(tf, i, f"{i:09d}")
    data = buf.getvalue()
    cut = data.index(b"000000024.json")  # the 5th sample's json header: samples 20..23 are whole
    (shards / "00002.tar").write_bytes(data[:cut + 100])
    for i in (24, 25):
        del expected[f"{WNIDS[i % 3]}/{500_000_000 + 11 * i}.jpg"]
    row(30)  # never downloaded
    pd.DataFrame(rows).to_parquet(tmp_path / "meta.parquet", index=False)
    reasons = {"invalid_wnid": 2, "not_an_image": 1, "decompression_bomb": 1, "no_image": 1,
               "not_downloaded": 3}
    return tmp_path, expected, reasons


def cfg_for(root, **kw) -> ArrangeConfig:
    values = dict(shards=str(root / "shards"), metadata=str(root / "meta.parquet"),
                  target=str(root / "laionet"), target_df=str(root / "laionet_thresh0.7.parquet"))
    values.update(kw)
    return build_config(ArrangeConfig, values)


def tree(target) -> dict:
    found = {}
    for folder, _, files in os.walk(target):
        for f in files:
            path = os.path.join(folder, f)
            found[os.path.relpath(path, target)] = open(path, "rb").read()
    return found


def test_arrange_writes_each_image_once_and_reports_the_rest(spark, dataset):
    root, expected, reasons = dataset
    report = run(spark, cfg_for(root))

    assert tree(root / "laionet") == expected  # exact bytes; nothing else, no staging leftovers
    assert sorted(p for p in os.listdir(root) if not p.startswith(".")) == ["laionet", "laionet.config.yaml", "laionet.report.json",
                                        "laionet_thresh0.7_success12.parquet", "meta.parquet", "shards"]
    assert (report.read, report.kept, report.dropped) == (20, 12, reasons)
    assert report.info["corrupt_shards"] == ["00002.tar"]
    st = report.info["sample_statuses"]
    assert (st["written"], st["not_in_metadata"], st["unsafe_member_name"], st["unsafe_member_type"]) == (12, 1, 2, 1)
    out = pd.read_parquet(root / "laionet_thresh0.7_success12.parquet")
    meta = pd.read_parquet(root / "meta.parquet")
    assert list(out.columns) == list(meta.columns)
    want = sorted(int(p.split("/")[1][:-4]) for p in expected)
    assert out.laion_index.tolist() == want
    assert json.load(open(root / "laionet_thresh0.7_success12.parquet" / "_report.json"))["kept"] == 12

    # a second run writes nothing and gives the same metadata
    mtimes = {p: os.stat(root / "laionet" / p).st_mtime_ns for p in expected}
    again = run(spark, cfg_for(root))
    assert again.info["sample_statuses"]["present"] == 12 and "written" not in again.info["sample_statuses"]
    assert {p: os.stat(root / "laionet" / p).st_mtime_ns for p in expected} == mtimes
    assert (again.read, again.kept, again.dropped) == (20, 12, reasons)
    pd.testing.assert_frame_equal(pd.read_parquet(root / "laionet_thresh0.7_success12.parquet"), out)


def test_rerun_after_a_crash_completes_the_tree(spark, dataset):
    root, expected, _ = dataset
    target = root / "laionet"
    # what a killed run leaves: one shard fully arranged, another half-way, staging files
    _, index = read_index(spark, str(root / "meta.parquet"))
    list(arrange_shard(str(root / "shards" / "00000.tar"), index, str(target), 10 ** 8))
    records = arrange_shard(str(root / "shards" / "00001.tar"), index, str(target), 10 ** 8)
    next(records)
    records.close()
    killed = TreeWriter(str(target))  # a writer killed half-way through a file
    partial = target / "n01440764" / f"500000000.jpg.__tmp-{killed.tag}"
    partial.write_bytes(b"\xff\xd8 truncated")
    assert 0 < len(tree(target)) < len(expected) + 1

    report = run(spark, cfg_for(root))
    assert tree(target) == expected and not (target / STAGING).exists()
    assert report.kept == 12 and report.info["sample_statuses"]["written"] == 12 - 7
    assert report.info["partial_files_removed"] == 1


def test_no_images_writes_only_the_success_metadata(spark, dataset):
    root, expected, reasons = dataset
    report = run(spark, cfg_for(root, target=None, images=False))
    assert not (root / "laionet").exists()
    assert (report.kept, report.dropped) == (12, reasons)
    assert len(pd.read_parquet(root / "laionet_thresh0.7_success12.parquet")) == 12


def test_bad_inputs_are_one_line_errors(spark, tmp_path, dataset):
    root, _, _ = dataset
    with pytest.raises(ConfigError, match="target_df"):
        cfg_for(root, target_df=str(root / "x.tsv"))
    with pytest.raises(ConfigError, match="target"):
        cfg_for(root, target=None)
    with pytest.raises(ConfigError, match="target_df"):
        cfg_for(root, target=None, target_df=None, images=False)
    assert cfg_for(root, target_df=None).success_df_stem() == str(root / "laionet.parquet")
    with pytest.raises(InputError, match="no .tar files"):
        run(spark, cfg_for(root, shards=str(root)))
    pd.DataFrame({"laion_index": [1, 1], "wnid": WNIDS[:2]}).to_parquet(tmp_path / "dup.parquet")
    with pytest.raises(InputError, match="laion_index 1 appears more than once"):
        run(spark, cfg_for(root, metadata=str(tmp_path / "dup.parquet")))
    pd.DataFrame({"laion_index": [1]}).to_parquet(tmp_path / "nownid.parquet")
    with pytest.raises(InputError, match="missing column 'wnid'"):
        run(spark, cfg_for(root, metadata=str(tmp_path / "nownid.parquet")))


@pytest.fixture
def mixed_shard(tmp_path):
    """One tar of images in many modes/formats (members named .jpg or by format, as tars
    may be), one that is cut after its header (sniffing passes, decoding fails)."""
    (tmp_path / "shards").mkdir()
    images = {
        "rgb_jpeg": ("jpg", _encoded("RGB", "JPEG", 1, quality=95)),
        "grey_jpeg": ("jpg", _encoded("L", "JPEG", 2)),
        "cmyk_jpeg": ("jpg", _encoded("CMYK", "JPEG", 3)),
        "rgba_png": ("png", _encoded("RGBA", "PNG", 4)),
        "palette_png": ("jpg", _encoded("P", "PNG", 5)),
        "la_png": ("png", _encoded("LA", "PNG", 6)),
        "webp": ("webp", _encoded("RGB", "WEBP", 7)),
        "progressive": ("jpg", _encoded("RGB", "JPEG", 8, progressive=True, size=(300, 200))),
    }
    whole = _encoded("RGB", "JPEG", 9, size=(300, 200))
    truncated = whole[:len(whole) // 2]
    assert sniff_image(truncated) == ("JPEG", 300, 200)  # the header is whole
    rows = []
    with tarfile.open(tmp_path / "shards" / "00000.tar", "w") as tf:
        for i, (name, (ext, data)) in enumerate(list(images.items()) + [("truncated", ("jpg", truncated))]):
            li = 700_000_000 + 3 * i
            add(tf, f"{i:09d}.{ext}", data)
            add(tf, f"{i:09d}.json", json.dumps({"laion_index": li}).encode())
            rows.append(dict(laion_index=li, wnid=WNIDS[i % 3], name=name, data=data))
    meta = pd.DataFrame(rows)
    meta[["laion_index", "wnid", "name"]].to_parquet(tmp_path / "meta.parquet", index=False)
    return tmp_path, meta


def test_reencode_writes_what_pil_convert_rgb_save_writes(spark, mixed_shard):
    from PIL import Image

    root, meta = mixed_shard
    report = run(spark, cfg_for(root, reencode=True))
    good = meta[meta.name != "truncated"]
    assert (report.read, report.kept, report.dropped) == (len(meta), len(good), {"decode_error": 1})
    assert report.info["sample_statuses"] == {"decode_error": 1, "written": len(good)}
    ref = root / "reference"
    ref.mkdir()
    found = tree(root / "laionet")
    assert sorted(found) == sorted(f"{r.wnid}/{r.laion_index}.jpg" for r in good.itertuples())
    for r in good.itertuples():
        # what clip-beyond-tail arrange_laionet.py does: decode to RGB ("pilrgb"), image.save(path)
        Image.open(io.BytesIO(r.data)).convert("RGB").save(ref / f"{r.laion_index}.jpg")
        want = (ref / f"{r.laion_index}.jpg").read_bytes()
        got = found[f"{r.wnid}/{r.laion_index}.jpg"]
        assert got == want, r.name
        ours, theirs = Image.open(io.BytesIO(got)), Image.open(ref / f"{r.laion_index}.jpg")
        assert (ours.format, ours.mode) == ("JPEG", "RGB")
        assert np.array_equal(np.asarray(ours), np.asarray(theirs)), r.name
        if r.name != "rgb_jpeg":  # only a JPEG could come out the same: these are new bytes
            assert got != r.data
    assert pd.read_parquet(root / f"laionet_thresh0.7_success{len(good)}.parquet").laion_index.tolist() == \
        sorted(good.laion_index)

    # a re-run decodes nothing it has written; --no-images --reencode decides the same rows
    again = run(spark, cfg_for(root, reencode=True))
    assert again.info["sample_statuses"] == {"decode_error": 1, "present": len(good)}
    check = run(spark, cfg_for(root, reencode=True, images=False, target=None,
                               target_df=str(root / "check.parquet")))
    assert (check.kept, check.dropped) == (len(good), {"decode_error": 1})
    # the default keeps the downloaded bytes (and counts the undecodable image as arranged)
    plain = run(spark, cfg_for(root, target=str(root / "plain"), target_df=str(root / "plain.parquet")))
    assert plain.kept == len(meta) and plain.dropped == {}
    assert tree(root / "plain")[f"{meta.wnid[0]}/{meta.laion_index[0]}.jpg"] == meta.data[0]


def test_study_presets_reencode():
    from jobs.framework.config import load_yaml
    from jobs.laionet_run import RunConfig, stage_config, stage_named

    conf = os.path.join(CONF, "laionet")
    preset = load_yaml(os.path.join(conf, "arrange.yaml"))
    cfg = build_config(ArrangeConfig, dict(preset, shards="s", metadata="m", target="t"))
    assert cfg.reencode is True and cfg.images is True
    assert build_config(ArrangeConfig, dict(shards="s", metadata="m", target="t")).reencode is False
    run_cfg = build_config(RunConfig, dict(load_yaml(os.path.join(conf, "thresh0.7.yaml")), laion="p", work_dir="w",
                                           stages=["filter", "download", "arrange"]))
    stage = stage_named("arrange")
    assert stage_config(run_cfg, stage, stage.resolve_job()).reencode is True


def test_hostile_wnids_and_indices_write_nothing_outside_the_target(spark, tmp_path):
    """Values from the metadata and the tars never become paths unchecked: each hostile
    row is dropped with a counted reason and only the one good image is written."""
    from jobs.io import output

    shards = tmp_path / "shards"
    shards.mkdir()
    img = generate_image("h", "jpg")
    hostile = {"../../n01440764": 1, "/tmp/n01440764": 2, "n01440764\x00": 3, "n" + "1" * 300: 4,
               "..": 5, "n01440764/../..": 6}
    rows = [dict(laion_index=li, wnid=w) for w, li in hostile.items()]
    rows += [dict(laion_index=-3, wnid=WNIDS[0]), dict(laion_index=10, wnid=WNIDS[1])]
    with tarfile.open(shards / "00000.tar", "w") as tf:
        for i, li in enumerate(list(hostile.values()) + [-3, "../../x", 2 ** 70, 10]):
            sample(tf, f"{i:09d}", li, img)
        add(tf, "x" * 300 + ".jpg", img)  # beyond the name limit
        add(tf, "a\x01b.jpg", img)
    pd.DataFrame(rows).to_parquet(tmp_path / "meta.parquet", index=False)
    outside = {p for p in os.listdir(tmp_path)}
    cfg = cfg_for(tmp_path)
    with output.guarded(cfg):
        report = run(spark, cfg)
    assert tree(tmp_path / "laionet") == {f"{WNIDS[1]}/10.jpg": img}
    assert (report.read, report.kept) == (8, 1)
    assert report.dropped == {"invalid_wnid": 6, "bad_laion_index": 1}
    assert report.info["sample_statuses"]["no_laion_index"] == 1
    assert report.info["sample_statuses"]["not_in_metadata"] == 1
    assert report.info["sample_statuses"]["unsafe_member_name"] == 2
    assert set(os.listdir(tmp_path)) - outside == {"laionet", "laionet.config.yaml", "laionet.report.json",
                                                   "laionet_thresh0.7_success1.parquet"}


def test_success_metadata_never_replaces_a_users_file_or_the_input(spark, dataset, capsys):
    """`<stem>_success<N>.parquet` is known only after the tasks: a file of that name that
    this job did not write (the authors' published one) is refused before any rename, and
    so is a name equal to --metadata; --overwrite replaces a foreign one."""
    from curation.errors import InputError
    from jobs.io import output

    root, expected, _ = dataset
    theirs = root / "laionet_thresh0.7_success12.parquet"
    theirs.write_bytes(b"the authors' parquet")
    cfg = cfg_for(root)
    with output.guarded(cfg, name="laionet arrange"):
        with pytest.raises(InputError, match=r"success12.parquet exists and was not written by `curate laionet arrange`"):
            run(spark, cfg)
    assert theirs.read_bytes() == b"the authors' parquet"

    meta = root / "meta_success12.parquet"
    os.rename(root / "meta.parquet", meta)
    same = cfg_for(root, metadata=str(meta), target_df=str(root / "meta.parquet"))
    with output.guarded(same):
        with pytest.raises(InputError, match=r"is input --metadata"):
            run(spark, same)
    assert len(pd.read_parquet(meta)) == 20

    with output.guarded(cfg, overwrite=True):
        run(spark, cfg_for(root, metadata=str(meta)))
    assert len(pd.read_parquet(theirs)) == 12 and tree(root / "laionet") == expected


"""`curate laionet arrange`: rules on plain Python, the job on the local[2] session."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest

from curation.arrange import (STATUS_CODE, Rejected, WnidIndex, header_size,
                              image_relpath, row_outcomes, sniff_image,
                              split_member_name, success_name)
from curation.samples.images import generate_image
from tests.support.arrange import _encoded, png_bomb

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def test_rules_reject_paths_outside_the_target_and_bad_images():
    assert image_relpath("n01440764", 12, "jpg") == "n01440764/12.jpg"
    for wnid in ("../n01440764", "n01440764/..", "/n01440764", "n0144076", "n014407640", None, "N01440764"):
        with pytest.raises(Rejected, match="invalid_wnid"):
            image_relpath(wnid, 1, "jpg")
    for li in ("12", -1, True, 1.5):
        with pytest.raises(Rejected, match="bad_laion_index"):
            image_relpath("n01440764", li, "jpg")
    for name in ("../x.jpg", "/x.jpg", "a/b.jpg", ".x.jpg", "x", "a\\b.jpg"):
        with pytest.raises(Rejected, match="unsafe_member_name"):
            split_member_name(name)
    assert split_member_name("000010003.JPG") == ("000010003", "jpg")
    assert sniff_image(generate_image("k", "webp"))[0] == "WEBP"
    with pytest.raises(Rejected, match="not_an_image"):
        sniff_image(b"<html></html>")
    with pytest.raises(Rejected, match="decompression_bomb"):
        sniff_image(png_bomb(12_000))
    with pytest.raises(Rejected, match="decompression_bomb"):
        sniff_image(generate_image("k", "png"), max_pixels=100)
    assert success_name("a/laionet_thresh0.7.parquet", 12) == "a/laionet_thresh0.7_success12.parquet"
    index = WnidIndex([30, 10, 20], ["n2", "n1", "n2"])
    assert [index.wnid_of(i) for i in (10, 20, 30, 15)] == ["n1", "n2", "n2", None]
    with pytest.raises(ValueError, match="laion_index 10"):
        WnidIndex([10, 10], ["n1", "n2"])


def test_row_outcomes_decide_each_metadata_row_from_its_samples():
    index = WnidIndex([50, 10, 20, 30, 40, 60], ["n00000005", "n00000001", "n00000002", "n00000003",
                                                 "../n00000004", None])
    samples = [(10, "written"), (10, "not_an_image"),  # one good sample is enough
               (20, "not_an_image"), (20, "decompression_bomb"),  # first failure by name
               (40, "invalid_wnid"), (60, "invalid_wnid"),  # wnids that cannot name a folder
               (30, "present"), (30, "present"), (999, "not_in_metadata")]  # 50: not downloaded
    ids, codes = zip(*((li, STATUS_CODE[st]) for li, st in samples))
    rows = row_outcomes(index, np.array(ids), np.array(codes, dtype=np.int8))
    assert rows.kept_laion_index(index).tolist() == [10, 30]
    assert rows.reasons == {"decompression_bomb": 1, "invalid_wnid": 2, "not_downloaded": 1}
    assert rows.several == 3
    # the order of the samples does not matter; no samples at all: nothing downloaded
    again = row_outcomes(index, np.array(ids[::-1]), np.array(codes[::-1], dtype=np.int8))
    assert (again.kept == rows.kept).all() and again.reasons == rows.reasons
    empty = row_outcomes(index, np.zeros(0, np.int64), np.zeros(0, np.int8))
    assert (empty.kept.sum(), empty.reasons) == (0, {"invalid_wnid": 2, "not_downloaded": 4})


def test_header_sizes_agree_with_pillow():
    from PIL import Image

    blobs = [generate_image(f"h{i}", ext) for i in range(40) for ext in ("jpg", "png", "webp")]
    for mode, fmt, kw in (("RGBA", "WEBP", {}), ("RGB", "WEBP", {"lossless": True}),
                          ("RGB", "JPEG", {"progressive": True}), ("L", "PNG", {}), ("RGB", "GIF", {})):
        buf = io.BytesIO()
        Image.new(mode, (123, 45)).save(buf, format=fmt, **kw)
        blobs.append(buf.getvalue())
    for data in blobs:
        img = Image.open(io.BytesIO(data))
        assert sniff_image(data) == (img.format, *img.size)
    assert header_size(blobs[-1]) is None  # GIF: Pillow's answer
    with pytest.raises(Rejected, match="not_an_image"):
        sniff_image(b"\xff\xd8\xff\xe0 truncated")


def test_decode_rules_name_the_reason():
    from curation.arrange import decode_rgb, reencode_jpeg

    with pytest.raises(Rejected, match="decode_error"):
        decode_rgb(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(Rejected, match="decode_error"):
        decode_rgb(b"<html></html>")
    data = _encoded("RGBA", "PNG", 11)
    assert reencode_jpeg(data)[:2] == b"\xff\xd8" and decode_rgb(data).mode == "RGB"

"""The sample-image generator and its 127.0.0.1 HTTP server (no Spark)."""
from __future__ import annotations

import io


import threading

import time

import urllib.error

import urllib.request

import pytest

from PIL import Image

from curation.samples.images import (SampleImageServer, generate_image, image_size, parse_sample_path,
                                    sample_url, serve_sample_images)

from tests.support.sample_images import get


def test_images_are_a_function_of_key_and_format():
    for ext, fmt in (("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")):
        data = generate_image("k7", ext)
        generate_image.cache_clear()
        assert generate_image("k7", ext) == data
        img = Image.open(io.BytesIO(data))
        assert (img.format, img.size) == (fmt, image_size("k7"))
    assert generate_image("k7") != generate_image("k8")
    sizes = {image_size(f"k{i}") for i in range(200)}
    assert len(sizes) > 150 and all(48 <= s <= 367 for wh in sizes for s in wh)
    assert parse_sample_path("/img/k-1.2_x.webp?x=1") == ("img", "k-1.2_x", "webp")
    assert parse_sample_path("/img/../etc.jpg") is None and parse_sample_path("/nope/k.jpg") is None
    with pytest.raises(ValueError, match="unknown sample-image kind"):
        sample_url("http://h", "ftp", "k")


def test_server_answers_every_kind():
    with SampleImageServer(stall_seconds=0.6, huge_side=1000) as srv:
        base = srv.base_url
        assert base.startswith("http://127.0.0.1:")
        status, headers, body, _ = get(sample_url(base, "img", "a", "png"))
        assert (status, headers["Content-Type"], body) == (200, "image/png", generate_image("a", "png"))
        status, _, body, final = get(sample_url(base, "redirect", "a", "png"))
        assert (status, body, final) == (200, generate_image("a", "png"), sample_url(base, "img", "a", "png"))
        _, headers, body, _ = get(sample_url(base, "noai", "b"))
        assert headers["X-Robots-Tag"] == "noai" and body == generate_image("b")
        _, headers, body, _ = get(sample_url(base, "text", "c"))
        assert headers["Content-Type"] == "image/jpeg" and not body.startswith(b"\xff\xd8")
        _, _, body, _ = get(sample_url(base, "huge", "d", "png"))
        assert Image.open(io.BytesIO(body)).size == (1000, 1000) and len(body) < 100_000
        for kind, code in (("404", 404), ("img", 400)):
            with pytest.raises(urllib.error.HTTPError) as e:
                get(f"{base}/{kind}/x.{'jpg' if kind == '404' else 'gif'}")
            assert e.value.code == code
        t0 = time.monotonic()
        with pytest.raises(OSError, match="timed out"):
            get(sample_url(base, "timeout", "e"), timeout=0.2)
        assert time.monotonic() - t0 < 0.6
        assert srv.hits["/img/a.png"] == 2 and srv.hits["/redirect/a.png"] == 1


def test_stop_does_not_wait_for_stalled_requests():
    errors = []
    with serve_sample_images(stall_seconds=30) as base:
        t = threading.Thread(target=lambda: errors.append(_fails(sample_url(base, "timeout", "k"))))
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 5
    t.join(10)
    assert errors == [True]


def _fails(url: str) -> bool:
    try:
        get(url, timeout=20)
    except OSError:
        return True
    return False


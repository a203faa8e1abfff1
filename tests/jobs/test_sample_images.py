"""The sample-image generator and its 127.0.0.1 HTTP server (no Spark)."""
from __future__ import annotations

import subprocess

from curation.samples.images import generate_image, sample_url
from tests.support.sample_images import get


def test_images_server_command(curate_cmd):
    proc = subprocess.Popen(curate_cmd + ["sample-data", "images-server", "--seconds", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = proc.stdout.readline().strip()
        assert get(sample_url(base, "img", "z"))[2] == generate_image("z")
    finally:
        proc.terminate()
        proc.wait(20)

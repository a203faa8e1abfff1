"""Helpers and fixtures of the sample_images tests shared by more than one layer."""
from __future__ import annotations

import urllib.error
import urllib.request


def get(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, dict(r.headers), r.read(), r.url

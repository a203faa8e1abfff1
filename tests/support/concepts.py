"""Helpers and fixtures of the concepts tests shared by more than one layer."""
from __future__ import annotations

import json
import os


def _ref(reference_dir, name):
    return os.path.join(reference_dir, name)


def _json(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)

"""Helpers and fixtures of the framework tests shared by more than one layer."""
from __future__ import annotations

import os
import subprocess

import pandas as pd

from tests.support import REPO


def run_curate(curate_cmd, *args, env=None, timeout=300):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([*curate_cmd, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env=full_env)


def read_table(path):
    return pd.read_parquet(path).sort_values("label").reset_index(drop=True)

"""Helpers and fixtures of the similarity tests shared by more than one layer."""
from __future__ import annotations

import pytest

from tests.support.tiny_clip import write_tiny_clip


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    return write_tiny_clip(str(tmp_path_factory.mktemp("tiny_clip")))

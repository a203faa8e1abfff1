"""Helpers and fixtures of the match_freq tests shared by more than one layer."""
from __future__ import annotations

from curation.concepts import wnids

A, B, C = wnids()[:3]

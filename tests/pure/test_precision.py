"""Similarity numerics: the study presets score in fp32, and the precision bench's counting."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.support import REPO

sys.path.insert(0, REPO)


def test_decision_flips_counts_strict_threshold_crossings():
    from bench.bench_precision import decision_flips, precision_flips

    ref = np.array([0.10, 0.50, 0.70, 0.71, 0.70, 0.90])
    other = np.array([0.10, 0.71, 0.69, 0.71, 0.7000001, 0.69])
    # row 1 dropped -> kept, row 4 (0.7 is not > 0.7) dropped -> kept, row 5 kept -> dropped
    assert decision_flips(ref, other, 0.7) == 3
    assert decision_flips(ref, ref, 0.7) == 0
    r = precision_flips({"fp32": ref, "x": other}, quantile=0.5)
    assert r["fp32"]["flips"] == 0 and r["fp32"]["threshold"] == pytest.approx(np.median(ref))
    assert r["x"]["max_abs_delta"] == pytest.approx(0.21)


def test_tokenizer_cleanings_differ_only_where_open_clip_unescapes_again():
    import open_clip

    from bench.bench_precision import (open_clip_clean, open_clip_token_ids,
                                       original_clean, original_token_ids)

    tok = open_clip.get_tokenizer("ViT-B-32")
    same = ["Tom &amp; Jerry", "A  Photo\tof a\nDOG ", "Schöner Hund", "goldfish " * 100]
    for t in same:
        assert original_clean(t) == open_clip_clean(t)
        assert original_token_ids(tok, t) == open_clip_token_ids(tok, t)
    assert len(original_token_ids(tok, "goldfish " * 100)) == 77
    # ftfy leaves entities in text holding '<'; open_clip unescapes them anyway
    t = "<b>Sale</b> shoes &amp; bags"
    assert original_clean(t) == "<b>sale</b> shoes &amp; bags" and open_clip_clean(t) == "<b>sale</b> shoes & bags"
    assert original_token_ids(tok, t) != open_clip_token_ids(tok, t)
    # a literal <|endoftext|> is the special token for transformers only
    ids = original_token_ids(tok, "a <|endoftext|> b")
    assert ids.count(tok.eot_token_id) == 2 and open_clip_token_ids(tok, "a <|endoftext|> b").count(tok.eot_token_id) == 1

"""Similarity numerics: the study presets score in fp32, and the precision bench's counting."""
from __future__ import annotations

import sys

import numpy as np

from tests.support import REPO

sys.path.insert(0, REPO)


def test_precision_scores_of_a_tiny_clip(tiny_model):
    from bench.bench_precision import precision_flips, score_precisions
    from udfs.encoders import EncoderSpec, OpenClipTextEncoder

    spec = EncoderSpec(model=tiny_model[0], pretrained=tiny_model[1], batch_size=8)
    captions = [f"a photo of kit fox number {i}" + " in the desert" * (i % 4) for i in range(24)]
    queries = ["kit fox which is a small grey fox", "tench which is a freshwater fish"] * 12
    scores = score_precisions(lambda p: OpenClipTextEncoder(spec, "cpu", p), captions, queries,
                              precisions=("fp32", "bf16"))
    again = score_precisions(lambda p: OpenClipTextEncoder(spec, "cpu", p), captions, queries, precisions=("fp32",))
    np.testing.assert_array_equal(scores["fp32"], again["fp32"])  # deterministic reference
    delta = np.abs(scores["bf16"] - scores["fp32"])
    assert 0 < delta.max() < 0.05  # bf16 rounds (8-bit mantissa) but scores stay close
    r = precision_flips(scores)
    assert r["bf16"]["flips"] == int(np.sum((scores["fp32"] > r["bf16"]["threshold"])
                                            != (scores["bf16"] > r["bf16"]["threshold"])))
    assert r["bf16"]["flips"] <= r["bf16"]["within_max_delta"]  # only rows that close can flip

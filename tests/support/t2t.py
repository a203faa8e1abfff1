"""Helpers and fixtures of the t2t tests shared by more than one layer."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from curation.samples.incaps import generate_entries
from jobs.laionet_t2t import JOBS
from tests.jobs.test_knn import write_laion_parts
from tests.support.tiny_clip import write_tiny_clip

SEARCH, SUBSET = (next(j for j in JOBS if j.command[-1] == w) for w in ("t2t-search", "t2t-subset"))


WNIDS = ["n01440764", "n01443537", "n02085620", "n02110185"]


def sequential_greedy(search: pd.DataFrame) -> dict:
    """The original loop, written plainly: texts in filename order, each takes its
    best-ranked row that no earlier text took. {filename: (laion_index, wnid, similarity)}."""
    taken, out = set(), {}
    for filename, hits in search.sort_values(["filename", "rank"]).groupby("filename", sort=True):
        for row in hits.itertuples():
            if row.laion_index not in taken:
                taken.add(row.laion_index)
                out[filename] = (row.laion_index, row.wnid, row.similarity)
                break
    return out


def generated_search(rng, n_texts: int, k: int, pool: int) -> pd.DataFrame:
    """Search output for `n_texts` texts: each retrieves k distinct rows of a pool (fewer for
    some), rows shared between texts so that many texts compete for them."""
    rows = []
    for i in range(n_texts):
        wnid = WNIDS[i % len(WNIDS)]
        hits = rng.choice(pool, size=min(pool, int(rng.integers(0, k + 1))), replace=False)
        sims = np.sort(rng.random(len(hits)).astype(np.float32))[::-1]
        rows += [(f"{wnid}_{i:05d}.JPEG", wnid, r + 1, int(h) * 3 + 100_000_000, s)
                 for r, (h, s) in enumerate(zip(hits, sims))]
    return pd.DataFrame(rows, columns=["filename", "wnid", "rank", "laion_index", "similarity"])


# ---------------------------------------------------------------- the jobs
@pytest.fixture(scope="session")
def t2t_inputs(tmp_path_factory):
    """ImageNet-Captions json (4 classes), three LAION parts with blank captions, a tiny CLIP."""
    d = tmp_path_factory.mktemp("t2t")
    entries = generate_entries(WNIDS, per_class_max=6, seed=3)
    entries.append(dict(entries[0], title="duplicate filename"))
    entries.append({"filename": f"{WNIDS[0]}_99999.JPEG", "title": " ", "tags": [], "description": ""})
    caps = d / "imagenet_captions.json"
    caps.write_text(json.dumps(entries))
    words = ["tench fish", "goldfish bowl", "chihuahua dog", "husky snow", "photo", "river", "old city"]
    rng = np.random.default_rng(1)
    texts = {p: [None if i == 2 else "  " if i == 5 else " ".join(rng.choice(words, 3)) for i in range(n)]
             for p, n in {0: 23, 1: 17, 4: 12}.items()}
    texts[1][3] = texts[1][4] = texts[0][0]  # duplicate captions: exact ties
    write_laion_parts(str(d / "laion"), texts)
    model, pretrained = write_tiny_clip(str(d / "clip"))
    return {"dir": d, "caps": str(caps), "laion": str(d / "laion"), "model": model, "pretrained": pretrained,
            "texts": texts, "n_entries": len(entries)}


def _search_args(inp, out, *extra):
    return ["--captions-json", inp["caps"], "--laion", inp["laion"], "--model", inp["model"],
            "--pretrained", inp["pretrained"], "--device", "cpu", "--topk", "5", "--out", str(out),
            "--block-rows", "8", "--rows-per-task", "10", *extra]


def _encode(inp, texts):
    from udfs.encoders import EncoderSpec, get_text_encoder

    spec = EncoderSpec(model=inp["model"], pretrained=inp["pretrained"], device="cpu")
    return get_text_encoder(spec).encode(texts)


def _write_npy(inp, directory, transform=lambda p, e: e):
    os.makedirs(directory, exist_ok=True)
    for p, ts in inp["texts"].items():
        e = _encode(inp, [t if t is not None else "" for t in ts]).astype(np.float16)
        np.save(os.path.join(directory, f"text_emb_{p}.npy"), transform(p, e))

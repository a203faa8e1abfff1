"""ImageNet-Captions queries, t2t-search (encoder and precomputed corpora), the inverse
index, the greedy (original) and max-similarity assignments, bad input, determinism
across masters."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curation.errors import InputError
from curation.t2t import assign_wnid_by_sim, greedy_assign, incaps_queries
from tests.support.t2t import generated_search, sequential_greedy


# ---------------------------------------------------------------- queries (pure)
def test_queries_one_per_filename_with_original_text():
    entries = [
        {"filename": "n02085620_7.JPEG", "title": "Chi", "tags": ["dog", "small"], "description": "on a sofa"},
        {"filename": "n01440764_3.JPEG", "title": "", "tags": [], "description": "fish"},
        {"filename": "n02085620_7.JPEG", "title": "second copy", "tags": [], "description": ""},
        {"filename": "n01443537_1.JPEG", "title": None, "tags": None, "description": None},
    ]
    q = incaps_queries(entries)
    assert list(q["filename"]) == ["n01440764_3.JPEG", "n01443537_1.JPEG", "n02085620_7.JPEG"]
    assert list(q["wnid"]) == ["n01440764", "n01443537", "n02085620"]
    assert list(q["text"]) == [" fish", " ", "Chi dog small on a sofa"]


@pytest.mark.parametrize("entry,msg", [
    ({"filename": "dog_1.JPEG", "title": "x"}, "entry 0: filename 'dog_1.JPEG'"),
    ({"title": "x"}, "entry 0: missing or non-string 'filename'"),
    ({"filename": "n01440764_1.JPEG", "tags": "a,b"}, "entry 0: field 'tags' must be a list of strings"),
])
def test_queries_bad_entries_name_the_entry(entry, msg):
    with pytest.raises(InputError, match=msg):
        incaps_queries([entry], source="caps.json")


# ---------------------------------------------------------------- assignment (pure + Spark)
def test_assign_wnid_by_sim_takes_the_most_similar_class():
    pairs = pd.DataFrame({"laion_index": [5, 5, 5, 9, 7, 7],
                          "wnid": ["n2", "n1", "n2", "n3", "n1", "n4"],
                          "similarity": np.float32([0.5, 0.7, 0.9, 0.2, 0.6, 0.6])})
    got = assign_wnid_by_sim(pairs)
    assert got.to_dict("list") == {"laion_index": [5, 7, 9], "wnid": ["n2", "n1", "n3"],
                                   "similarity": [pytest.approx(0.9), pytest.approx(0.6), pytest.approx(0.2)],
                                   "n_wnids": [2, 2, 1]}


def _greedy_pure(search: pd.DataFrame) -> dict:
    names = sorted(search["filename"].unique())
    text = search["filename"].map({n: i for i, n in enumerate(names)}).to_numpy()
    taken, rank = greedy_assign(text, search["rank"].to_numpy(), search["laion_index"].to_numpy(), len(names))
    return {names[t]: (int(taken[t]), int(rank[t])) for t in range(len(names)) if taken[t] >= 0}


def _loop_with_rank(search):
    by_row = search.set_index(["filename", "laion_index"])["rank"]
    return {f: (int(li), int(by_row[(f, li)])) for f, (li, _, _) in sequential_greedy(search).items()}


# chains: a text's first choice was taken by an earlier text, so it takes its second,
# which was a later text's first (and so on), and texts that end with no row
CHAINS = [
    # t0 takes a; t1 (a, b) -> b; t2 (b, c) -> c; t3 (c) -> none
    [["a", "b"], ["a", "b"], ["b", "c"], ["c"]],
    # a later text ranks first a row an earlier text reaches only at its second rank
    [["x", "y"], ["y", "z"], ["x", "z", "w"], ["y"], ["w", "z"]],
    # long chain in reverse: text i lists (r0 .. ri); each text takes the next row
    [[f"r{j}" for j in range(i + 1)] for i in range(12)],
    # the same row at several ranks of later texts, gaps in between
    [["a"], ["b", "a"], ["a", "b", "c"], ["c", "a", "b", "d"], ["d"]],
]


@pytest.mark.parametrize("chain", CHAINS)
def test_greedy_equals_the_sequential_loop_on_chains(chain):
    ids = {}
    search = pd.DataFrame([(f"n01440764_{i:03d}.JPEG", "n01440764", r + 1, ids.setdefault(x, len(ids)), 0.5)
                           for i, hits in enumerate(chain) for r, x in enumerate(hits)],
                          columns=["filename", "wnid", "rank", "laion_index", "similarity"])
    shuffled = search.sample(frac=1, random_state=1)
    assert _greedy_pure(shuffled) == _loop_with_rank(search)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_equals_the_sequential_loop_on_generated_search_results(seed):
    rng = np.random.default_rng(seed)
    for n_texts, k, pool in [(300, 8, 40), (500, 5, 2000), (400, 10, 450), (50, 3, 2), (1, 4, 10)]:
        search = generated_search(rng, n_texts, k, pool)
        want = _loop_with_rank(search)
        assert _greedy_pure(search.sample(frac=1, random_state=int(rng.integers(1 << 30)))) == want
        assert len(set(li for li, _ in want.values())) == len(want)  # no row twice


def test_greedy_rejects_two_rows_at_one_rank():
    with pytest.raises(InputError, match="text 1 has two rows at rank 2"):
        greedy_assign(np.array([0, 1, 1]), np.array([1, 2, 2]), np.array([5, 6, 7]), 2)
    taken, rank = greedy_assign(np.array([], np.int64), np.array([], np.int64), np.array([], np.int64), 3)
    assert taken.tolist() == [-1, -1, -1] and rank.tolist() == [0, 0, 0]

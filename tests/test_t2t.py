"""ImageNet-Captions queries, t2t-search (encoder and precomputed corpora), the inverse
index and max-similarity assignment, bad input, determinism across masters."""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest

from curation.errors import InputError
from curation.knn import brute_force_topk
from curation.sample_incaps import generate_entries
from curation.t2t import assign_wnid_by_sim, incaps_queries
from jobs.base import execute
from jobs.laionet_t2t import JOBS
from test_knn import write_laion_parts
from tiny_clip import write_tiny_clip

SEARCH, SUBSET = (next(j for j in JOBS if j.command[-1] == w) for w in ("t2t-search", "t2t-subset"))
WNIDS = ["n01440764", "n01443537", "n02085620", "n02110185"]


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


def test_spark_inverse_index_and_assignment_match_pandas(spark):
    from jobs.laionet_t2t import assign_wnids, inverse_index

    rng = np.random.default_rng(0)
    pairs = pd.DataFrame({"laion_index": rng.integers(0, 40, 300).astype(np.int64),
                          "wnid": rng.choice(WNIDS, 300),
                          "similarity": rng.random(300).astype(np.float32)})
    df = spark.createDataFrame(pairs, "laion_index long, wnid string, similarity float").repartition(3)
    got = assign_wnids(df, buckets=4).toPandas().sort_values("laion_index").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, assign_wnid_by_sim(pairs), check_dtype=False)
    index = inverse_index(df).toPandas()
    want = pairs[["wnid", "laion_index"]].drop_duplicates()
    assert sorted(map(tuple, index.to_numpy())) == sorted(map(tuple, want.to_numpy()))


# ---------------------------------------------------------------- the jobs
@pytest.fixture(scope="module")
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


def _corpus(inp):
    ids, texts = [], []
    for p, ts in inp["texts"].items():
        for i, t in enumerate(ts):
            if t is not None and t.strip():
                ids.append(p * 100_000_000 + i)
                texts.append(t)
    return np.array(ids, np.int64), texts


def test_t2t_search_with_encoder_corpus_is_exact(spark, t2t_inputs, tmp_path):
    inp = t2t_inputs
    out, emb = tmp_path / "search", tmp_path / "emb"
    assert execute(SEARCH, _search_args(inp, out, "--text-emb", str(emb))) == 0
    got = pd.read_parquet(out).sort_values(["filename", "rank"])
    assert list(got.columns) == ["filename", "wnid", "rank", "laion_index", "similarity"]

    queries = incaps_queries(json.loads(open(inp["caps"]).read()))
    queries = queries[queries["text"].str.strip() != ""]
    ids, texts = _corpus(inp)
    want_ids, want_sims = brute_force_topk(_encode(inp, queries["text"].tolist()), _encode(inp, texts), ids, 5)
    assert list(got["filename"].unique()) == list(queries["filename"])
    np.testing.assert_array_equal(got["laion_index"].to_numpy().reshape(-1, 5), want_ids)
    np.testing.assert_allclose(got["similarity"].to_numpy().reshape(-1, 5), want_sims, atol=1e-5)
    assert all(r == [1, 2, 3, 4, 5] for r in got.groupby("filename")["rank"].apply(list))
    assert set(got["wnid"]) <= set(WNIDS)

    report = json.loads((out / "_report.json").read_text())
    assert report["read"] == inp["n_entries"]
    assert report["dropped"] == {"blank_text": 1, "duplicate_filename": 1}
    emb_report = json.loads((emb / "_report.json").read_text())
    assert emb_report["read"] == 52 and emb_report["dropped"] == {"no_caption": 6}

    # a second search reuses the embeddings; other weights are refused, not overwritten
    from jobs.config import build_config
    from jobs.laionet_t2t import T2TSearchConfig, _encoder_corpus

    def config(*extra):
        args = dict(zip(*[iter(a.lstrip("-").replace("-", "_") if a.startswith("--") else a
                               for a in _search_args(inp, tmp_path / "x", "--text-emb", str(emb), *extra))] * 2))
        return build_config(T2TSearchConfig, args)

    mtime = os.path.getmtime(emb / "_report.json")
    assert _encoder_corpus(spark, config("--batch-size", "3")).count() == 46
    assert os.path.getmtime(emb / "_report.json") == mtime
    other = write_tiny_clip(str(inp["dir"] / "clip"), name="tiny-clip-other", seed=1)[1]
    with pytest.raises(InputError, match="is not a complete `curate laionet embed` output"):
        _encoder_corpus(spark, config("--pretrained", other))

    # the subset: one row per retrieved LAION row with its most similar class
    sub = tmp_path / "subset"
    assert execute(SUBSET, ["--search", str(out), "--laion", inp["laion"], "--out", str(sub),
                            "--index-out", str(tmp_path / "index")]) == 0
    rows = pd.read_parquet(sub)
    assert sorted(rows["laion_index"]) == sorted(got["laion_index"].unique())
    best = got.sort_values(["similarity", "wnid"], ascending=[False, True]).drop_duplicates("laion_index")
    assert dict(zip(rows["laion_index"], rows["wnid"])) == dict(zip(best["laion_index"], best["wnid"]))
    assert {"URL", "TEXT", "t2t_similarity", "n_wnids"} <= set(rows.columns)
    index = pd.read_parquet(tmp_path / "index")
    assert len(index) == len(got[["wnid", "laion_index"]].drop_duplicates())


def _write_npy(inp, directory, transform=lambda p, e: e):
    os.makedirs(directory, exist_ok=True)
    for p, ts in inp["texts"].items():
        e = _encode(inp, [t if t is not None else "" for t in ts]).astype(np.float16)
        np.save(os.path.join(directory, f"text_emb_{p}.npy"), transform(p, e))


def test_t2t_search_with_precomputed_npy(spark, t2t_inputs, tmp_path):
    inp = t2t_inputs
    _write_npy(inp, tmp_path / "npy")
    out = tmp_path / "search"
    assert execute(SEARCH, _search_args(inp, out, "--corpus", "precomputed", "--text-emb", str(tmp_path / "npy"))) == 0
    got = pd.read_parquet(out).sort_values(["filename", "rank"])
    queries = incaps_queries(json.loads(open(inp["caps"]).read()))
    queries = queries[queries["text"].str.strip() != ""]
    ids, texts = _corpus(inp)
    corpus = _encode(inp, texts).astype(np.float16)
    want_ids, _ = brute_force_topk(_encode(inp, queries["text"].tolist()), corpus, ids, 5)
    np.testing.assert_array_equal(got["laion_index"].to_numpy().reshape(-1, 5), want_ids)


def test_bad_precomputed_embeddings_are_named(spark, t2t_inputs, tmp_path, capsys):
    inp = t2t_inputs
    _write_npy(inp, tmp_path / "short", lambda p, e: e[:-1] if p == 1 else e)
    args = _search_args(inp, tmp_path / "o", "--corpus", "precomputed", "--text-emb", str(tmp_path / "short"))
    assert execute(SEARCH, args) == 2
    err = capsys.readouterr().err
    assert "text_emb_1.npy: 16 embedding rows but its LAION part" in err and "has 17 rows" in err

    _write_npy(inp, tmp_path / "wide", lambda p, e: np.hstack([e, e]))
    args = _search_args(inp, tmp_path / "o", "--corpus", "precomputed", "--text-emb", str(tmp_path / "wide"))
    assert execute(SEARCH, args) == 2
    err = capsys.readouterr().err
    assert "dimension mismatch" in err and "32-d query embeddings" in err and "64-d" in err

    args = _search_args(inp, tmp_path / "o", "--text-emb", str(tmp_path / "e"), "--topk", "0")
    assert execute(SEARCH, args) == 2
    assert "config key 'topk': must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_same_output_on_local1_and_local2(spark, t2t_inputs, tmp_path, curate_cmd):
    inp = t2t_inputs
    _write_npy(inp, tmp_path / "npy")
    common = ["--corpus", "precomputed", "--text-emb", str(tmp_path / "npy")]
    assert execute(SEARCH, _search_args(inp, tmp_path / "two", *common)) == 0
    args = _search_args(inp, tmp_path / "one", *common)
    args[args.index("--rows-per-task") + 1] = "1000"
    subprocess.run([*curate_cmd, "laionet", "t2t-search", *args, "--master", "local[1]"], check=True,
                   timeout=300, capture_output=True)
    one = pd.read_parquet(tmp_path / "one").sort_values(["filename", "rank"]).reset_index(drop=True)
    two = pd.read_parquet(tmp_path / "two").sort_values(["filename", "rank"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(one, two)


@pytest.mark.slow
def test_whole_recipe_on_sample_data(spark, tmp_path):
    """Sample LAION -> LAIONet (run, download, arrange) and laionet-t2t (search, subset,
    download, arrange) against the local image server -> match-freq; every TSV file path
    is an arranged image."""
    from curation.sample_images import serve_sample_images
    from jobs import laionet_arrange, laionet_download, laionet_match_freq, laionet_run, sample_data
    from jobs.config import build_config

    model, pretrained = write_tiny_clip(str(tmp_path / "clip"))
    work = tmp_path / "work"
    with serve_sample_images(stall_seconds=0.5) as base:
        sample_data.run(None, build_config(sample_data.SampleLaionConfig, {
            "out": str(tmp_path / "laion"), "rows": 300, "parts": 2, "seed": 5, "image_base_url": base}))
        laionet_run.run(spark, build_config(laionet_run.RunConfig, {
            "laion": str(tmp_path / "laion"), "work_dir": str(work), "model": model, "pretrained": pretrained,
            "threshold": 0.0, "partitions": 2}))

        def images(metadata, name):
            laionet_download.run(spark, build_config(laionet_download.DownloadConfig, {
                "metadata": metadata, "out": str(work / f"{name}-data"), "number_sample_per_shard": 50,
                "thread_count": 8, "retries": 0, "timeout": 0.5}))
            laionet_arrange.run(spark, build_config(laionet_arrange.ArrangeConfig, {
                "shards": str(work / f"{name}-data"), "metadata": metadata, "target": str(tmp_path / name),
                "target_df": str(work / f"{name}.parquet")}))
            (success,) = [p for p in os.listdir(work) if p.startswith(f"{name}_success")]
            return str(work / success)

        laionet = images(str(work / "filter"), "laionet")
        classes = sorted(pd.read_parquet(laionet)["wnid"].unique())
        caps = tmp_path / "caps.json"
        caps.write_text(json.dumps(generate_entries(classes, per_class_max=8, seed=2)))
        assert execute(SEARCH, ["--captions-json", str(caps), "--laion", str(tmp_path / "laion"), "--model", model,
                                "--pretrained", pretrained, "--device", "cpu", "--topk", "3",
                                "--text-emb", str(work / "emb"), "--out", str(work / "search")]) == 0
        assert execute(SUBSET, ["--search", str(work / "search"), "--laion", str(tmp_path / "laion"),
                                "--out", str(work / "t2t")]) == 0
        t2t = images(str(work / "t2t"), "laionet-t2t")

    report = laionet_match_freq.run(spark, build_config(laionet_match_freq.MatchFreqConfig, {
        "df": laionet, "t2t_df": t2t, "captions_df": str(caps), "out_dir": str(tmp_path / "out"),
        "laionet_root": str(tmp_path / "laionet"), "t2t_root": str(tmp_path / "laionet-t2t")}))
    n = report.kept
    tsv = pd.read_csv(tmp_path / "out" / f"laionet_match_incaps_{n}.tsv", sep="\t", quoting=3, keep_default_na=False)
    assert len(tsv) == n > 0 and all(os.path.isfile(p) for p in tsv["filepath"])
    assert report.info["from_t2t"] > 0 and report.info["from_laionet"] > 0
    assert report.info["achieved_total"] + report.info["shortfall_total"] == report.info["target_total"]

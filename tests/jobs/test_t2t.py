"""ImageNet-Captions queries, t2t-search (encoder and precomputed corpora), the inverse
index, the greedy (original) and max-similarity assignments, bad input, determinism
across masters."""
from __future__ import annotations

import json

import os

import numpy as np

import pandas as pd

import pytest

from curation.errors import InputError

from curation.knn import brute_force_topk

from curation.samples.incaps import generate_entries

from curation.t2t import assign_wnid_by_sim, incaps_queries

from jobs.framework.base import execute



from tests.support.tiny_clip import write_tiny_clip

from tests.support import CONF

from tests.support.t2t import SEARCH, SUBSET, WNIDS, _encode, _search_args, _write_npy, generated_search, sequential_greedy


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


def test_subset_preset_is_its_own():
    from jobs.framework.config import build_config, load_yaml
    from jobs.laionet_t2t import T2TSearchConfig, T2TSubsetConfig

    conf = os.path.join(CONF, "laionet")
    paths = {"search": "s", "laion": "l", "out": "o"}
    assert build_config(T2TSubsetConfig, {**load_yaml(os.path.join(conf, "t2t-subset.yaml")), **paths}).assign == "greedy"
    assert T2TSubsetConfig.__dataclass_fields__["assign"].default == "greedy"
    assert "assign" not in load_yaml(os.path.join(conf, "t2t.yaml"))
    assert "assign" not in {f for f in T2TSearchConfig.__dataclass_fields__}


def test_spark_greedy_equals_the_sequential_loop_for_any_partitioning(spark):
    from jobs.laionet_t2t import greedy_choices

    rng = np.random.default_rng(7)
    search = generated_search(rng, 400, 6, 500)
    want = sequential_greedy(search)
    schema = "filename string, wnid string, rank int, laion_index long, similarity float"
    for parts in (1, 3, 7):
        df = spark.createDataFrame(search.sample(frac=1, random_state=parts), schema).repartition(parts)
        rows, counts = greedy_choices(spark, df)
        got = rows.toPandas()
        assert len(got) == len(want) == counts["texts_with_a_row"] and got["laion_index"].is_unique
        assert {(li, w) for li, w in zip(got["laion_index"], got["wnid"])} == {(li, w) for li, w, _ in want.values()}
        assert counts["texts"] == search["filename"].nunique()
        assert sum(counts["taken_at_rank"].values()) == len(want)
        # lists are cut after their first row no other text retrieved
        assert counts["proposals_collected"] < len(search)


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
    from jobs.framework.config import build_config
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

    # --assign all: one row per retrieved LAION row with its most similar class
    sub = tmp_path / "subset"
    assert execute(SUBSET, ["--search", str(out), "--laion", inp["laion"], "--out", str(sub),
                            "--index-out", str(tmp_path / "index"), "--assign", "all"]) == 0
    rows = pd.read_parquet(sub)
    assert sorted(rows["laion_index"]) == sorted(got["laion_index"].unique())
    best = got.sort_values(["similarity", "wnid"], ascending=[False, True]).drop_duplicates("laion_index")
    assert dict(zip(rows["laion_index"], rows["wnid"])) == dict(zip(best["laion_index"], best["wnid"]))
    assert {"URL", "TEXT", "t2t_similarity", "n_wnids"} <= set(rows.columns)
    index = pd.read_parquet(tmp_path / "index")
    assert len(index) == len(got[["wnid", "laion_index"]].drop_duplicates())

    # default (greedy, the original): one row per text, the text's wnid; the report
    # counts the texts left without a row
    want = sequential_greedy(got)
    assert execute(SUBSET, ["--search", str(out), "--laion", inp["laion"], "--out", str(tmp_path / "greedy"),
                            "--index-out", str(tmp_path / "greedy_index")]) == 0
    greedy = pd.read_parquet(tmp_path / "greedy")
    assert sorted(zip(greedy["laion_index"], greedy["wnid"])) == sorted((li, w) for li, w, _ in want.values())
    np.testing.assert_allclose(sorted(greedy["t2t_similarity"]), sorted(s for _, _, s in want.values()))
    report = json.loads((tmp_path / "greedy" / "_report.json").read_text())
    n_texts = got["filename"].nunique()
    assert report["read"] == n_texts and report["kept"] == len(want)
    assert report["dropped"] == ({"text_without_free_row": n_texts - len(want)} if n_texts > len(want) else {})
    index = pd.read_parquet(tmp_path / "greedy_index")
    assert sorted(zip(index["wnid"], index["laion_index"])) == sorted((w, li) for li, w, _ in want.values())

    # max-sim: the greedy rows, each with its most similar class
    assert execute(SUBSET, ["--search", str(out), "--laion", inp["laion"], "--out", str(tmp_path / "maxsim"),
                            "--assign", "max-sim"]) == 0
    maxsim = pd.read_parquet(tmp_path / "maxsim")
    assert sorted(maxsim["laion_index"]) == sorted(greedy["laion_index"])
    assert dict(zip(maxsim["laion_index"], maxsim["wnid"])) == {
        li: w for li, w in zip(best["laion_index"], best["wnid"]) if li in set(greedy["laion_index"])}


def test_t2t_search_with_precomputed_npy(spark, t2t_inputs, tmp_path, monkeypatch):
    import udfs.knn

    inp = t2t_inputs
    _write_npy(inp, tmp_path / "npy")
    out = tmp_path / "search"
    # query embeddings in npy pieces of 3 (written by the encode tasks), searched in chunks of
    # 4: chunks that start and end inside pieces
    monkeypatch.setattr(udfs.knn, "QUERY_PIECE_ROWS", 3)
    assert execute(SEARCH, _search_args(inp, out, "--corpus", "precomputed", "--text-emb", str(tmp_path / "npy"),
                                        "--query-chunk", "4")) == 0
    assert sorted(os.listdir(tmp_path)) == ["npy", "search"]  # the query pieces are removed
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

    args = ["--search", str(tmp_path / "s"), "--laion", inp["laion"], "--out", str(tmp_path / "o"), "--assign", "first"]
    assert execute(SUBSET, args) == 2
    assert "config key 'assign': got 'first'; allowed values: greedy, max-sim, all" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_whole_recipe_on_sample_data(spark, tmp_path):
    """Sample LAION -> LAIONet (run, download, arrange) and laionet-t2t (search, subset,
    download, arrange) against the local image server -> match-freq; every TSV file path
    is an arranged image."""
    from curation.samples.images import serve_sample_images
    from jobs import laionet_arrange, laionet_download, laionet_match_freq, laionet_run, sample_data
    from jobs.framework.config import build_config

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
    tsv = pd.read_csv(tmp_path / "out" / f"laionet_match_incaps_{n}.tsv", sep="\t", keep_default_na=False)
    assert len(tsv) == n > 0 and all(os.path.isfile(p) for p in tsv["filepath"])
    assert report.info["from_t2t"] > 0 and report.info["from_laionet"] > 0
    assert report.info["achieved_total"] + report.info["shortfall_total"] == report.info["target_total"]


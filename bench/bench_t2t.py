"""Text-to-text search throughput: the Spark job (local[2], CPU) against one numpy process.

Both search the same generated embeddings (float16 `text_emb_<part>.npy` aligned with LAION
parts, as the precomputed LAION-400M files), measured side by side in one run:

- baseline: one process holding the whole corpus as float32, a single `Q @ C.T` and
  `argpartition` for the top-k (no tie handling, no rescoring);
- spark: `jobs.laionet_t2t.search_topk` over npy slices of `--rows-per-task` rows, exact
  top-k per slice (float32 shortlist + float64 rescoring) merged by a Spark window.

The corpus is chosen larger than the per-process memory budget (`--budget-mib`): the
baseline needs the corpus and the full score matrix in memory, each Spark task only its
slice and one block of scores. Throughput is query x corpus pairs per second; each side
runs `--repeat` times, interleaved, and the best time counts (the machine may be shared).

    .venv/bin/python bench/bench_t2t.py                      # defaults: 600k x 128, 512 queries
    .venv/bin/python bench/bench_t2t.py --rows 200000 --queries 256 --repeat 1
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_inputs(directory: str, rows: int, dim: int, parts: int, seed: int = 0):
    """LAION-like parts (captions only) and their float16 text_emb_<part>.npy."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    laion = os.path.join(directory, "laion")
    emb = os.path.join(directory, "emb")
    os.makedirs(laion)
    os.makedirs(emb)
    per_part = -(-rows // parts)
    for p in range(parts):
        n = min(per_part, rows - p * per_part)
        pq.write_table(pa.table({"TEXT": [f"caption {p} {i}" for i in range(n)]}),
                       os.path.join(laion, f"part-{p:05d}-00000000-0000-0000-0000-000000000000-c000.snappy.parquet"))
        x = rng.standard_normal((n, dim), dtype=np.float32)
        np.save(os.path.join(emb, f"text_emb_{p}.npy"), (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16))
    return laion, emb


def baseline(emb_dir: str, parts: int, queries: np.ndarray, k: int) -> float:
    """Seconds for one numpy matmul + argpartition over the whole corpus (loading excluded)."""
    corpus = np.concatenate([np.load(os.path.join(emb_dir, f"text_emb_{p}.npy")).astype(np.float32)
                             for p in range(parts)])
    t0 = time.perf_counter()
    s = queries @ corpus.T
    top = np.argpartition(s, s.shape[1] - k, axis=1)[:, -k:]
    np.take_along_axis(s, top, 1)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=600_000, help="corpus rows")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=512)
    ap.add_argument("--topk", type=int, default=50)
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--rows-per-task", type=int, default=150_000)
    ap.add_argument("--budget-mib", type=int, default=256, help="memory budget of one process")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    corpus_mib = args.rows * args.dim * 4 / 2**20
    scores_mib = args.queries * args.rows * 4 / 2**20
    task_mib = (args.rows_per_task * args.dim * 2 + 1024 * 16384 * 4) / 2**20
    print(f"corpus {args.rows:,} x {args.dim} ({corpus_mib:.0f} MiB float32; baseline scores "
          f"{scores_mib:.0f} MiB), {args.queries} queries, k={args.topk}; budget {args.budget_mib} MiB per process; "
          f"a Spark task holds ~{task_mib:.0f} MiB (slice float16 + one score block)")
    if corpus_mib <= args.budget_mib:
        print("warning: the corpus fits the budget; raise --rows for the intended comparison")

    rng = np.random.default_rng(1)
    q = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    # the baseline's BLAS keeps both cores; each Spark Python worker gets one thread
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"

    from jobs.laionet_t2t import precomputed_slices, search_topk
    from jobs.framework.session import create_session
    from udfs.knn import QueryPieces, SearchOptions

    with tempfile.TemporaryDirectory() as tmp:
        laion, emb = make_inputs(tmp, args.rows, args.dim, args.parts)
        # the queries as the job's encode tasks leave them: npy pieces the search tasks read
        pieces = QueryPieces(os.path.join(tmp, "queries"), len(q))
        os.makedirs(pieces.folder)
        for p, start in enumerate(range(0, len(q), pieces.piece_rows)):
            pieces.write(p, q[start:start + pieces.piece_rows])
        spark = create_session("local[2]", app_name="bench-t2t", conf={"spark.sql.shuffle.partitions": "4"})
        try:
            slices, _, _ = precomputed_slices(spark, laion, emb, args.rows_per_task)
            opts = SearchOptions(k=args.topk, device="cpu")
            base_t, spark_t = [], []
            for _ in range(args.repeat):
                base_t.append(baseline(emb, args.parts, q, args.topk))
                t0 = time.perf_counter()
                ranked = search_topk(spark, pieces, slices, opts, query_chunk=len(q))
                ranked.write.format("noop").mode("overwrite").save()
                spark_t.append(time.perf_counter() - t0)
        finally:
            spark.stop()
    pairs = args.queries * args.rows
    b, s = pairs / min(base_t), pairs / min(spark_t)
    print(f"numpy one process : {b / 1e6:8.1f} M pairs/s  (best of {base_t and [round(t, 2) for t in base_t]} s)")
    print(f"spark local[2]    : {s / 1e6:8.1f} M pairs/s  (best of {[round(t, 2) for t in spark_t]} s)")
    print(f"ratio spark/numpy : {s / b:.2f}  (target >= 0.50)")


if __name__ == "__main__":
    main()

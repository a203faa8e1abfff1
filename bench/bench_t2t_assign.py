"""The original one-row-per-text rule at ImageNet-Captions scale, on the driver.

`curation.t2t.greedy_assign` (the pairs scattered into a texts x k int64 matrix, walked
with a set of taken rows) against the original script's layout (a dict of Python lists
per text, the same walk), side by side in one run on the same generated search results:
448,896 texts x top-50 (the worst case for t2t-subset's driver: no list cut short).

Rows are drawn per class from a pool with Zipf-like popularity (Gumbel top-k), so texts
of a class compete for the same popular captions and some texts end without a row, as in
the seed's pool (424,471 rows from 448,896 texts). Prints seconds and the peak memory
of each side beyond its input (peak RSS of a forked child), the outcome, and the ratio loop / greedy_assign.

    .venv/bin/python bench/bench_t2t_assign.py                    # 448,896 x 50
    .venv/bin/python bench/bench_t2t_assign.py --texts 50000      # quick
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def generate(texts: int, k: int, classes: int, pool: int, seed: int = 0):
    """(text, rank, laion_index) int arrays, text-major, ranks 1..k."""
    rng = np.random.default_rng(seed)
    per_class = np.array_split(np.arange(texts), classes)
    weights = np.log(1.0 / np.arange(1, pool + 1) ** 1.1)
    out = np.empty((texts, k), dtype=np.int64)
    for c, members in enumerate(per_class):
        g = weights[None, :] - np.log(-np.log(rng.random((len(members), pool))))
        top = np.argpartition(-g, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(g, top, axis=1), axis=1)
        rows = np.take_along_axis(top, order, axis=1)
        out[members] = c * 100_000_000 + rng.permutation(pool)[rows]  # popular rows differ per class
    text = np.repeat(np.arange(texts, dtype=np.int64), k)
    rank = np.tile(np.arange(1, k + 1, dtype=np.int64), texts)
    return text, rank, out.ravel()


def original_layout(text, rank, laion_index, n_texts):
    """The original script's data and loop: {text: [laion_index in rank order]} (its pickles
    hold Python lists), walked in text order with a set of taken rows."""
    order = np.lexsort((rank, text))
    bounds = np.searchsorted(text[order], np.arange(n_texts + 1))
    rows = laion_index[order].tolist()
    lists = {t: rows[bounds[t]:bounds[t + 1]] for t in range(n_texts)}
    del rows
    taken_rows, taken = set(), []
    for t in range(n_texts):
        got = -1
        for r in lists[t]:
            if r not in taken_rows:
                taken_rows.add(r)
                got = r
                break
        taken.append(got)
    return np.array(taken, dtype=np.int64)


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(fn, *args):
    """(result, seconds, MiB): run in a forked child that shares the input; memory is the
    child's peak resident size minus its size when it started (tracemalloc would slow
    the original's Python lists too much to time them)."""
    import multiprocessing as mp
    import resource

    def child(conn):
        start = _rss_mib()
        t0 = time.perf_counter()
        result = fn(*args)
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        conn.send((result, seconds, peak - start))

    parent, conn = mp.get_context("fork").Pipe(duplex=False)
    proc = mp.get_context("fork").Process(target=child, args=(conn,))
    proc.start()
    out = parent.recv()
    proc.join()
    return out


def main() -> int:
    from curation.t2t import greedy_assign

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=448_896)
    ap.add_argument("--topk", type=int, default=50)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--pool", type=int, default=1000, help="rows each class's texts draw from")
    args = ap.parse_args()

    text, rank, laion_index = generate(args.texts, args.topk, args.classes, args.pool)
    # the job collects the pairs in no particular order
    perm = np.random.default_rng(1).permutation(len(text))
    shuffled = (text[perm], rank[perm], laion_index[perm])
    input_mib = sum(a.nbytes for a in shuffled) / 2**20
    (taken, taken_rank), t_greedy, m_greedy = measure(greedy_assign, *shuffled, args.texts)
    loop_taken, t_loop, m_loop = measure(original_layout, *shuffled, args.texts)
    if not np.array_equal(taken, loop_taken):
        print("MISMATCH: greedy_assign differs from the original's loop")
        return 1
    without = int((taken < 0).sum())
    print(f"{args.texts:,} texts x top-{args.topk} ({len(text):,} retrievals, input {input_mib:.0f} MiB "
          f"as int64), {args.classes} classes x pool {args.pool}: {args.texts - without:,} rows taken, "
          f"{without:,} texts without a row, {int((taken_rank == 1).sum()):,} at rank 1")
    print(f"greedy_assign   {t_greedy:7.2f} s  peak +{m_greedy:6.0f} MiB")
    print(f"original layout {t_loop:7.2f} s  peak +{m_loop:6.0f} MiB")
    print(f"ratios original / greedy_assign: time {t_loop / t_greedy:.2f}, memory {m_loop / m_greedy:.2f} "
          "(same result)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory of `curate laionet label` does not grow with the number of rows.

    .venv/bin/python bench/bench_label_memory.py [--small 1000000] [--large 4000000] [--data-dir DIR]

Runs the label job as a subprocess (`--master local[1]`) on sample data of two sizes
(same part size, so the larger input has more parts) and samples the resident memory of
the whole process tree (the `curate` driver, its JVM and the Python workers) every 0.1 s
with psutil. The goal: peak(large) / peak(small) <= 1.2.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_label import ensure_data  # noqa: E402  (a sibling script, not a package)


def peak_rss_of(cmd) -> tuple:
    """(peak RSS of the process tree in bytes, seconds) of a command."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid)
    peak, t0 = 0, time.time()
    while proc.poll() is None:
        total = 0
        try:
            for p in [root] + root.children(recursive=True):
                try:
                    total += p.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            break
        peak = max(peak, total)
        time.sleep(0.1)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:]}")
    return peak, time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=1_000_000)
    ap.add_argument("--large", type=int, default=4_000_000)
    ap.add_argument("--rows-per-part", type=int, default=250_000)
    ap.add_argument("--data-dir", help="where the sample parts are kept and reused; default: a temp dir")
    ap.add_argument("--master", default="local[1]")
    args = ap.parse_args()

    curate = os.path.join(os.path.dirname(sys.executable), "curate")
    work = tempfile.mkdtemp(prefix="bench-label-memory-")
    data_dir = args.data_dir or work
    try:
        peaks = {}
        for rows in (args.small, args.large):
            parts = max(1, rows // args.rows_per_part)
            data = ensure_data(os.path.join(data_dir, f"laion-{rows}"), rows, parts, seed=0)
            out = os.path.join(work, f"labels-{rows}")
            peak, seconds = peak_rss_of([curate, "laionet", "label", "--laion", data, "--out", out,
                                         "--master", args.master])
            peaks[rows] = peak
            print(f"  {rows:>12,} rows ({parts} parts): peak RSS {peak / 2**20:8.0f} MiB in {seconds:6.1f} s",
                  flush=True)
        ratio = peaks[args.large] / peaks[args.small]
        print(f"  peak {args.large:,} / peak {args.small:,} rows = {ratio:.2f}   (goal <= 1.2)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

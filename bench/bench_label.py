"""Speed of `curate laionet label`, measured side by side in one run.

    .venv/bin/python bench/bench_label.py [--rows 1000000] [--parts 4] [--data DIR] [--master local[1]]

Prints captions/s of
- the original per-row loop (for each caption, test every lemma; one core),
- our matcher alone (`LemmaMatcher.match_arrow` on 10,000-caption Arrow batches; one core),
- a bare Spark job reading TEXT from the same parts and summing its length (the I/O floor),
  as one writes it and with the parts' schema given (no inference, as the label job reads),
- the label job (read, match, write parquet, report) on the same master,
and the ratios the issue asks for: label job / original loop >= 100 (one core) and
label job / the faster bare job >= 0.5. Spark runs alternate (bare, label, bare, ...) and
the best of each is kept, so that a noisy machine slows both alike.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def ensure_data(path: str, rows: int, parts: int, seed: int) -> str:
    """Sample LAION parts at `path` (reused when a previous run made the same ones)."""
    from jobs.sample_data import SampleLaionConfig, run

    report = os.path.join(path, "_report.json")
    if os.path.exists(report):
        with open(report) as fh:
            if json.load(fh)["kept"] == rows and len(glob.glob(os.path.join(path, "part-*.parquet"))) == parts:
                return path
    run(None, SampleLaionConfig(out=path, rows=rows, parts=parts, seed=seed, row_group_rows=100_000))
    return path


def original_loop_rate(captions, lemma_map) -> float:
    """Captions/s of the original: translate, pad, then `' ' + lemma + ' ' in text` per lemma."""
    from curation.matching import laionet_reference_match

    lemmas = list(lemma_map)
    t0 = time.perf_counter()
    for caption in captions:
        {lemma_map[lemma] for lemma in laionet_reference_match(caption, lemmas)}
    return len(captions) / (time.perf_counter() - t0)


def matcher_rate(text, lemma_map, engine: str = "auto"):
    """(captions/s, the engine's name)."""
    from curation.matching import LemmaMatcher

    matcher = LemmaMatcher(lemma_map, "laionet", engine=engine)
    batches = [text.slice(i, 10_000) for i in range(0, len(text), 10_000)]
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for batch in batches:
            matcher.match_arrow(batch)
        best = min(best, time.perf_counter() - t0)
    return len(text) / best, matcher.engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", help="directory for the sample parts (kept and reused); default: a temp dir")
    ap.add_argument("--master", default="local[1]")
    ap.add_argument("--repeat", type=int, default=5, help="Spark runs of each kind (best kept)")
    ap.add_argument("--warmup", type=int, default=2,
                    help="rounds run first and not counted (the JVM's JIT keeps speeding both jobs up "
                         "for several runs)")
    ap.add_argument("--loop-captions", type=int, default=2_000, help="captions timed with the original loop")
    args = ap.parse_args()

    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    from curation.concepts import load_lemma_map
    from jobs.io.laion import read_laion
    from jobs.laionet_label import MatchConfig, run_label
    from jobs.framework.session import create_session

    work = tempfile.mkdtemp(prefix="bench-label-")
    try:
        data = ensure_data(args.data or os.path.join(work, "laion"), args.rows, args.parts, args.seed)
        lemma_map = load_lemma_map()
        text = pq.read_table(sorted(glob.glob(os.path.join(data, "part-*.parquet")))[0],
                             columns=["TEXT"]).column("TEXT").combine_chunks()
        loop = original_loop_rate(text.slice(0, args.loop_captions).to_pylist(), lemma_map)
        matcher, engine = matcher_rate(text, lemma_map)
        fallback = matcher_rate(text, lemma_map, "ahocorasick")[0] if engine != "ahocorasick" else None

        spark = create_session(args.master, app_name="bench-label")
        files = read_laion(spark, data).files
        # the bare job as one writes it, and with the schema given (as the label job
        # does, from the footers it reads anyway): no schema inference, the pure floor
        schema = spark.read.parquet(*files).schema
        bare_times, floor_times, label_times = [], [], []
        for i in range(args.warmup + args.repeat):  # warm-up rounds: the JVM's JIT and the workers
            t0 = time.perf_counter()
            spark.read.parquet(*files).select(F.sum(F.length("TEXT"))).first()
            t1 = time.perf_counter()
            spark.read.schema(schema).parquet(*files).select(F.sum(F.length("TEXT"))).first()
            t2 = time.perf_counter()
            run_label(spark, MatchConfig(laion=data, out=os.path.join(work, f"labels{i}")))
            t3 = time.perf_counter()
            if i >= args.warmup:
                bare_times.append(t1 - t0)
                floor_times.append(t2 - t1)
                label_times.append(t3 - t2)
        spark.stop()
        bare, label = args.rows / min(bare_times + floor_times), args.rows / min(label_times)

        print(f"\nlabel benchmark: {args.rows:,} rows in {args.parts} parts, master {args.master}, "
              f"{len(lemma_map):,} lemmas, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if fallback is not None:
            print(f"  {'matcher, ahocorasick-rs engine':38s} {fallback:14,.0f} captions/s")
        for name, rate in (("original per-row loop (1 core)", loop), (f"our matcher alone ({engine}, 1 core)", matcher),
                           ("bare Spark: read TEXT, sum lengths", args.rows / min(bare_times)),
                           ("  the same, schema given", args.rows / min(floor_times)),
                           ("label job (read, match, write)", label)):
            print(f"  {name:38s} {rate:14,.0f} captions/s")
        print(f"  label job / original loop   {label / loop:8.1f}x   (goal >= 100x)")
        print(f"  matcher / original loop     {matcher / loop:8.1f}x")
        print(f"  label job / bare Spark      {label / bare:8.2f}    (goal >= 0.5; the faster bare job)")
        print(f"  runs (s): bare {', '.join(f'{t:.2f}' for t in bare_times)}; "
              f"schema given {', '.join(f'{t:.2f}' for t in floor_times)}; "
              f"label {', '.join(f'{t:.2f}' for t in label_times)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

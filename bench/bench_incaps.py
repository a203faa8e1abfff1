"""Benchmark: `curate incaps captions` (full text, shuffled) on Spark vs plain pandas.

For each size, a generated `imagenet_captions.json` (the 450k-entry base list, repeated
with renamed files for larger sizes) is turned into the full-text TSV twice, side by side
in one run:
- pandas: one process, `json.load`, the rules of `curation/captions.py` row by row,
  a sort by the seeded shuffle key, `to_csv` and the frequency file;
- Spark: the `curate` command as a user runs it (`--master local[2]`, JVM start-up
  included).
The two TSVs must be byte-identical. Prints seconds and the Spark/pandas ratio per size.

    .venv/bin/python bench/bench_incaps.py                      # 450k entries
    .venv/bin/python bench/bench_incaps.py --scales 1,2,4       # and 0.9M, 1.8M
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from curation import captions as C  # noqa: E402
from curation import concepts  # noqa: E402
from curation.frequency import frequency_text  # noqa: E402
from curation.sample_incaps import class_sizes, generate_entries  # noqa: E402

FLAGS = ["--use-title", "--use-tags", "--use-description", "--append-cname", "--shuffle"]
SPEC = C.CaptionSpec(True, True, True, append_cname=True, seed=0)


def per_class_max_for(entries: int) -> int:
    """The smallest per-class maximum whose 1000 long-tailed classes hold `entries`."""
    lo, hi = 1, 100 * entries
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if sum(class_sizes(1000, mid)) < entries else (lo, mid)
    return lo


def write_json(path: str, base: list, scale: int) -> int:
    """Write `base` `scale` times (copy r renames its files `<name>_r<r>.JPEG`); streamed."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("[")
        for r in range(scale):
            for e in base:
                if r:
                    e = dict(e, filename=e["filename"].replace(".JPEG", f"_r{r}.JPEG"))
                fh.write((", " if n else "") + json.dumps(e, ensure_ascii=False))
                n += 1
        fh.write("]")
    return n


def run_pandas(root: str, out: str) -> str:
    import pandas as pd

    with open(f"{root}/imagenet-captions/imagenet_captions.json", encoding="utf-8") as fh:
        entries = json.load(fh)
    builder = C.CaptionBuilder(SPEC, f"{root}/imagenet", concepts.load_concepts())
    rows = [builder.row(e) for e in entries]
    df = pd.DataFrame(rows, columns=C.Row._fields)
    if (df.status.isin(C.BAD_ROW_STATUSES)).any():
        raise SystemExit("generated data has bad entries")
    df["key"] = [C.order_key(f, SPEC.seed, "shuffle") for f in df.filename]
    df["pos"] = range(len(df))
    df = df[df.status == C.KEPT].sort_values(["key", "pos"])
    os.makedirs(out, exist_ok=True)
    tsv = f"{out}/{C.caption_file_name(SPEC, len(df))}"
    df[["filepath", "label", "caption"]].astype({"label": "int64"}).to_csv(
        tsv, sep="\t", index=False, quoting=csv.QUOTE_NONE, quotechar="\x00", lineterminator="\n")
    counts = df.label.value_counts().to_dict()
    with open(f"{out}/{C.caption_frequency_name(SPEC)}", "w", encoding="utf-8") as fh:
        fh.write(frequency_text(counts, concepts.classnames()))
    return tsv


def run_spark(root: str, out: str, master: str) -> str:
    curate = os.path.join(os.path.dirname(sys.executable), "curate")
    cmd = [curate, "incaps", "captions", "--root", root, "--out", out, "--master", master, *FLAGS]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"spark run failed:\n{proc.stderr[-3000:]}")
    return next(line.split(" ", 1)[1] for line in proc.stdout.splitlines()
                if line.startswith("wrote ") and line.endswith(".tsv"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=450_000, help="entries of the base list")
    ap.add_argument("--scales", default="1", help="comma-separated multiples of the base list")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--work", default=None, help="working directory (default: a temporary one, removed)")
    args = ap.parse_args()

    work = args.work or tempfile.mkdtemp(prefix="bench_incaps_")
    try:
        wnids = concepts.wnids()
        base = generate_entries(wnids, per_class_max_for(args.entries), seed=0,
                                classnames=dict(zip(wnids, concepts.classnames())))
        print(f"{'entries':>10} {'MB':>7} {'pandas s':>9} {'spark s':>8} {'spark/pandas':>13}")
        for scale in (int(s) for s in args.scales.split(",")):
            root = f"{work}/x{scale}"
            n = write_json(f"{root}/imagenet-captions/imagenet_captions.json", base, scale)
            mb = os.path.getsize(f"{root}/imagenet-captions/imagenet_captions.json") / 1e6
            t = time.perf_counter()
            pandas_tsv = run_pandas(root, f"{root}/pandas")
            t_pandas = time.perf_counter() - t
            t = time.perf_counter()
            spark_tsv = run_spark(root, f"{root}/spark", args.master)
            t_spark = time.perf_counter() - t
            with open(pandas_tsv, "rb") as a, open(spark_tsv, "rb") as b:
                same = a.read() == b.read()
            print(f"{n:>10,} {mb:>7.0f} {t_pandas:>9.1f} {t_spark:>8.1f} {t_spark / t_pandas:>13.2f}"
                  f"{'' if same else '  OUTPUTS DIFFER'}", flush=True)
            shutil.rmtree(root)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Benchmark: `curate incaps captions` (full text, shuffled) on Spark vs plain pandas.

For each size, a generated `imagenet_captions.json` (the 450k-entry base list, repeated
with renamed files for larger sizes) is turned into the full-text TSV twice, side by side
in one run:
- pandas: one process, `json.load`, the rules of `curation/captions.py` row by row,
  a sort by the seeded shuffle key, `to_csv` and the frequency file;
- Spark: the `curate` command as a user runs it (`--master local[2]`, JVM start-up
  included).
The two TSVs must be byte-identical. Prints, per size, the wall seconds and the
Spark/pandas ratio, the CPU seconds of each side (Spark: the whole process tree, JVM and
Python workers, sampled from /proc) and the load average: on a shared machine the ratio
moves with the load, the CPU seconds much less.

    .venv/bin/python bench/bench_incaps.py                      # 450k entries
    .venv/bin/python bench/bench_incaps.py --scales 1,2         # and 0.9M
    .venv/bin/python bench/bench_incaps.py --scales 10          # 4.5M (pandas needs ~11 GB)

Measured on the shared 2-CPU development machine (AMD EPYC, KVM), final code:

    entries  pandas s  spark s  spark/pandas  pandas cpu s  spark cpu s  load
    450,007      14.5     25.6          1.77          14.4         43.0   1.9
    450,007      11.4     20.9          1.83          11.4         35.5   1.8
    450,007      25.7     42.9          1.67          17.1         46.8   5.0
    450,007      18.4     53.0          2.88          16.0         54.2   4.5
    450,007      22.6     82.4          3.64             -            -   6-7
    450,007      23.0     75.7          3.29             -            -   6-7
    900,014      28.2     48.1          1.70          27.5         53.5   3.4
  4,500,070     221.3    258.7          1.17         165.6        164.8   6.9
  4,500,070     374.0    294.9          0.79             -            -   6-8

Spark's fixed cost is ~35-38 CPU s (a 20k-entry run: 38.5, most of it the JVM starting and
compiling its first query); per entry both sides spend about the same CPU (the same JSON
decoding and caption rules; Spark adds Arrow, shuffle and sort in the JVM, pandas its
DataFrame, sort and `to_csv`). So Spark beats pandas only by using the second core: at
4.5M entries it did (0.79) when it got it and did not (1.17) when other jobs held it.
(Rows without CPU columns were run before the benchmark printed them; same job code.)
"""
from __future__ import annotations

import argparse
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
from curation.samples.incaps import class_sizes, generate_entries  # noqa: E402

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
        tsv, sep="\t", index=False, lineterminator="\n")
    counts = df.label.value_counts().to_dict()
    with open(f"{out}/{C.caption_frequency_name(SPEC)}", "w", encoding="utf-8") as fh:
        fh.write(frequency_text(counts, concepts.classnames()))
    return tsv


def _tree_cpu(pid: int, seen: dict) -> None:
    """Record the CPU seconds (user + system) of `pid` and its descendants in `seen`
    (Linux /proc; the JVM and Python workers are not reaped by `curate`, so rusage misses them)."""
    todo, tick = [pid], os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            seen[p] = (int(fields[11]) + int(fields[12])) / tick
            for task in os.listdir(f"/proc/{p}/task"):
                todo.extend(int(c) for c in open(f"/proc/{p}/task/{task}/children").read().split())
        except (OSError, ValueError):
            pass


def run_spark(root: str, out: str, master: str):
    """(TSV path, CPU seconds of the whole process tree, sampled: None without /proc)."""
    curate = os.path.join(os.path.dirname(sys.executable), "curate")
    cmd = [curate, "incaps", "captions", "--root", root, "--out", out, "--master", master, *FLAGS]
    seen: dict = {}
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, text=True)
        while proc.poll() is None:
            if os.path.isdir("/proc"):
                _tree_cpu(proc.pid, seen)
            time.sleep(0.25)
        stdout.seek(0), stderr.seek(0)
        out_text, err_text = stdout.read(), stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"spark run failed:\n{err_text[-3000:]}")
    tsv = next(line.split(" ", 1)[1] for line in out_text.splitlines()
               if line.startswith("wrote ") and line.endswith(".tsv"))
    return tsv, (sum(seen.values()) if seen else None)


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
        print(f"load average {os.getloadavg()[0]:.1f} (the machine has {os.cpu_count()} CPUs)")
        print(f"{'entries':>10} {'MB':>7} {'pandas s':>9} {'spark s':>8} {'spark/pandas':>13}"
              f" {'pandas cpu s':>13} {'spark cpu s':>12} {'load':>5}")
        for scale in (int(s) for s in args.scales.split(",")):
            root = f"{work}/x{scale}"
            n = write_json(f"{root}/imagenet-captions/imagenet_captions.json", base, scale)
            mb = os.path.getsize(f"{root}/imagenet-captions/imagenet_captions.json") / 1e6
            t, cpu = time.perf_counter(), time.process_time()
            pandas_tsv = run_pandas(root, f"{root}/pandas")
            t_pandas, cpu_pandas = time.perf_counter() - t, time.process_time() - cpu
            t = time.perf_counter()
            spark_tsv, cpu_spark = run_spark(root, f"{root}/spark", args.master)
            t_spark = time.perf_counter() - t
            with open(pandas_tsv, "rb") as a, open(spark_tsv, "rb") as b:
                same = a.read() == b.read()
            spark_cpu = "-" if cpu_spark is None else f"{cpu_spark:.1f}"
            print(f"{n:>10,} {mb:>7.0f} {t_pandas:>9.1f} {t_spark:>8.1f} {t_spark / t_pandas:>13.2f}"
                  f" {cpu_pandas:>13.1f} {spark_cpu:>12} {os.getloadavg()[0]:>5.1f}"
                  f"{'' if same else '  OUTPUTS DIFFER'}", flush=True)
            shutil.rmtree(root)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

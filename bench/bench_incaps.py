"""Benchmark: `curate incaps captions` (full text, shuffled) against plain pandas.

For each size, a generated `imagenet_captions.json` (the 450k-entry base list, repeated
with renamed files for larger sizes) is turned into the full-text TSV twice, side by side
in one run:
- pandas: one process, `json.load`, the rules of `curation/captions.py` row by row,
  a DataFrame, a sort by the seeded shuffle key, `to_csv` and the frequency file;
- the job: the `curate` command as a user runs it (`--master local[2]`; on local paths
  the job starts no JVM and `--master` goes unused, see `jobs/incaps.py:
  captions_need_spark`), process start-up included.
The two TSVs must be byte-identical. Prints, per size, the wall seconds and the
job/pandas ratio, the CPU seconds of each side (the job: its whole process tree, sampled
from /proc), the job's peak resident memory and the load average: on a shared machine the
ratio moves with the load, the CPU seconds much less.

    .venv/bin/python bench/bench_incaps.py                      # 450k entries
    .venv/bin/python bench/bench_incaps.py --scales 1,2         # and 0.9M
    .venv/bin/python bench/bench_incaps.py --scales 10          # 4.5M (pandas needs ~11 GB)

Results (the shared 2-CPU development machine) are in docs/incaps.md, "Speed".
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


def _tree_sample(pid: int, cpu: dict, rss: dict) -> None:
    """Record the CPU seconds (user + system) and the peak resident memory (bytes) of `pid`
    and its descendants in `cpu` / `rss` (Linux /proc; a JVM and Python workers started by
    a Spark session are not reaped by `curate`, so rusage would miss them)."""
    todo, tick = [pid], os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            cpu[p] = (int(fields[11]) + int(fields[12])) / tick
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmHWM:"):
                    rss[p] = int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{p}/task"):
                todo.extend(int(c) for c in open(f"/proc/{p}/task/{task}/children").read().split())
        except (OSError, ValueError):
            pass


def run_job(root: str, out: str, master: str):
    """(TSV path, CPU seconds and peak resident bytes of the whole process tree, sampled:
    None without /proc)."""
    curate = os.path.join(os.path.dirname(sys.executable), "curate")
    cmd = [curate, "incaps", "captions", "--root", root, "--out", out, "--master", master, *FLAGS]
    cpu: dict = {}
    rss: dict = {}
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, text=True)
        while proc.poll() is None:
            if os.path.isdir("/proc"):
                _tree_sample(proc.pid, cpu, rss)
            time.sleep(0.1)
        stdout.seek(0), stderr.seek(0)
        out_text, err_text = stdout.read(), stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"job failed:\n{err_text[-3000:]}")
    tsv = next(line.split(" ", 1)[1] for line in out_text.splitlines()
               if line.startswith("wrote ") and line.endswith(".tsv"))
    return tsv, (sum(cpu.values()) if cpu else None), (sum(rss.values()) if rss else None)


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
        print(f"{'entries':>10} {'MB':>7} {'pandas s':>9} {'job s':>8} {'job/pandas':>11}"
              f" {'pandas cpu s':>13} {'job cpu s':>10} {'job peak GB':>12} {'load':>5}")
        for scale in (int(s) for s in args.scales.split(",")):
            root = f"{work}/x{scale}"
            n = write_json(f"{root}/imagenet-captions/imagenet_captions.json", base, scale)
            mb = os.path.getsize(f"{root}/imagenet-captions/imagenet_captions.json") / 1e6
            t, cpu = time.perf_counter(), time.process_time()
            pandas_tsv = run_pandas(root, f"{root}/pandas")
            t_pandas, cpu_pandas = time.perf_counter() - t, time.process_time() - cpu
            t = time.perf_counter()
            job_tsv, cpu_job, rss_job = run_job(root, f"{root}/job", args.master)
            t_job = time.perf_counter() - t
            with open(pandas_tsv, "rb") as a, open(job_tsv, "rb") as b:
                same = a.read() == b.read()
            job_cpu = "-" if cpu_job is None else f"{cpu_job:.1f}"
            job_rss = "-" if rss_job is None else f"{rss_job / 1e9:.2f}"
            print(f"{n:>10,} {mb:>7.0f} {t_pandas:>9.1f} {t_job:>8.1f} {t_job / t_pandas:>11.2f}"
                  f" {cpu_pandas:>13.1f} {job_cpu:>10} {job_rss:>12} {os.getloadavg()[0]:>5.1f}"
                  f"{'' if same else '  OUTPUTS DIFFER'}", flush=True)
            shutil.rmtree(root)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

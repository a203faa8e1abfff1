"""Arrange throughput: `curate laionet arrange` (local[P], images/s per core) vs a plain
sequential loop that reads the same tars with `tarfile` and writes the same files (the
I/O floor: no checks, no staging, no metadata).

    .venv/bin/python bench/bench_arrange.py --shards 8 --per-shard 4000 --cores 2

Both write a fresh tree under the same temporary folder; the job's time includes
everything it does (reading the metadata, the tasks, the report and the success
metadata). Runs alternate (loop, job, loop, job, ...); the best of each is compared.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def make_shards(folder: str, n_shards: int, per_shard: int):
    """img2dataset-like tars (.jpg, .json, .txt per sample) and their metadata parquet."""
    import pandas as pd

    from curation.samples.images import generate_image

    images = [generate_image(f"b{i}", "jpg") for i in range(256)]
    os.makedirs(folder)
    rows = []
    for s in range(n_shards):
        with tarfile.open(os.path.join(folder, f"{s:05d}.tar"), "w") as tf:
            for j in range(per_shard):
                li, wnid = 200_000_000 + s * per_shard + j, f"n{1440764 + (s * per_shard + j) % 100:08d}"
                rows.append((li, wnid, f"http://127.0.0.1/img/{li}.jpg", "caption"))
                key = f"{s:05d}{j:04d}"
                for ext, data in (("jpg", images[j % 256]), ("json", json.dumps({"laion_index": li, "wnid": wnid}).encode()),
                                  ("txt", b"caption")):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
    pd.DataFrame(rows, columns=["laion_index", "wnid", "URL", "TEXT"]).to_parquet(folder + ".parquet", index=False)


def plain_loop(shards: str, target: str) -> int:
    """The floor: stream each tar, write <wnid>/<laion_index>.jpg straight away."""
    n, made = 0, set()
    for name in sorted(os.listdir(shards)):
        with tarfile.open(os.path.join(shards, name), "r|") as tf:
            image = None
            for m in tf:
                data = tf.extractfile(m).read()
                if m.name.endswith(".jpg"):
                    image = data
                elif m.name.endswith(".json"):
                    meta = json.loads(data)
                    folder = os.path.join(target, meta["wnid"])
                    if folder not in made:
                        os.makedirs(folder, exist_ok=True)
                        made.add(folder)
                    with open(os.path.join(folder, f"{meta['laion_index']}.jpg"), "wb") as fh:
                        fh.write(image)
                    n += 1
    return n


def tree_cpu() -> dict:
    """{pid: (user, system) CPU seconds} of this process and all its descendants (the Spark
    JVM, its Python daemon and workers), waited-for children included; Linux /proc."""
    children, cpu = {}, {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(pid))
        utime, stime, cutime, cstime = (int(x) / os.sysconf("SC_CLK_TCK") for x in fields[11:15])
        cpu[int(pid)] = (utime + cutime, stime + cstime)
    found, todo = {}, [os.getpid()]
    while todo:
        pid = todo.pop()
        found[pid] = cpu.get(pid, (0.0, 0.0))
        todo.extend(children.get(pid, ()))
    return found


class CpuMeter:
    """(user, system) CPU seconds the process tree spends between start() and stop(). Sampled every 0.2 s,
    because pyspark's daemon does not wait for its workers (their time is not added to a
    parent's), so a worker that exits is counted up to its last sample."""

    def start(self) -> None:
        self.first, self.last = tree_cpu(), {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.last.update(tree_cpu())

    def stop(self) -> tuple:
        self._stop.set()
        self._thread.join()
        self.last.update(tree_cpu())
        return tuple(sum(max(0.0, t[k] - self.first.get(pid, (0.0, 0.0))[k]) for pid, t in self.last.items())
                     for k in (0, 1))


def tree_listing(target: str) -> dict:
    """{relpath: size} of every file below `target`."""
    found = {}
    for folder, _, files in os.walk(target):
        for f in files:
            path = os.path.join(folder, f)
            found[os.path.relpath(path, target)] = os.path.getsize(path)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--per-shard", type=int, default=5000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from jobs.framework.config import build_config
    from jobs.laionet_arrange import ArrangeConfig
    from jobs.laionet_arrange import run as arrange
    from jobs.framework.session import create_session

    work = tempfile.mkdtemp(prefix="bench-arrange-")
    spark = None
    loads = [os.getloadavg()[0]]
    try:
        shards = os.path.join(work, "shards")
        make_shards(shards, args.shards, args.per_shard)
        total = args.shards * args.per_shard
        spark = create_session(f"local[{args.cores}]", app_name="bench-arrange")
        sc = spark.sparkContext
        # warm-up, untimed: the session's first job pays JVM class loading/JIT and starts the
        # Python workers (once per session, about 10-15 s here; nothing at millions of images)
        warm = os.path.join(work, "warm")
        make_shards(warm, args.cores, 500)
        t0 = time.perf_counter()
        plain_loop(warm, warm + "-loop")
        arrange(spark, build_config(ArrangeConfig, dict(shards=warm, metadata=warm + ".parquet",
                                                        target=warm + "-job")))
        print(f"warm-up (untimed, {args.cores} x 500 images): {time.perf_counter() - t0:.1f}s")
        loop_mode, job_mode = "plain loop (1 core)", f"arrange job ({args.cores} cores)"
        times = {loop_mode: [], job_mode: []}
        cpu = {loop_mode: [], job_mode: []}
        spark_jobs = []
        for rep in range(args.repeats):
            # alternate the order; every run writes a fresh tree (no deletes between runs:
            # ext4 without a journal skips recently freed inodes, which makes a run that
            # follows a big delete pay more per file) and starts with no dirty pages
            for mode in (loop_mode, job_mode) if rep % 2 == 0 else (job_mode, loop_mode):
                target = os.path.join(work, f"{'job' if mode == job_mode else 'loop'}-{rep}")
                cfg = build_config(ArrangeConfig, dict(shards=shards, metadata=shards + ".parquet", target=target,
                                                       target_df=os.path.join(work, f"laionet-{rep}.parquet")))
                os.sync()
                sc.setJobGroup(f"bench-{rep}", "arrange")
                meter = CpuMeter()
                meter.start()
                t0 = time.perf_counter()
                n = arrange(spark, cfg).kept if mode == job_mode else plain_loop(shards, target)
                times[mode].append(time.perf_counter() - t0)
                cpu[mode].append(meter.stop())
                assert n == total, (mode, n)
                if mode == job_mode:
                    spark_jobs.append(len(sc.statusTracker().getJobIdsForGroup(f"bench-{rep}")))
                loads.append(os.getloadavg()[0])
        # the same files with the same sizes in both trees (plus the job's sidecars beside its tree)
        assert tree_listing(os.path.join(work, "job-0")) == tree_listing(os.path.join(work, "loop-0"))
        loop_rate, job_rate = total / min(times[loop_mode]), total / min(times[job_mode])
        print(f"\n{total} images in {args.shards} tars; Spark jobs per arrange run: {spark_jobs}; "
              f"load average (1 min) {min(loads):.1f}-{max(loads):.1f}")
        for mode, ts in times.items():
            print(f"  {mode:<24} runs {', '.join(f'{t:.1f}s' for t in ts)}; best {total / min(ts):.0f} images/s")
        print(f"  job images/s per core: {job_rate / args.cores:.0f}; ratio to the plain loop: "
              f"{job_rate / args.cores / loop_rate:.2f}  (target >= 0.50)")
        paired = [lt / jt / args.cores for lt, jt in zip(times[loop_mode], times[job_mode])]
        print(f"  ratio per repeat (job run vs the loop run beside it): {', '.join(f'{r:.2f}' for r in paired)}")
        # CPU seconds (all processes) hardly depend on what else the machine runs; system time
        # is mostly the kernel creating files, which on some file systems varies run to run
        for mode, cs in cpu.items():
            print(f"  {mode:<24} CPU user+system {', '.join(f'{u:.1f}+{s:.1f}s' for u, s in cs)}; "
                  f"best {min(u + s for u, s in cs) / total * 1e6:.0f} us per image")
        best = {mode: min(u + s for u, s in cs) for mode, cs in cpu.items()}
        print(f"  images per CPU-second, job / plain loop: {best[loop_mode] / best[job_mode]:.2f}")
    finally:
        if spark is not None:
            spark.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

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
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def make_shards(folder: str, n_shards: int, per_shard: int):
    """img2dataset-like tars (.jpg, .json, .txt per sample) and their metadata parquet."""
    import pandas as pd

    from curation.sample_images import generate_image

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--per-shard", type=int, default=4000)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from jobs.config import build_config
    from jobs.laionet_arrange import ArrangeConfig
    from jobs.laionet_arrange import run as arrange
    from jobs.session import create_session

    work = tempfile.mkdtemp(prefix="bench-arrange-")
    spark = None
    try:
        shards = os.path.join(work, "shards")
        make_shards(shards, args.shards, args.per_shard)
        total = args.shards * args.per_shard
        spark = create_session(f"local[{args.cores}]", app_name="bench-arrange")
        cfg = build_config(ArrangeConfig, dict(shards=shards, metadata=shards + ".parquet",
                                               target=os.path.join(work, "job"),
                                               target_df=os.path.join(work, "laionet.parquet")))
        times = {"plain loop (1 core)": [], f"arrange job ({args.cores} cores)": []}
        for _ in range(args.repeats):
            for mode in times:
                target = os.path.join(work, "job" if mode.startswith("arrange") else "loop")
                shutil.rmtree(target, ignore_errors=True)
                t0 = time.perf_counter()
                n = arrange(spark, cfg).kept if mode.startswith("arrange") else plain_loop(shards, target)
                times[mode].append(time.perf_counter() - t0)
                assert n == total, (mode, n)
        loop_rate, job_rate = (total / min(t) for t in times.values())
        print(f"\n{total} images in {args.shards} tars")
        for mode, ts in times.items():
            print(f"  {mode:<24} runs {', '.join(f'{t:.1f}s' for t in ts)}; best {total / min(ts):.0f} images/s")
        print(f"  job images/s per core: {job_rate / args.cores:.0f}; ratio to the plain loop: "
              f"{job_rate / args.cores / loop_rate:.2f}  (target >= 0.50)")
    finally:
        if spark is not None:
            spark.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

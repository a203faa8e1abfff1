"""Download throughput: `curate laionet download` (pyspark, local[P]) vs img2dataset's own
multiprocessing mode with the same processes/threads, on the same URLs from a local server.

    .venv/bin/python bench/bench_download.py --rows 3000 --processes 2 --threads 16

The server runs in its own process (`curate sample-data images-server`) so neither side
shares a GIL with it, and every image is generated once before timing. Runs alternate
(multiprocessing, spark, multiprocessing, spark, ...); the best of each is compared.
img2dataset's start-up (spawning processes / the first Spark task importing it) is part
of both timings, as it is for a user.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.request import urlopen

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def make_metadata(base: str, rows: int, path: str) -> None:
    import pandas as pd

    from curation.samples.images import sample_url

    exts = ("jpg", "png", "webp")
    pd.DataFrame(dict(
        URL=[sample_url(base, "img", f"b{i}", exts[i % 3]) for i in range(rows)],
        TEXT=[f"caption {i}" for i in range(rows)],
        laion_index=[100_000_000 + i for i in range(rows)],
        wnid=[f"n{1440764 + i % 100:08d}" for i in range(rows)],
        NSFW="UNLIKELY", LICENSE="?", similarity=0.3)).to_parquet(path, index=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--shard-rows", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import pandas as pd
    from img2dataset import download

    from jobs.framework.config import build_config
    from jobs.laionet_download import DownloadConfig, img2dataset_kwargs
    from jobs.laionet_download import run as spark_download
    from jobs.framework.session import create_session

    work = tempfile.mkdtemp(prefix="bench-download-")
    server = subprocess.Popen([sys.executable, "-m", "jobs.framework.cli", "sample-data", "images-server"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    spark = None
    try:
        base = server.stdout.readline().strip()
        meta = os.path.join(work, "meta.parquet")
        make_metadata(base, args.rows, meta)
        with ThreadPoolExecutor(16) as pool:  # generate (and cache) every image before timing
            list(pool.map(lambda u: urlopen(u).read(), pd.read_parquet(meta).URL))
        spark = create_session(f"local[{args.processes}]", app_name="bench-download")
        cfg = build_config(DownloadConfig, dict(metadata=meta, out=os.path.join(work, "spark"),
                                                thread_count=args.threads, retries=0,
                                                number_sample_per_shard=args.shard_rows,
                                                resume=False))
        mp_kwargs = dict(img2dataset_kwargs(cfg), distributor="multiprocessing",
                         processes_count=args.processes, output_folder=os.path.join(work, "mp"))
        times = {"multiprocessing": [], "spark": []}
        for _ in range(args.repeats):
            for mode in times:
                t0 = time.perf_counter()
                if mode == "spark":
                    report = spark_download(spark, cfg)  # --no-resume: starts from an empty folder
                else:
                    shutil.rmtree(mp_kwargs["output_folder"], ignore_errors=True)
                    download(**mp_kwargs)
                times[mode].append(time.perf_counter() - t0)
        assert report.kept == args.rows, report.summary()
        best = {m: min(t) for m, t in times.items()}
        print(f"\n{args.rows} images, {args.processes} processes x {args.threads} threads, "
              f"{args.shard_rows} rows/shard")
        for mode, ts in times.items():
            print(f"  {mode:<16} runs {', '.join(f'{t:.1f}s' for t in ts)}; best {args.rows / best[mode]:.0f} images/s")
        print(f"  ratio spark/multiprocessing (best runs): {best['multiprocessing'] / best['spark']:.2f}  (target >= 0.90)")
    finally:
        if spark is not None:
            spark.stop()
        server.terminate()
        server.wait(20)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Benchmark: `curate cls` vs the original approach (one pandas regex pass per class).

    .venv/bin/python bench/bench_cls.py [--rows 1000000] [--sample 5000]

Generates `--rows` YFCC-like captions (`curate sample-data captions`), runs the cls job on
them with Spark `local[1]` (one core), and times the original approach - for each of the
1000 classes, `captions.str.contains(r'\\b(lemma|...)\\b', case=False)` - on a sample of
`--sample` captions (half before the job, half after), extrapolated linearly to `--rows`.
Both run in this process, so the ratio is measured under the same machine load. The original's labels on
the sample are checked against the job's output.
"""
import argparse
import os
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def original_labels(captions, lemmas_by_label):
    """{label: boolean mask} the way create_yfcc15m_cls.py computed it (unescaped lemmas)."""
    from curation.wordmatch import original_pattern

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return {label: captions.str.contains(original_pattern(lemmas, escape=False), case=False, na=False)
                for label, lemmas in lemmas_by_label.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=5000, help="captions the original approach is timed on")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args(argv)

    import pandas as pd

    from jobs.classes import lemmas_by_label
    from jobs.cls import ClsConfig, run_cls
    from jobs.framework.config import build_config
    from jobs.sample_captions import generate_captions
    from jobs.framework.session import create_session

    work = args.workdir or tempfile.mkdtemp(prefix="bench_cls_")
    os.makedirs(work, exist_ok=True)
    corpus_path = os.path.join(work, f"captions_{args.rows}.parquet")
    if os.path.exists(corpus_path):  # a --workdir of an earlier run: same rows (seed 0)
        corpus = pd.read_parquet(corpus_path)
    else:
        t0 = time.perf_counter()
        corpus = pd.DataFrame(list(generate_captions(args.rows, seed=0)), columns=["filepath", "caption"])
        corpus.to_parquet(corpus_path, index=False, row_group_size=100_000)
        print(f"generated {args.rows:,} captions in {time.perf_counter() - t0:.1f}s -> {corpus_path}")

    lemmas = lemmas_by_label()
    sample = corpus.caption.head(args.sample)
    half = len(sample) // 2
    spark = create_session("local[1]", app_name="bench_cls")
    try:
        # warm up the JVM and the Python worker on a tiny input (not timed)
        corpus.head(1000).to_parquet(os.path.join(work, "warmup.parquet"), index=False)
        run_cls(spark, build_config(ClsConfig, {"captions": os.path.join(work, "warmup.parquet"),
                                                "out": os.path.join(work, "warmup_cls.tsv")}))
        # the original runs on half of the sample before the job and half after, so that a
        # change of machine load during the run affects both sides alike
        t0 = time.perf_counter()
        masks = original_labels(sample.iloc[:half], lemmas)
        t_sample = time.perf_counter() - t0
        out = os.path.join(work, "bench_cls.tsv")
        t0 = time.perf_counter()
        report = run_cls(spark, build_config(ClsConfig, {"captions": corpus_path, "out": out,
                                                         "compat_unescaped": True}))
        ours = time.perf_counter() - t0
    finally:
        spark.stop()
    t0 = time.perf_counter()
    rest = original_labels(sample.iloc[half:], lemmas)
    t_sample += time.perf_counter() - t0
    masks = {label: pd.concat([masks[label], rest[label]]) for label in lemmas}
    original = t_sample * args.rows / len(sample)

    # the original's rows on the sample == the job's rows for those filepaths
    expected = sorted((f, lab) for lab, m in masks.items() for f in corpus.filepath.head(args.sample)[m])
    got = pd.read_csv(out, sep="\t", keep_default_na=False, usecols=["filepath", "label"])
    got = got[got.filepath.isin(set(corpus.filepath.head(args.sample)))]
    same = expected == sorted(zip(got.filepath, got.label))

    print(f"curate cls, local[1], {args.rows:,} captions: {ours:.1f}s "
          f"({report.info['output_rows']:,} rows, {report.kept:,} captions kept)")
    print(f"original (1000 x str.contains), {len(sample):,} captions: {t_sample:.1f}s "
          f"-> {original:.0f}s extrapolated to {args.rows:,}")
    print(f"speed-up: {original / ours:.0f}x   (labels on the sample identical: {same})")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

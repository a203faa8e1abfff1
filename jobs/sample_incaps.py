"""`curate sample-data imagenet-captions`: a small ImageNet-Captions root for tests and demos.

Writes `<out>/imagenet-captions/imagenet_captions.json` (see `curation/samples/incaps.py`
for what makes it realistic) and `<out>/imagenet/train/<wnid>/<filename>` (tiny JPEGs), so
`--out` can be passed as `--root` to `curate incaps captions`. The JSON is written last,
under a temporary name then put in place, so it exists only when the image tree is complete.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from curation.errors import ConfigError
from jobs.framework.base import Job, main_for
from jobs.framework.config import opt


@dataclass
class SampleIncapsConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"out": "output_dir"}
    out: str = opt(None, "output root (local directory)", required=True)
    classes: int = opt(20, "number of classes (a seeded sample of the 1000)")
    per_class_max: int = opt(50, "entries of the largest class (sizes fall geometrically to 1, and one class is empty)")
    seed: int = opt(0, "random seed: same seed, same data")
    images: bool = opt(True, "write the train/<wnid>/<filename> JPEG tree")

    def validate(self) -> None:
        if not 1 <= self.classes <= 1000:
            raise ConfigError("classes", f"must be in 1..1000, got {self.classes}")
        if self.per_class_max < 1:
            raise ConfigError("per_class_max", f"must be >= 1, got {self.per_class_max}")


def run(_spark, cfg: SampleIncapsConfig) -> str:
    from curation import concepts
    from curation.samples.incaps import entries_json, generate_entries, tiny_jpeg
    from curation.sampling import stable_sample
    from jobs.io.output import write_bytes_via_tmp

    all_wnids = concepts.wnids()
    wnids = sorted(stable_sample(all_wnids, cfg.classes, cfg.seed, "sample-classes"))
    entries = generate_entries(wnids, cfg.per_class_max, cfg.seed,
                               dict(zip(all_wnids, concepts.classnames())))
    if cfg.images:
        train = os.path.join(cfg.out, "imagenet", "train")
        for wnid in wnids:
            os.makedirs(os.path.join(train, wnid), exist_ok=True)
        jpegs = {wnid: tiny_jpeg(cfg.seed * 1000 + i) for i, wnid in enumerate(wnids)}
        for e in entries:
            with open(os.path.join(train, e["wnid"], e["filename"]), "wb") as fh:
                fh.write(jpegs[e["wnid"]])
    meta_dir = os.path.join(cfg.out, "imagenet-captions")
    os.makedirs(meta_dir, exist_ok=True)
    path = os.path.join(meta_dir, "imagenet_captions.json")
    # the one temporary-file scheme (<path>.__tmp-<id>, then replace_path); not an output
    # of its own: it lies in the --out folder this job adds to
    write_bytes_via_tmp(None, path, entries_json(entries).encode("utf-8"))
    info = {"entries": len(entries), "classes": len(wnids), "seed": cfg.seed}
    print(f"wrote {path} ({json.dumps(info)})")
    return path


JOB = Job(command=("sample-data", "imagenet-captions"), config=SampleIncapsConfig, run=run,
          needs_spark=False,
          help="generated imagenet_captions.json + train/<wnid>/<filename> JPEGs (a --root for incaps jobs)")

if __name__ == "__main__":
    main_for(JOB)

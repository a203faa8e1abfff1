"""`curate sample-data laion`: LAION-400M-schema parquet parts with realistic captions.

For tests, benchmarks and the demo. The parts look like the real ones (file names
`part-NNNNN-<uuid>-c000.snappy.parquet`, the LAION columns and types, several row
groups); captions and URLs are described in `curation/samples/laion.py`. The output is
written with pyarrow (no Spark needed) under a temporary name and renamed into place,
with `_config.yaml` and `_report.json` inside as for every stage.
"""
from __future__ import annotations

import hashlib
import sys
import uuid
from dataclasses import dataclass

from curation.concepts import LEMMA_MAP_HELP, LEMMA_MAPS, check_lemma_map
from curation.errors import ConfigError
from curation.laion import part_file_name
from curation.report import StageReport
from jobs.framework.base import Job, main_for
from jobs.framework.config import opt


@dataclass
class SampleLaionConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"lemma_map": "input", "out": "output"}
    #: values of an input that name a packaged resource, not a path
    PATH_NAMES = {"lemma_map": LEMMA_MAPS}
    out: str = opt(None, "output directory (local path or a pyarrow file-system URI)", required=True)
    rows: int = opt(10_000, "rows in all")
    parts: int = opt(2, "number of part files")
    seed: int = opt(0, "random seed: same seed, same data")
    image_base_url: str = opt("http://127.0.0.1:8000", "base of the image URLs ({base}/{kind}/{key}.{ext})")
    row_group_rows: int = opt(100_000, "rows per parquet row group")
    first_part: int = opt(0, "number of the first part")
    lemma_map: str = opt("standard", "the lemmas the captions use; " + LEMMA_MAP_HELP)

    def validate(self) -> None:
        check_lemma_map(self.lemma_map)
        if self.rows < 0:
            raise ConfigError("rows", f"must be >= 0, got {self.rows}")
        if self.parts < 1:
            raise ConfigError("parts", f"must be >= 1, got {self.parts}")
        if self.row_group_rows < 1:
            raise ConfigError("row_group_rows", f"must be >= 1, got {self.row_group_rows}")
        if self.first_part < 0:
            raise ConfigError("first_part", f"must be >= 0, got {self.first_part}")


def dataset_uuid(seed: int) -> str:
    """The uuid in the part file names: fixed by the seed, so names are reproducible."""
    return str(uuid.UUID(bytes=hashlib.blake2b(f"sample-laion/{seed}".encode(), digest_size=16).digest(), version=4))


def run(_spark, cfg: SampleLaionConfig) -> StageReport:
    import pyarrow.parquet as pq

    from curation.concepts import load_lemma_map
    from curation.samples.laion import SampleLaion, laion_schema, rows_per_part
    from jobs.io.output import atomic_dir
    from udfs import files

    generator = SampleLaion(load_lemma_map(cfg.lemma_map, read_text=files.read_text), cfg.seed, cfg.image_base_url)
    name_uuid = dataset_uuid(cfg.seed)
    report = StageReport("sample-data laion", balanced=False,
                         info={"parts": cfg.parts, "seed": cfg.seed, "why_unbalanced": "a generator reads nothing"})
    with atomic_dir(None, cfg.out, cfg, report) as tmp:  # the one output scheme, without a session
        fs, tmp_root = files.fs_for(tmp)
        fs.makedirs(tmp_root)
        for i, n in enumerate(rows_per_part(cfg.rows, cfg.parts)):
            part = cfg.first_part + i
            with fs.open(f"{tmp_root}/{part_file_name(part, name_uuid)}", "wb") as sink:
                with pq.ParquetWriter(sink, laion_schema(), compression="snappy") as writer:
                    for table in generator.chunks(part, n, cfg.row_group_rows):
                        writer.write_table(table, row_group_size=cfg.row_group_rows)
            report.kept += n
    print(f"{report.summary()} in {cfg.parts} part(s) -> {cfg.out}", file=sys.stdout)
    return report


JOB = Job(command=("sample-data", "laion"), config=SampleLaionConfig, run=run, needs_spark=False,
          help="Write LAION-schema parquet parts with realistic captions (tests, benchmarks, demo)")

if __name__ == "__main__":
    main_for(JOB)

"""`curate sample-data images-server`: serve generated sample images on 127.0.0.1.

For trying `curate laionet download` by hand and for benchmarks that keep the server out
of the measured process. Prints the base URL on its first line (flushed), then serves
until `--seconds` have passed or Ctrl-C. URL scheme: `curation/samples/images.py`.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from curation.errors import ConfigError
from jobs.framework.base import Job, main_for
from jobs.framework.config import opt


@dataclass
class ImagesServerConfig:
    port: int = opt(0, "port on 127.0.0.1 (0: a free one)")
    seconds: float = opt(0.0, "stop after this many seconds (0: serve until Ctrl-C)")
    stall_seconds: float = opt(2.0, "how long /timeout/ URLs stay silent")
    huge_side: int = opt(4000, "side in pixels of the /huge/ image")

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("port", f"must be 0..65535, got {self.port}")
        if self.seconds < 0:
            raise ConfigError("seconds", f"must be >= 0, got {self.seconds}")


def run(_spark, cfg: ImagesServerConfig) -> None:
    from curation.samples.images import SampleImageServer

    with SampleImageServer(port=cfg.port, stall_seconds=cfg.stall_seconds, huge_side=cfg.huge_side) as srv:
        print(srv.base_url, flush=True)
        print(f"serving {srv.base_url}/<img|404|timeout|text|redirect|huge|noai>/<key>.<jpg|png|webp>",
              file=sys.stderr, flush=True)
        deadline = time.monotonic() + cfg.seconds if cfg.seconds else None
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass


JOB = Job(command=("sample-data", "images-server"), config=ImagesServerConfig, run=run,
          help="serve generated sample images (and failing URLs) on 127.0.0.1 for download tests",
          needs_spark=False)

if __name__ == "__main__":
    main_for(JOB)

"""Stage reports: what a stage read, kept and dropped (and why).

Every stage writes one next to its output; `read == kept + sum(dropped)` is checked
before the report is written, so nothing is lost silently.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Dict


#: when the running stage started (`start_stage_clock`, called by the job runner and by
#: `laionet run` per stage); written reports then carry `seconds`, the stage's time so far
_CLOCK = {"start": None}


def start_stage_clock() -> None:
    _CLOCK["start"] = time.time()


@dataclass
class StageReport:
    stage: str
    read: int = 0
    kept: int = 0
    dropped: Dict[str, int] = field(default_factory=dict)
    #: free-form facts (output paths, frequency file, counts that are not rows, ...)
    info: Dict[str, Any] = field(default_factory=dict)
    #: when False the stage does not claim read == kept + dropped (e.g. one-to-many stages)
    balanced: bool = True

    def drop(self, reason: str, n: int) -> None:
        if n:
            self.dropped[reason] = self.dropped.get(reason, 0) + int(n)

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    def check(self) -> None:
        if self.balanced and self.read != self.kept + self.n_dropped:
            raise AssertionError(
                f"stage {self.stage}: read {self.read} != kept {self.kept} + dropped "
                f"{self.n_dropped} {self.dropped}; rows were lost"
            )

    def to_dict(self) -> Dict[str, Any]:
        return {
            "stage": self.stage,
            "read": int(self.read),
            "kept": int(self.kept),
            "dropped": {k: int(v) for k, v in sorted(self.dropped.items())},
            "balanced": self.balanced,
            "info": self.info,
        }

    def to_json(self) -> str:
        self.check()
        data = self.to_dict()
        if _CLOCK["start"] is not None:
            data["seconds"] = round(time.time() - _CLOCK["start"], 1)
        return json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"

    def summary(self) -> str:
        parts = [f"[{self.stage}] read {self.read:,}", f"kept {self.kept:,}"]
        if self.dropped:
            parts.append("dropped " + ", ".join(f"{k}={v:,}" for k, v in sorted(self.dropped.items())))
        return "; ".join(parts)

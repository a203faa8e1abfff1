"""Live progress of Spark work on the terminal: one line, rewritten in place on stderr.

    [similarity] save: 12/64 tasks (2 running), 0.8 tasks/s, ETA 1m05s, 40s in

A daemon thread on the driver polls Spark's status tracker (no Spark listener, no UI
needed) twice a second and shows the running stages of the current job once they have run
for `DELAY` seconds. It is off when stderr is not a terminal (logs and pipes stay clean),
with `--quiet`, and while `paused()` (img2dataset prints its own progress lines). The
label says which step is running (`set_label`: the job's name, or `laionet run`'s stage).
"""
from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Dict, Iterator, Optional, TextIO

#: seconds a stage runs before its line appears; seconds between updates
DELAY = 2.0
INTERVAL = 0.5

_STATE = {"quiet": False, "label": "", "paused": 0}


def set_quiet(quiet: bool) -> None:
    _STATE["quiet"] = bool(quiet)


def set_label(label: str) -> None:
    _STATE["label"] = label


def enabled(stream: Optional[TextIO] = None) -> bool:
    stream = stream or sys.stderr
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty and not _STATE["quiet"]


@contextmanager
def paused() -> Iterator[None]:
    """No progress line inside (another tool prints its own progress)."""
    _STATE["paused"] += 1
    try:
        yield
    finally:
        _STATE["paused"] -= 1


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def format_line(label: str, stages: list, now: float, first_seen: Dict[int, float]) -> str:
    """The line for the running stages [(id, name, total, done, running)] (pure, for tests)."""
    parts = []
    for stage_id, name, total, done, running in stages:
        started = first_seen.get(stage_id, now)
        elapsed = max(now - started, 1e-6)
        rate = done / elapsed
        eta = f", ETA {_duration((total - done) / rate)}" if done and rate > 0 else ""
        what = name.split(" at ")[0] or f"stage {stage_id}"
        parts.append(f"{what}: {done}/{total} tasks ({running} running), {rate:.1f} tasks/s{eta}, "
                     f"{_duration(elapsed)} in")
    return f"[{label or 'spark'}] " + "; ".join(parts)


class ProgressLine:
    def __init__(self, sc, stream: Optional[TextIO] = None):
        self.sc = sc
        self.stream = stream or sys.stderr
        self.first_seen: Dict[int, float] = {}
        self.shown = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="curation-progress", daemon=True)

    def start(self) -> "ProgressLine":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * INTERVAL + 1)
        self._clear()

    def _clear(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * self.shown + "\r")
            self.stream.flush()
            self.shown = 0

    def _stages(self):
        tracker = self.sc.statusTracker()
        found = []
        for stage_id in sorted(tracker.getActiveStageIds()):
            info = tracker.getStageInfo(stage_id)
            if info is None:
                continue
            found.append((stage_id, info.name, info.numTasks, info.numCompletedTasks, info.numActiveTasks))
        return found

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL):
            try:
                stages = [] if _STATE["paused"] else self._stages()
            except Exception:  # noqa: BLE001 - the context is stopping: nothing to show
                stages = []
            now = time.time()
            for s in stages:
                self.first_seen.setdefault(s[0], now)
            visible = [s for s in stages if now - self.first_seen[s[0]] >= DELAY]
            if not visible:
                self._clear()
                continue
            line = format_line(_STATE["label"], visible, now, self.first_seen)
            width = 200
            line = line[:width]
            pad = max(self.shown - len(line), 0)
            self.stream.write("\r" + line + " " * pad)
            self.stream.flush()
            self.shown = len(line)


@contextmanager
def progress(spark, label: Optional[str] = None) -> Iterator[None]:
    """Show live progress of `spark`'s jobs inside the block (when `enabled()`)."""
    if label is not None:
        set_label(label)
    if spark is None or not enabled():
        yield
        return
    line = ProgressLine(spark.sparkContext).start()
    try:
        yield
    finally:
        line.stop()

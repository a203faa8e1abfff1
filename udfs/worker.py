"""One loader for what a Python worker builds once and reuses: lemma and word matchers,
text encoders, GPU search kernels, the query chunk a search task holds.

Spark reuses Python workers across tasks (`spark.python.worker.reuse`, on in every
session we create), so an object built on first use and kept in this process serves every
later task of the job. The key is computed on the driver and shipped with the task (a
small hashable value: a digest of a lemma map, an encoder spec); equal keys mean an equal
object. Objects that share a `slot` replace each other: only the last one is kept (a
search task's query chunk: the chunks' searches run one after the other).
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Hashable, Optional, TypeVar

T = TypeVar("T")

_OBJECTS: Dict[Hashable, Any] = {}
_SLOTS: Dict[str, Hashable] = {}
# held while building: two threads of one worker (an iterator UDF's writer and reader)
# never build the same model twice
_LOCK = threading.RLock()


def on_worker(key: Hashable, build: Callable[[], T], slot: Optional[str] = None) -> T:
    """This process's object for `key`, made by `build()` the first time it is asked for."""
    with _LOCK:
        if key in _OBJECTS:
            return _OBJECTS[key]
        if slot is not None and slot in _SLOTS:
            _OBJECTS.pop(_SLOTS.pop(slot), None)  # free the slot's previous object first
        obj = _OBJECTS[key] = build()
        if slot is not None:
            _SLOTS[slot] = key
        return obj


def forget(key: Hashable) -> None:
    """Drop `key`'s object (tests; a failed build leaves nothing behind by itself)."""
    with _LOCK:
        _OBJECTS.pop(key, None)
        for slot in [s for s, k in _SLOTS.items() if k == key]:
            del _SLOTS[slot]

"""Lemma matching per Arrow batch, for `DataFrame.mapInArrow`.

The Aho-Corasick automaton is built once per executor Python worker (workers are reused
across tasks) and cached under a key computed on the driver from the mode and the lemma
map, so tasks only ship the key and the map, and a worker never rebuilds it.

Caption counts (read, null, empty, matched) are added to a Spark accumulator per batch:
the matcher computes them anyway, and Spark applies a result task's accumulator updates
once per partition even when the task is retried (the jobs write without a shuffle, so
the matching runs in the result stage).
"""
from __future__ import annotations

import hashlib
import json
from typing import Callable, Dict, Iterable, Iterator, Mapping, Tuple

import numpy as np
import pyarrow as pa

from pyspark.accumulators import AccumulatorParam

from curation.laion import INDEX_COLUMN, TEXT_COLUMN
from curation.matching import MATCH_MODES, PAD_AFTER, PAD_BEFORE, CaptionMatches, LemmaMatcher

_MATCHERS: Dict[str, LemmaMatcher] = {}

BatchFunction = Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]


def matcher_key(lemma_to_wnid: Mapping[str, str], mode: str) -> str:
    """A stable key for (mode, lemma map): equal maps give equal keys on every machine."""
    payload = json.dumps([mode, sorted(lemma_to_wnid.items())], ensure_ascii=False)
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


def cached_matcher(key: str, lemma_to_wnid: Mapping[str, str], mode: str) -> LemmaMatcher:
    """This worker's matcher for `key`, built on first use."""
    matcher = _MATCHERS.get(key)
    if matcher is None:
        matcher = _MATCHERS[key] = LemmaMatcher(lemma_to_wnid, mode)
    return matcher


class CaptionCounts(AccumulatorParam):
    """Accumulates {count name: n} dicts (see `caption_counts`)."""

    def zero(self, value: Dict[str, int]) -> Dict[str, int]:
        return {}

    def addInPlace(self, a: Dict[str, int], b: Dict[str, int]) -> Dict[str, int]:
        for k, v in b.items():
            a[k] = a.get(k, 0) + v
        return a


def caption_counts(found: CaptionMatches) -> Dict[str, int]:
    """What a batch held: captions read, null, empty, with a match; (caption, lemma) pairs."""
    return {"read": found.n_captions, "null_caption": found.n_null, "empty_caption": found.n_empty,
            "matched": found.n_matched, "pairs": len(found.rows)}


#: the column of captions padded in the JVM (`padded_text_column`), when the mode allows it
PADDED_TEXT_COLUMN = "_padded_text"


def padded_text_column(mode: str):
    """The captions padded in the JVM (`PAD_BEFORE || TEXT || PAD_AFTER`, null stays
    null) as a Spark column named `PADDED_TEXT_COLUMN`, for modes whose matcher takes
    them (`LemmaMatcher.match_padded`), else None. Spark pads as it copies the rows into
    Arrow, with CPU time to spare while the Python worker matches: ~10% less Python
    time per caption."""
    from pyspark.sql import functions as F

    if not MATCH_MODES[mode].takes_padded:
        return None
    return F.concat(F.lit(PAD_BEFORE), F.col(TEXT_COLUMN), F.lit(PAD_AFTER)).alias(PADDED_TEXT_COLUMN)


def _matches(batch: pa.RecordBatch, matcher: LemmaMatcher, counts) -> CaptionMatches:
    if PADDED_TEXT_COLUMN in batch.schema.names:
        found = matcher.match_padded(batch.column(PADDED_TEXT_COLUMN))
    else:
        found = matcher.match_arrow(batch.column(TEXT_COLUMN))
    if found.n_captions != batch.num_rows:
        raise AssertionError(f"matcher saw {found.n_captions} captions in a batch of {batch.num_rows}")
    counts.add(caption_counts(found))
    return found


def label_batches(lemma_to_wnid: Mapping[str, str], mode: str, counts) -> BatchFunction:
    """mapInArrow function: (laion_index, TEXT or `PADDED_TEXT_COLUMN`) -> one row per
    (caption, lemma) found: (laion_index, wnid, lemma), wnid and lemma dictionary-encoded
    (for `jobs.output.write_parquet_in_tasks`, which decodes them for Spark's writer).
    `counts`: an accumulator of `CaptionCounts`."""
    key = matcher_key(lemma_to_wnid, mode)
    lemma_to_wnid = dict(lemma_to_wnid)

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        matcher = cached_matcher(key, lemma_to_wnid, mode)
        lemmas, wnids = _lemma_arrays(matcher)
        for batch in batches:
            found = _matches(batch, matcher, counts)
            ids = pa.array(found.lemma_ids)
            yield pa.RecordBatch.from_arrays(
                [pa.array(np.asarray(batch.column(INDEX_COLUMN))[found.rows]),
                 pa.DictionaryArray.from_arrays(ids, wnids),  # no string copies
                 pa.DictionaryArray.from_arrays(ids, lemmas)],
                names=[INDEX_COLUMN, "wnid", "lemma"])

    return run


def subset_batches(lemma_to_wnid: Mapping[str, str], mode: str, counts) -> BatchFunction:
    """mapInArrow function: LAION rows -> the rows with at least one match, all columns
    kept, plus `wnids` and `lemmas` (sorted distinct lists). `counts` as for labels."""
    key = matcher_key(lemma_to_wnid, mode)
    lemma_to_wnid = dict(lemma_to_wnid)

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        matcher = cached_matcher(key, lemma_to_wnid, mode)
        lemmas, _ = _lemma_arrays(matcher)
        for batch in batches:
            found = _matches(batch, matcher, counts)
            starts = np.flatnonzero(np.diff(found.rows, prepend=-1))  # rows are sorted
            rows = found.rows[starts]
            offsets = pa.array(np.append(starts, len(found.rows)).astype(np.int32))
            # lemma ids are sorted per row and index the sorted lemma list: already sorted
            lemma_lists = pa.ListArray.from_arrays(offsets, lemmas.take(pa.array(found.lemma_ids)))
            wnid_lists = pa.array(
                [sorted({matcher.wnids[i] for i in found.lemma_ids[a:b]})
                 for a, b in zip(starts, np.append(starts[1:], len(found.rows)))],
                pa.list_(pa.string()))
            kept = batch.take(pa.array(rows))
            yield pa.RecordBatch.from_arrays(
                list(kept.columns) + [wnid_lists, lemma_lists],
                names=list(kept.schema.names) + ["wnids", "lemmas"])

    return run


def _lemma_arrays(matcher: LemmaMatcher) -> Tuple[pa.Array, pa.Array]:
    return pa.array(matcher.lemmas, pa.string()), pa.array(matcher.wnids, pa.string())


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
from typing import Callable, Dict, Iterable, Iterator, Mapping, Optional, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pyspark.accumulators import AccumulatorParam

from curation.laion import INDEX_COLUMN, TEXT_COLUMN
from curation.matching import MATCH_MODES, PAD_AFTER, PAD_BEFORE, CaptionMatches, LemmaMatcher
from udfs.worker import on_worker

BatchFunction = Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]


def matcher_key(lemma_to_wnid: Mapping[str, str], mode: str) -> str:
    """A stable key for (mode, lemma map): equal maps give equal keys on every machine."""
    payload = json.dumps([mode, sorted(lemma_to_wnid.items())], ensure_ascii=False)
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


def cached_matcher(key: str, lemma_to_wnid: Mapping[str, str], mode: str) -> LemmaMatcher:
    """This worker's lemma matcher for `key` (`udfs.worker.on_worker`)."""
    return on_worker(("lemma-matcher", key), lambda: LemmaMatcher(lemma_to_wnid, mode))


def word_matcher(key):
    """This worker's whole-word class matcher for a `curation.wordmatch.matcher_key`."""
    from curation.wordmatch import matcher_from_key

    return on_worker(("word-matcher", key), lambda: matcher_from_key(key))


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
    (for `jobs.io.output.write_parquet_in_tasks`, which decodes them for Spark's writer).
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


# ---------------------------------------------------------------- ImageNet classes of captions (cls, freq)
#: `n` of a `jobs.classes.match_classes` row that is not a (row, class) pair: why the row has no class
NO_CLASS, NO_CAPTION, BAD_PATH = 0, -1, -2


def class_batches(key, caption_col: str, path_col: Optional[str]) -> BatchFunction:
    """mapInArrow function of `jobs.classes.match_classes`: per Arrow batch, one row per
    (row, class its caption mentions) + `label` + `n`, then the rows without class with
    null columns and `n` = NO_CLASS / NO_CAPTION / BAD_PATH."""
    def run(batches):
        matcher = word_matcher(key)
        for batch in batches:
            captions = batch.column(caption_col)
            blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(captions), ""), True)
            status = np.where(blank.to_numpy(zero_copy_only=False), NO_CAPTION, NO_CLASS)
            if path_col is not None:
                path = batch.column(path_col)
                bad = pc.fill_null(pc.or_(pc.equal(path, ""), pc.match_substring_regex(path, "[\t\r\n]")), True)
                status[bad.to_numpy(zero_copy_only=False)] = BAD_PATH
            usable = np.flatnonzero(status == NO_CLASS)
            rows, labels = matcher.match_batch(captions.take(pa.array(usable)).to_pylist())
            rows = usable[rows]
            n = np.bincount(rows, minlength=batch.num_rows)
            taken = batch.take(pa.array(rows, pa.int64()))
            yield pa.RecordBatch.from_arrays(
                taken.columns + [pa.array(labels, pa.int32()), pa.array(n[rows], pa.int32())],
                names=batch.schema.names + ["label", "n"])
            without = np.flatnonzero(n == 0)
            yield pa.RecordBatch.from_arrays(
                [pa.nulls(len(without), f.type) for f in batch.schema] + [pa.nulls(len(without), pa.int32()),
                                                                          pa.array(status[without], pa.int32())],
                names=batch.schema.names + ["label", "n"])

    return run

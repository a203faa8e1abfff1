"""Finding the lemmas of a lemma map in captions (LAIONet step 1), without Spark.

A caption matches a lemma when `" " + lemma + " "` occurs in `" " + caption + " "`
after both have been normalised by the mode's rules:

- `laionet` reproduces the original pipeline exactly: case-sensitive; every character
  of Python's `string.punctuation` in the caption becomes a space; lemmas are used as
  they are (so the 64 reference lemmas with punctuation, `U-boat`, `R.V.`, never match);
  other whitespace (tabs, newlines) is *not* a space.
- `normalized`: captions and lemmas alike are Unicode-NFKC-normalised, lower-cased, every
  punctuation or symbol character (Unicode categories P* and S*, which include all of
  `string.punctuation`) becomes a space, and runs of whitespace become one space, so
  `U-boat`, `jack-o'-lantern` and `R.V.` match "u boat", "Jack O' Lantern", "R.V.".

Why it is fast: instead of testing every lemma against every caption (the original
per-row loop), a batch of captions is joined into one byte string
`" cap0 \\0 cap1 \\0 ..."` (the Arrow data buffer of the padded captions) and scanned
once by an Aho-Corasick automaton holding all patterns (`ahocorasick_rs`, about twice
as fast as pyahocorasick here). The scan runs on UTF-8 bytes: UTF-8 is
self-synchronising, so a valid UTF-8 pattern matches bytes exactly where the string
matches characters. No pattern contains NUL, so no match spans two captions, and the row
of a match is found from the Arrow offsets with one `searchsorted`. In `laionet` mode
the punctuation replacement is a 256-byte table over that buffer: ASCII bytes never
occur inside a multi-byte UTF-8 sequence, so this equals `str.translate` on characters.

The scan itself has two engines with identical results (every occurrence of every
pattern, overlapping ones included):
- `hyperscan` (Intel's SIMD literal matcher, x86-64 wheels on PyPI): scanning is ~25x
  faster than the automaton below; what remains is one Python callback per match. Used
  when the package imports.
- `ahocorasick` (`ahocorasick_rs`, any platform): the fallback.
`LemmaMatcher(..., engine=)` picks one; "auto" takes hyperscan when available.

The matcher is general: a mode is a caption normaliser plus a lemma normaliser (both
Arrow -> Arrow); a whole-word case-insensitive mode would be a third pair.
"""
from __future__ import annotations

import itertools
import string
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MODES = ("laionet", "normalized")

#: bytes.translate table of `laionet` mode: ASCII punctuation -> space
_LAIONET_BYTE_TABLE = bytes(
    0x20 if chr(b) in string.punctuation else b for b in range(256)
)
#: separates captions in the scanned string; no lemma contains it
_SEPARATOR = "\x00"
#: every caption is scanned as PAD_BEFORE + caption + PAD_AFTER, all of them in one string
PAD_BEFORE = " "
PAD_AFTER = " " + _SEPARATOR

ArrowTransform = Callable[[pa.Array], pa.Array]


def _identity(values: pa.Array) -> pa.Array:
    return values


def normalize_text(values: pa.Array) -> pa.Array:
    """The `normalized` mode's rule (applied to captions and lemmas alike)."""
    values = pc.utf8_normalize(values, form="NFKC")
    values = pc.utf8_lower(values)
    values = pc.replace_substring_regex(values, pattern=r"[\p{P}\p{S}]", replacement=" ")
    values = pc.replace_substring_regex(values, pattern=r"[\s\p{Z}]+", replacement=" ")
    return pc.utf8_trim(values, characters=" ")


@dataclass(frozen=True)
class MatchMode:
    """How captions and lemmas are normalised before `" lemma "` is looked up in `" caption "`."""
    name: str
    #: Arrow-level transform of the captions (before padding)
    caption_transform: ArrowTransform
    #: Arrow-level transform of the lemmas (once, when the automaton is built)
    lemma_transform: ArrowTransform
    #: bytes.translate table applied to the UTF-8 bytes of the padded captions, or None
    byte_table: Optional[bytes] = None

    @property
    def takes_padded(self) -> bool:
        """Captions are not transformed as strings, so they may be padded before the
        matcher sees them (`LemmaMatcher.match_padded`)."""
        return self.caption_transform is _identity


MATCH_MODES: Dict[str, MatchMode] = {
    "laionet": MatchMode("laionet", _identity, _identity, _LAIONET_BYTE_TABLE),
    "normalized": MatchMode("normalized", normalize_text, normalize_text),
}


@dataclass
class CaptionMatches:
    """The distinct (row, lemma) pairs found in a batch of captions, sorted by row then lemma."""
    #: row position of each pair in the batch (int64)
    rows: np.ndarray
    #: index of each pair's lemma into `LemmaMatcher.lemmas` (int32)
    lemma_ids: np.ndarray
    #: captions in the batch
    n_captions: int
    #: null captions (they match nothing)
    n_null: int = 0
    #: empty-string captions
    n_empty: int = 0
    #: values that are not strings (Python input only; Arrow columns are typed)
    n_not_string: int = 0

    @property
    def n_matched(self) -> int:
        """How many rows have at least one match (`rows` is sorted: no sort needed)."""
        return int(np.count_nonzero(self.rows[1:] != self.rows[:-1])) + 1 if len(self.rows) else 0


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """`np.unique` of a 1-d integer array by sort and compare: numpy 2.3+'s hash-based
    `unique` is ~8x slower on the few thousand keys of a batch."""
    values = np.sort(values)
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


class LemmaMatcher:
    """All lemmas of a {lemma: wnid} map in one Aho-Corasick automaton (built once).

    `match_arrow(text)` / `match(captions)` return the distinct (row, lemma) pairs.
    """

    def __init__(self, lemma_to_wnid: Mapping[str, str], mode: str = "laionet", engine: str = "auto"):
        if mode not in MATCH_MODES:
            raise ValueError(f"unknown matching mode {mode!r}; known: {', '.join(MODES)}")
        self.mode = MATCH_MODES[mode]
        self.lemmas: List[str] = sorted(lemma_to_wnid)
        self.wnids: List[str] = [lemma_to_wnid[lemma] for lemma in self.lemmas]
        normalized = self.mode.lemma_transform(pa.array(self.lemmas, pa.string())).to_pylist()

        # several lemmas may normalise to one pattern ("Cardigan"/"cardigan" in normalized mode)
        pattern_lemmas: Dict[str, List[int]] = {}
        for lemma_id, text in enumerate(normalized):
            if text and _SEPARATOR not in text:
                pattern_lemmas.setdefault(f" {text} ", []).append(lemma_id)
        self.patterns: List[str] = sorted(pattern_lemmas)
        # pattern id -> its lemma ids, as flat arrays: lemma ids of pattern p are
        # _flat_lemma_ids[_lemma_start[p] : _lemma_start[p] + _n_lemmas[p]]
        self._n_lemmas = np.array([len(pattern_lemmas[p]) for p in self.patterns], dtype=np.int64)
        self._lemma_start = np.concatenate([[0], np.cumsum(self._n_lemmas)[:-1]]).astype(np.int64)
        self._flat_lemma_ids = np.array([i for p in self.patterns for i in pattern_lemmas[p]], dtype=np.int32)
        self._one_lemma_per_pattern = bool((self._n_lemmas == 1).all())
        self._scanner = make_scanner([p.encode("utf-8") for p in self.patterns], engine)
        self.engine = self._scanner.name
        #: lemmas that no caption can match in this mode (e.g. `U-boat` under `laionet`)
        self.unmatchable: List[str] = [self.lemmas[i] for i, text in enumerate(normalized)
                                       if not self._can_match(text)]

    def _can_match(self, normalized_lemma: Optional[str]) -> bool:
        """Whether some caption can contain the pattern after the caption rules."""
        if not normalized_lemma or _SEPARATOR in normalized_lemma:
            return False
        if self.mode.byte_table is None:
            return True
        raw = normalized_lemma.encode("utf-8")
        return raw.translate(self.mode.byte_table) == raw

    def __len__(self) -> int:
        return len(self.lemmas)

    def match(self, captions: Sequence) -> CaptionMatches:
        """Matches in a Python sequence of captions; anything not a str matches nothing."""
        strings = [c if isinstance(c, str) else None for c in captions]
        n_not_string = sum(1 for c in captions if c is not None and not isinstance(c, str))
        result = self.match_arrow(pa.array(strings, pa.string()))
        result.n_null -= n_not_string
        result.n_not_string = n_not_string
        return result

    def match_arrow(self, text: pa.Array) -> CaptionMatches:
        """Matches in an Arrow string array (null and empty captions match nothing)."""
        text = _string_array(text, "captions")
        n_empty = int(pc.sum(pc.equal(text, "")).as_py() or 0)
        text = self.mode.caption_transform(text)

        def scalar(value: str) -> pa.Scalar:
            return pa.scalar(value, text.type)

        # a null caption becomes an empty one: "  \0", which no pattern matches
        padded = pc.binary_join_element_wise(scalar(PAD_BEFORE), text, scalar(PAD_AFTER), scalar(""),
                                             null_handling="replace", null_replacement="")
        haystack, offsets = self._haystack(padded)
        return self._match_haystack(haystack, offsets, len(text), text.null_count, n_empty)

    def match_padded(self, padded: pa.Array) -> CaptionMatches:
        """Matches in captions already padded by the caller as `PAD_BEFORE + caption +
        PAD_AFTER` (a null caption stays null), e.g. by Spark's `concat` in the JVM: the
        Arrow data buffer is then the scanned string as it is, with no copy into a new
        array (the padding is ~15% of the matcher's time). Same result as `match_arrow`
        on the unpadded captions; modes that transform captions (`normalized`) cannot
        take padded input."""
        if not self.mode.takes_padded:
            raise ValueError(f"matching mode {self.mode.name!r} transforms captions: use match_arrow")
        padded = _string_array(padded, "padded captions")
        offsets = _offsets(padded)
        lengths = np.diff(offsets)
        valid = np.ones(len(padded), dtype=bool) if padded.null_count == 0 else \
            np.asarray(padded.is_valid().to_numpy(zero_copy_only=False))
        if padded.null_count and lengths[~valid].any():  # null slots that hold bytes
            padded = pc.fill_null(padded, PAD_BEFORE + PAD_AFTER)
            offsets = _offsets(padded)
        pad = len(PAD_BEFORE) + len(PAD_AFTER)
        n_empty = int(np.count_nonzero(valid & (lengths == pad)))
        haystack, offsets = self._haystack(padded, offsets)
        starts, ends = offsets[:-1][valid], offsets[1:][valid]
        view = np.frombuffer(haystack, dtype=np.uint8)
        if len(starts) and not ((lengths[valid] >= pad).all() and (view[starts] == ord(PAD_BEFORE)).all()
                                and all((view[ends - len(PAD_AFTER) + i] == ord(c)).all()
                                        for i, c in enumerate(PAD_AFTER))):
            raise ValueError("captions are not padded as PAD_BEFORE + caption + PAD_AFTER")
        return self._match_haystack(haystack, offsets, len(padded), padded.null_count, n_empty)

    def _haystack(self, padded: pa.Array, offsets: Optional[np.ndarray] = None) -> Tuple[bytes, np.ndarray]:
        """The padded captions' bytes as one string (the mode's byte table applied), and
        each caption's start offset in it (plus the end)."""
        if offsets is None:
            offsets = _offsets(padded)
        data = padded.buffers()[2]
        raw = data[offsets[0]: offsets[-1]].to_pybytes() if data is not None else b""
        if self.mode.byte_table is not None:
            raw = raw.translate(self.mode.byte_table)
        return raw, offsets - offsets[0]

    def _match_haystack(self, haystack: bytes, offsets: np.ndarray, n: int, n_null: int,
                        n_empty: int) -> CaptionMatches:
        # every occurrence, overlapping ones included: pattern ids and start bytes
        pids, starts = self._scanner.find(haystack)
        if not len(pids):
            empty = np.zeros(0, dtype=np.int64)
            return CaptionMatches(empty, empty.astype(np.int32), n, n_null, n_empty)
        rows = np.searchsorted(offsets, starts, side="right") - 1
        if self._one_lemma_per_pattern:
            lemma_ids = self._flat_lemma_ids[pids]
        else:  # a pattern of several lemmas: one (row, lemma) per lemma
            counts = self._n_lemmas[pids]
            rows = np.repeat(rows, counts)
            first = np.repeat(self._lemma_start[pids] - (np.cumsum(counts) - counts), counts)
            lemma_ids = self._flat_lemma_ids[first + np.arange(len(rows))]
        # one pair per (row, lemma) however often the lemma occurs in the caption, sorted
        n_lemmas = len(self.lemmas)
        keys = sorted_unique(rows * n_lemmas + lemma_ids)
        return CaptionMatches(keys // n_lemmas, (keys % n_lemmas).astype(np.int32), n, n_null, n_empty)


def _string_array(values, what: str) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        raise TypeError(f"{what} must be an Arrow string array, got {values.type}")
    return values


def _offsets(values: pa.Array) -> np.ndarray:
    """The int64 value offsets of an Arrow string array (n + 1 of them)."""
    dtype = np.int64 if pa.types.is_large_string(values.type) else np.int32
    return np.frombuffer(values.buffers()[1], dtype=dtype)[values.offset: values.offset + len(values) + 1].astype(np.int64)


ENGINES = ("auto", "hyperscan", "ahocorasick")


class _AhoCorasickScanner:
    """Every occurrence of every pattern with `ahocorasick_rs` (any platform)."""
    name = "ahocorasick"

    def __init__(self, patterns: List[bytes]):
        import ahocorasick_rs

        self._automaton = ahocorasick_rs.BytesAhoCorasick(patterns, matchkind=ahocorasick_rs.MatchKind.Standard)

    def find(self, haystack: bytes) -> Tuple[np.ndarray, np.ndarray]:
        found = self._automaton.find_matches_as_indexes(haystack, overlapping=True)
        # (pattern, start, end) tuples; flattening them is twice as fast as np.array(found)
        flat = np.fromiter(itertools.chain.from_iterable(found), dtype=np.int64, count=3 * len(found))
        return flat[0::3], flat[1::3]


class _HyperscanScanner:
    """Every occurrence of every pattern with Hyperscan's literal matcher (block mode).

    Hyperscan reports each occurrence's end offset to a callback; the start is the end
    minus the pattern's length. Scratch space is per scanner (one per Python worker,
    used by one thread at a time, as Spark's workers do)."""
    name = "hyperscan"

    def __init__(self, patterns: List[bytes]):
        import hyperscan

        if not patterns:
            raise ValueError("hyperscan needs at least one pattern")
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(expressions=patterns, ids=list(range(len(patterns))), elements=len(patterns),
                         flags=[0] * len(patterns), literal=True)
        self._scratch = hyperscan.Scratch(self._db)
        self._lengths = np.array([len(p) for p in patterns], dtype=np.int64)

    def find(self, haystack: bytes) -> Tuple[np.ndarray, np.ndarray]:
        if not haystack:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        out: List[int] = []
        add = out.append

        def on_match(pattern: int, _start: int, end: int, _flags: int, _context) -> None:
            add(pattern)
            add(end)

        self._db.scan(haystack, match_event_handler=on_match, scratch=self._scratch)
        flat = np.array(out, dtype=np.int64)
        pids = flat[0::2]
        return pids, flat[1::2] - self._lengths[pids]


def hyperscan_available() -> bool:
    try:
        import hyperscan  # noqa: F401
    except ImportError:  # not installed, or no wheel for this platform
        return False
    return True


def make_scanner(patterns: List[bytes], engine: str = "auto"):
    """The scan engine: "hyperscan", "ahocorasick", or "auto" (hyperscan when it imports)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown matching engine {engine!r}; known: {', '.join(ENGINES)}")
    if engine == "hyperscan" or (engine == "auto" and patterns and hyperscan_available()):
        return _HyperscanScanner(patterns)
    return _AhoCorasickScanner(patterns)


def laionet_reference_match(caption, lemmas: Sequence[str]) -> List[str]:
    """The original per-row rule, lemma by lemma (the oracle in tests and the benchmark)."""
    if not isinstance(caption, str):
        return []
    text = " " + caption.translate(_LAIONET_TRANSLATION) + " "
    return [lemma for lemma in lemmas if " " + lemma + " " in text]


_LAIONET_TRANSLATION = str.maketrans(string.punctuation, " " * len(string.punctuation))

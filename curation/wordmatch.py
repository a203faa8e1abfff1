"""Whole-word, case-insensitive matching of many lemmas at once (YFCC15M-Cls / CC12M-Cls).

The original recipe ran one regex pass per class over the whole corpus:
`caption.str.contains(r'\\b(lemma|lemma|...)\\b', case=False)` for each of 1000 synsets.
`WordMatcher` gives the same answers with a single Aho-Corasick scan per caption
(pyahocorasick; the LAIONet label job scans bytes with ahocorasick-rs, see
`curation/matching.py`): every occurrence of every lemma in the lower-cased caption is a
candidate, and a candidate counts when both of its ends sit on a regex word boundary
(`\\b`: exactly one of the two neighbouring characters is a word character, the string's
ends counting as non-word).

Lemmas are matched literally, i.e. with regex-escaped semantics. The original did not
escape them, so `.` in `R.V.` matched any character; `compat_unescaped=True` reproduces that
by running the original per-class regex for the few classes whose lemmas contain regex
metacharacters, and the automaton for all others.

Known difference from Python's `re.IGNORECASE`: matching compares per-character
lower-case forms, so the few extra case equivalences of `re` (e.g. the long s `ſ` ~ `s`)
are not applied. Lemmas of the ImageNet synsets are ASCII, where both agree.
"""
from __future__ import annotations

import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from curation.matching import sorted_unique

_REGEX_METACHARS = frozenset(".^$*+?{}[]\\|()")
#: joins the texts of a batch into one scanned string (see `WordMatcher.match_batch`)
_SEPARATOR = "\n"
#: labels are below this, so (position, label) packs into one int64
_LABEL_SPACE = 1 << 20


def original_pattern(lemmas: Sequence[str], escape: bool = True) -> str:
    """The per-class pattern of the original recipe (`escape=False` is exactly the original)."""
    parts = [re.escape(lemma) if escape else lemma for lemma in lemmas]
    return r"\b(" + "|".join(parts) + r")\b"


def has_regex_metachars(lemma: str) -> bool:
    """True when the unescaped lemma means something else as a regex than as text."""
    return any(ch in _REGEX_METACHARS for ch in lemma)


def fold_case(text: str) -> str:
    """Lower-case `text` keeping every character at its position.

    `str.lower` turns U+0130 (I with dot above, the one such character in Unicode) into
    two characters, which would shift match offsets; it becomes its first one, `i`, which
    is also what `re` compares. Per character as a fallback, should Unicode add others.
    """
    low = text.replace("\u0130", "i").lower()
    if len(low) == len(text):
        return low
    return "".join(ch.lower()[0] for ch in text)


def _is_word(ch: str) -> bool:
    # the definition of `\w` in Python's `re` for str patterns
    return ch.isalnum() or ch == "_"


class WordMatcher:
    """Which labels have a lemma occurring as a whole word (case-insensitively) in a text.

    `lemmas_by_label` maps a label (e.g. the ImageNet class index) to its lemmas; one lemma
    may belong to several labels. Build once per worker: building the automaton for the
    1,860 ImageNet lemmas takes a few milliseconds, matching is then one scan per batch.
    """

    def __init__(self, lemmas_by_label: Mapping[int, Sequence[str]], compat_unescaped: bool = False):
        import ahocorasick

        self.compat_unescaped = compat_unescaped
        #: labels matched by their original (unescaped) regex in compat mode
        self.regex_labels: Dict[int, "re.Pattern[str]"] = {}
        by_lemma: Dict[str, List[int]] = {}
        for label, lemmas in lemmas_by_label.items():
            if not 0 <= int(label) < _LABEL_SPACE:
                raise ValueError(f"label {label} outside 0..{_LABEL_SPACE - 1}")
            lemmas = [lemma for lemma in lemmas if lemma]
            if not lemmas:
                continue
            if compat_unescaped and any(has_regex_metachars(lemma) for lemma in lemmas):
                self.regex_labels[int(label)] = re.compile(original_pattern(lemmas, escape=False), re.IGNORECASE)
                continue
            for lemma in lemmas:
                labels = by_lemma.setdefault(fold_case(lemma), [])
                if int(label) not in labels:
                    labels.append(int(label))
        self._automaton = ahocorasick.Automaton()
        for key, labels in by_lemma.items():
            self._automaton.add_word(key, (len(key), tuple(sorted(labels))))
        self._empty = not by_lemma
        if not self._empty:
            self._automaton.make_automaton()

    def match_batch(self, texts: Sequence[Optional[str]]) -> Tuple[np.ndarray, np.ndarray]:
        """All (text position, label) pairs of a batch, distinct, sorted by position then
        label, as two int arrays. Missing texts (None, NaN, empty) match nothing.

        The batch is scanned as one string, the texts joined by newlines: a newline is a
        non-word character like the string's ends, so `\b` is unchanged at the joins, and
        no lemma contains one, so no hit spans two texts. This keeps Python work per hit,
        not per text.
        """
        texts = [t if isinstance(t, str) else "" for t in texts]
        positions: List[int] = []
        labels: List[int] = []
        if not self._empty and texts:
            haystack = _SEPARATOR.join(texts)
            n = len(haystack)
            starts: List[int] = []
            for end, (length, hit_labels) in self._automaton.iter(fold_case(haystack)):
                start = end - length + 1
                before = start > 0 and _is_word(haystack[start - 1])
                after = end + 1 < n and _is_word(haystack[end + 1])
                if before != _is_word(haystack[start]) and after != _is_word(haystack[end]):
                    starts.extend([start] * len(hit_labels))
                    labels.extend(hit_labels)
            text_starts = np.cumsum([0] + [len(t) + 1 for t in texts[:-1]])
            positions = list(np.searchsorted(text_starts, starts, side="right") - 1)
        for label, pattern in self.regex_labels.items():
            for i, text in enumerate(texts):
                if text and pattern.search(text):
                    positions.append(i)
                    labels.append(label)
        pairs = sorted_unique(np.asarray(positions, dtype=np.int64) * _LABEL_SPACE + np.asarray(labels, dtype=np.int64))
        return pairs // _LABEL_SPACE, pairs % _LABEL_SPACE

    def labels_many(self, texts: Sequence[Optional[str]]) -> List[List[int]]:
        """Sorted distinct labels of each text."""
        positions, labels = self.match_batch(texts)
        out: List[List[int]] = [[] for _ in texts]
        for i, label in zip(positions.tolist(), labels.tolist()):
            out[i].append(label)
        return out

    def labels(self, text: Optional[str]) -> List[int]:
        """Sorted distinct labels whose lemmas occur in `text` as whole words."""
        return self.labels_many([text])[0]


MatcherKey = Tuple[Tuple[Tuple[int, Tuple[str, ...]], ...], bool]


def matcher_key(lemmas_by_label: Mapping[int, Sequence[str]], compat_unescaped: bool) -> MatcherKey:
    """A hashable, picklable description of a matcher (what a Spark UDF ships to workers)."""
    return tuple((int(k), tuple(v)) for k, v in sorted(lemmas_by_label.items())), bool(compat_unescaped)


def matcher_from_key(key: MatcherKey) -> WordMatcher:
    """The matcher `key` describes (a Spark worker keeps it: `udfs.matcher.word_matcher`)."""
    lemmas, compat_unescaped = key
    return WordMatcher(dict(lemmas), compat_unescaped=compat_unescaped)

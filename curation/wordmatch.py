"""Whole-word, case-insensitive matching of many lemmas at once (YFCC15M-Cls / CC12M-Cls).

The original recipe ran one regex pass per class over the whole corpus:
`caption.str.contains(r'\\b(lemma|lemma|...)\\b', case=False)` for each of 1000 synsets.
`WordMatcher` gives the same answers with a single Aho-Corasick scan per caption
(pyahocorasick, the matcher library of the LAIONet label job): every occurrence of every
lemma in the lower-cased caption is a candidate, and a candidate counts when both of its
ends sit on a regex word boundary (`\\b`: exactly one of the two neighbouring characters is
a word character, the string's ends counting as non-word).

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
from functools import lru_cache
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

_REGEX_METACHARS = frozenset(".^$*+?{}[]\\|()")


def original_pattern(lemmas: Sequence[str], escape: bool = True) -> str:
    """The per-class pattern of the original recipe (`escape=False` is exactly the original)."""
    parts = [re.escape(lemma) if escape else lemma for lemma in lemmas]
    return r"\b(" + "|".join(parts) + r")\b"


def has_regex_metachars(lemma: str) -> bool:
    """True when the unescaped lemma means something else as a regex than as text."""
    return any(ch in _REGEX_METACHARS for ch in lemma)


def fold_case(text: str) -> str:
    """Lower-case `text` keeping every character at its position.

    `str.lower` turns U+0130 (I with dot above) into two characters, which would shift match
    offsets; per character it keeps the first one, which is also what `re` compares.
    """
    low = text.lower()
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
    1,860 ImageNet lemmas takes a few milliseconds, matching is then one scan per text.
    """

    def __init__(self, lemmas_by_label: Mapping[int, Sequence[str]], compat_unescaped: bool = False):
        import ahocorasick

        self.compat_unescaped = compat_unescaped
        #: labels matched by their original (unescaped) regex in compat mode
        self.regex_labels: Dict[int, "re.Pattern[str]"] = {}
        by_lemma: Dict[str, List[int]] = {}
        for label, lemmas in lemmas_by_label.items():
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

    def labels(self, text: Optional[str]) -> List[int]:
        """Sorted distinct labels whose lemmas occur in `text` as whole words (none for a
        missing caption: None, NaN, empty)."""
        if not isinstance(text, str) or not text:
            return []
        found = set()
        if not self._empty:
            n = len(text)
            for end, (length, labels) in self._automaton.iter(fold_case(text)):
                start = end - length + 1
                if labels[0] in found and len(labels) == 1:
                    continue
                before = start > 0 and _is_word(text[start - 1])
                after = end + 1 < n and _is_word(text[end + 1])
                if before != _is_word(text[start]) and after != _is_word(text[end]):
                    found.update(labels)
        for label, pattern in self.regex_labels.items():
            if label not in found and pattern.search(text):
                found.add(label)
        return sorted(found)

    def labels_many(self, texts: Iterable[Optional[str]]) -> List[List[int]]:
        return [self.labels(t) for t in texts]


MatcherKey = Tuple[Tuple[Tuple[int, Tuple[str, ...]], ...], bool]


def matcher_key(lemmas_by_label: Mapping[int, Sequence[str]], compat_unescaped: bool) -> MatcherKey:
    """A hashable, picklable description of a matcher (what a Spark UDF ships to workers)."""
    return tuple((int(k), tuple(v)) for k, v in sorted(lemmas_by_label.items())), bool(compat_unescaped)


@lru_cache(maxsize=4)
def cached_matcher(key: MatcherKey) -> WordMatcher:
    """One matcher per (lemmas, mode) per process: a Python worker builds it once and
    reuses it for every batch of every task it runs."""
    lemmas, compat_unescaped = key
    return WordMatcher(dict(lemmas), compat_unescaped=compat_unescaped)

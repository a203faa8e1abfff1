"""Whole-word, case-insensitive lemma matching (curation.wordmatch) against `re`/pandas."""


from curation.wordmatch import WordMatcher, matcher_key
from tests.support.wordmatch import LEMMAS


def test_a_worker_builds_a_matcher_once_per_key():
    from udfs.matcher import word_matcher
    from udfs.worker import on_worker

    key = matcher_key(LEMMAS, False)
    assert word_matcher(key) is word_matcher(matcher_key(dict(LEMMAS), False))
    assert word_matcher(key) is not word_matcher(matcher_key(LEMMAS, True))
    assert word_matcher(key).labels("a red Fox and an ant") == WordMatcher(LEMMAS).labels("a red Fox and an ant")
    # objects sharing a slot replace each other: only the last is kept
    built = []
    first = on_worker(("test-slot", 1), lambda: built.append(1) or [1], slot="test")
    assert on_worker(("test-slot", 1), lambda: built.append(2) or [2], slot="test") is first
    on_worker(("test-slot", 2), lambda: built.append(3) or [3], slot="test")
    assert on_worker(("test-slot", 1), lambda: built.append(4) or [4], slot="test") == [4]
    assert built == [1, 3, 4]

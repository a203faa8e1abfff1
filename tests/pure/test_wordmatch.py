"""Whole-word, case-insensitive lemma matching (curation.wordmatch) against `re`/pandas."""
import random

import warnings

import pandas as pd

import pytest

from curation.wordmatch import WordMatcher, fold_case, original_pattern

from tests.support.wordmatch import LEMMAS


def test_whole_word_and_case_rules():
    m = WordMatcher(LEMMAS)
    assert m.labels("A RED FOX in the snow") == [0, 4]
    assert m.labels("Fox, running") == [0, 4]
    assert m.labels("(fox)") == [0, 4]
    assert m.labels("foxes and antelopes") == []        # inside longer words
    assert m.labels("fox_1 2fox") == []                 # '_' and digits are word characters
    assert m.labels("an ant.") == [2]
    assert m.labels("the Man-Eater of Jack-O'-Lantern town") == [3]
    assert m.labels("éfox foxé") == []                  # non-ASCII letters are word characters
    assert m.labels("İfox") == []                       # a letter whose lower case is 2 chars
    assert m.labels("İ fox") == [0, 4]
    assert m.labels(None) == [] and m.labels("") == [] and m.labels(float("nan")) == []


def test_escaped_lemmas_are_literal_and_compat_reproduces_the_original():
    escaped, compat = WordMatcher(LEMMAS), WordMatcher(LEMMAS, compat_unescaped=True)
    # '.' is literal: "RxVx" is not R.V.; the original regex let '.' match any character
    assert escaped.labels("my RxVx camper") == []
    assert compat.labels("my RxVx camper") == [1]
    # \b after the final '.' needs a word character next, escaped or not
    assert escaped.labels("R.V.s for sale") == [1] and escaped.labels("an R.V. trip") == []
    assert compat.labels("an RV trip") == escaped.labels("an RV trip") == [1]
    assert 1 in compat.regex_labels and not escaped.regex_labels


def _random_captions(n, seed):
    rng = random.Random(seed)
    pieces = list("abfoxrvRVnt.-_ 'é1İ\n\t") + ["fox", "R.V.", "ant", "man-eater", "jack-o'-lantern",
                                             "Fox", "RED FOX", "a_b", "RECREATIONAL vehicle"]
    return [None if rng.random() < 0.01 else "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
            for _ in range(n)]


@pytest.mark.parametrize("compat", [False, True])
def test_same_answers_as_pandas_str_contains(compat):
    """The oracle is the original approach: one `str.contains` regex pass per class."""
    captions = pd.Series(_random_captions(5000, seed=int(compat)))
    got = WordMatcher(LEMMAS, compat_unescaped=compat).labels_many(captions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "pattern has match groups"
        for label, lemmas in LEMMAS.items():
            expected = captions.str.contains(original_pattern(lemmas, escape=not compat), case=False,
                                             regex=True, na=False).tolist()
            assert [label in labels for labels in got] == expected, label
    assert sum(map(len, got)) > 500  # the generator really produces matches


def test_match_batch_gives_positions_and_labels():
    positions, labels = WordMatcher(LEMMAS).match_batch(["fox", None, "", "ant fox\nant", "x"])
    assert positions.tolist() == [0, 0, 3, 3, 3] and labels.tolist() == [0, 4, 0, 2, 4]
    assert [a.tolist() for a in WordMatcher(LEMMAS).match_batch([])] == [[], []]


def test_fold_case_keeps_positions():
    assert fold_case("AbC") == "abc"
    assert len(fold_case("İstanbul FOX")) == len("İstanbul FOX")


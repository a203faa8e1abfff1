"""Pure tests of lemma matching, LAION indexing and the sample-data generator (no Spark)."""
from __future__ import annotations

import json
import os
import random
import string
import unicodedata

import numpy as np
import pyarrow as pa
import pytest

from curation.laion import (INDEX_SHIFT_PER_PART, laion_index, part_file_name, part_number,
                            split_laion_index)
from curation.matching import PAD_AFTER, PAD_BEFORE, LemmaMatcher, hyperscan_available, laionet_reference_match
from curation.samples.laion import URL_EXTENSIONS, URL_KINDS, SampleLaion, rows_per_part


@pytest.fixture(scope="module")
def lemma_map(reference_dir):
    with open(os.path.join(reference_dir, "lemma2wnid_unique_in_ilsvrc_ignored_empty_wnids.json")) as fh:
        return json.load(fh)


#: both scan engines must give identical results; hyperscan is tested where its wheel exists
ENGINES = ["ahocorasick"] + (["hyperscan"] if hyperscan_available() else [])


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    return request.param


@pytest.fixture(scope="module")
def laionet(lemma_map, engine):
    return LemmaMatcher(lemma_map, "laionet", engine=engine)


@pytest.fixture(scope="module")
def normalized(lemma_map, engine):
    return LemmaMatcher(lemma_map, "normalized", engine=engine)


def found(matcher, captions):
    """{row: [lemma, ...]} of a matcher's result."""
    result = matcher.match(captions)
    out = {}
    for row, lemma_id in zip(result.rows.tolist(), result.lemma_ids.tolist()):
        out.setdefault(row, []).append(matcher.lemmas[lemma_id])
    return out


def adversarial_captions(lemmas, n, seed):
    """Lemmas glued to punctuation, other whitespace, case changes, substrings, unicode."""
    rng = random.Random(seed)
    pieces = list(string.punctuation) + [" ", " ", " ", "\t", "\n", "\u00a0", "é", "日本", "ß", "İ", "\x00"]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 8)):
            lemma = rng.choice(lemmas)
            form = rng.choice([lemma, lemma, lemma.upper(), lemma.title(), lemma[:-1], lemma + "s"])
            parts.append(form)
            parts.append("".join(rng.choice(pieces) for _ in range(rng.randint(0, 3))))
        out.append("".join(parts))
    return out


def test_laionet_mode_equals_the_original_rule(laionet, lemma_map):
    lemmas = sorted(lemma_map)
    generator = SampleLaion(lemma_map, seed=3, image_base_url="http://h")
    captions = generator.rows(0, 0, 2500).column("TEXT").to_pylist()
    captions += adversarial_captions(lemmas, 2500, seed=4)
    got = found(laionet, captions)
    n_matched = 0
    for row, caption in enumerate(captions):
        expected = laionet_reference_match(caption, lemmas)
        assert got.get(row, []) == expected, (row, caption)
        n_matched += bool(expected)
    assert n_matched > 1500  # the comparison is not vacuous


def test_laionet_mode_is_case_and_whitespace_exact(engine):
    m = LemmaMatcher({"tabby": "n1", "tabby cat": "n1", "ATM": "n2", "U-boat": "n3"}, "laionet", engine=engine)
    assert found(m, ["a Tabby cat", "tabby-cat!", "(ATM)", "atm", "tabby\tcat", "U-boat", "x tabby"]) == {
        1: ["tabby", "tabby cat"], 2: ["ATM"], 6: ["tabby"]}  # a tab is not a space
    assert m.unmatchable == ["U-boat"]


def test_normalized_mode_cases(engine):
    lemma_map = {"U-boat": "n1", "jack-o'-lantern": "n2", "R.V.": "n3", "Cardigan": "n4",
                 "cardigan": "n5", "tiger": "n6", "great white shark": "n7"}
    m = LemmaMatcher(lemma_map, "normalized", engine=engine)
    captions = ["A U-BOAT in port", "u boat", "Jack O' Lantern!", "the R.V. Calypso", "RV",
                "Knitted CARDIGAN", "Ｔｉｇｅｒ im Zoo", "tigers", "Great  White\nShark", "Uboat"]
    assert found(m, captions) == {
        0: ["U-boat"], 1: ["U-boat"], 2: ["jack-o'-lantern"], 3: ["R.V."],
        5: ["Cardigan", "cardigan"], 6: ["tiger"], 8: ["great white shark"]}
    assert m.unmatchable == []


def normalized_reference(text: str) -> str:
    """The normalized rule in plain Python: NFKC, lower, P*/S* -> space, collapse spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    return " ".join(text.split())


def test_normalized_mode_equals_a_plain_python_rule(normalized, lemma_map):
    lemmas = sorted(lemma_map)
    generator = SampleLaion(lemma_map, seed=5, image_base_url="http://h")
    captions = generator.rows(0, 0, 1500).column("TEXT").to_pylist()
    captions += [c.replace("\x00", "") for c in adversarial_captions(lemmas, 1500, seed=6)]
    patterns = [(lemma, " " + normalized_reference(lemma) + " ") for lemma in lemmas]
    got = found(normalized, captions)
    for row, caption in enumerate(captions):
        text = " " + normalized_reference(caption) + " " if isinstance(caption, str) else None
        expected = [lemma for lemma, p in patterns if text is not None and p in text]
        assert got.get(row, []) == expected, (row, caption)


def test_null_empty_and_non_string_captions_match_nothing_and_are_counted(laionet):
    result = laionet.match([None, "", 3.5, b"tabby", "tabby", float("nan")])
    assert result.rows.tolist() == [4]
    assert (result.n_captions, result.n_null, result.n_empty, result.n_not_string) == (6, 1, 1, 3)


def test_a_lemma_found_twice_is_one_pair(laionet):
    result = laionet.match(["tabby tabby, tabby!", "tabby"])
    assert result.rows.tolist() == [0, 1]
    assert len(set(result.lemma_ids.tolist())) == 1


def test_arrow_large_strings_and_sliced_arrays(laionet):
    captions = ["x", "a tabby", None, "ATM here", "tabby"]
    expected = found(laionet, captions[1:4])
    for typ in (pa.string(), pa.large_string()):
        sliced = pa.array(captions, typ).slice(1, 3)
        result = laionet.match_arrow(sliced)
        got = {}
        for r, l in zip(result.rows.tolist(), result.lemma_ids.tolist()):
            got.setdefault(r, []).append(laionet.lemmas[l])
        assert got == expected == {0: ["tabby"], 2: ["ATM"]}
        assert result.n_null == 1
    with pytest.raises(TypeError, match="string"):
        laionet.match_arrow(pa.array([1, 2]))


def test_padded_captions_give_what_the_unpadded_ones_give(laionet, normalized, lemma_map):
    """`match_padded` takes captions padded by the caller (Spark's concat): same pairs and
    counts as `match_arrow`, also for a sliced array, nulls whose slot holds bytes, and
    adversarial captions; unpadded input and a transforming mode are refused."""
    captions = (["x", "a tabby", None, "", "ATM here", "tabby tabby!", "#tabby,", None]
                + adversarial_captions(sorted(lemma_map), 300, seed=7))
    padded = [None if c is None else PAD_BEFORE + c + PAD_AFTER for c in captions]
    for typ in (pa.string(), pa.large_string()):
        for start in (0, 1):
            want = laionet.match_arrow(pa.array(captions, typ).slice(start))
            got = laionet.match_padded(pa.array(padded, typ).slice(start))
            assert got.rows.tolist() == want.rows.tolist()
            assert got.lemma_ids.tolist() == want.lemma_ids.tolist()
            assert (got.n_captions, got.n_null, got.n_empty) == (want.n_captions, want.n_null, want.n_empty)
    assert laionet.match_padded(pa.array(padded)).n_empty == 1
    # a null slot that holds bytes (Arrow allows it): the bytes are not a caption
    values = pa.array(["  tabby \x00", " tabby \x00"])
    with_null = pa.StringArray.from_buffers(2, values.buffers()[1], values.buffers()[2],
                                            pa.array([False, True]).buffers()[1], 1)
    assert laionet.match_padded(with_null).rows.tolist() == [1]
    with pytest.raises(ValueError, match="not padded"):
        laionet.match_padded(pa.array(["a tabby", "tabby"]))
    with pytest.raises(ValueError, match="transforms captions"):
        normalized.match_padded(pa.array(padded))


def test_reference_map_has_64_lemmas_laionet_can_never_match(laionet, normalized):
    assert len(laionet.unmatchable) == 64
    assert "U-boat" in laionet.unmatchable and "R.V." in laionet.unmatchable
    assert normalized.unmatchable == []


def test_laion_index_arithmetic():
    name = part_file_name(17, "5b54c5d5-bbcf-484d-a2ce-0d6f73df1a36")
    assert name == "part-00017-5b54c5d5-bbcf-484d-a2ce-0d6f73df1a36-c000.snappy.parquet"
    assert part_number("s3a://bucket/laion/" + name) == 17
    assert part_number("laion400m-meta.parquet") is None
    assert laion_index(17, 12) == 1_700_000_012
    assert split_laion_index(1_700_000_012) == (17, 12)
    with pytest.raises(ValueError):
        laion_index(0, INDEX_SHIFT_PER_PART)


def test_sample_rows_are_deterministic_and_independent_of_chunking(lemma_map):
    a = SampleLaion(lemma_map, seed=1, image_base_url="http://127.0.0.1:9/")
    b = SampleLaion(lemma_map, seed=1, image_base_url="http://127.0.0.1:9")
    whole = a.rows(2, 0, 25_000)
    assert whole.equals(b.rows(2, 0, 25_000))
    chunks = pa.concat_tables(list(b.chunks(2, 25_000, 3_333)))
    assert chunks.equals(whole)
    other = SampleLaion(lemma_map, seed=2, image_base_url="http://127.0.0.1:9").rows(2, 0, 1000)
    assert other.column("TEXT") != whole.slice(0, 1000).column("TEXT")
    assert rows_per_part(10, 3) == [4, 3, 3]


def test_sample_rows_cover_the_cases_the_stages_must_handle(lemma_map, laionet):
    rows = SampleLaion(lemma_map, seed=7, image_base_url="http://127.0.0.1:9").rows(0, 0, 20_000).to_pandas()
    text = rows["TEXT"]
    assert text.isna().mean() > 0.01 and (text == "").mean() > 0.01
    assert text.dropna().str.len().max() > 2000
    assert text.str.contains("crane", na=False).any() and text.str.contains("日本", na=False).any()
    assert set(rows["NSFW"]) == {"UNLIKELY", "UNSURE", "NSFW"}
    kinds = rows["URL"].str.extract(r"^http://127\.0\.0\.1:9/(\w+)/(\d+)\.(\w+)$")
    assert not kinds.isna().any().any()
    assert set(kinds[0]) == {k for k, _ in URL_KINDS} and set(kinds[2]) == {e for e, _ in URL_EXTENSIONS}
    assert rows["SAMPLE_ID"].is_unique
    result = laionet.match(text.tolist())
    per_row = np.bincount(result.rows, minlength=len(rows))
    wnids_per_row = {}
    for r, l in zip(result.rows.tolist(), result.lemma_ids.tolist()):
        wnids_per_row.setdefault(r, set()).add(laionet.wnids[l])
    assert len(set(laionet.wnids[l] for l in result.lemma_ids)) > 900  # many classes
    assert (per_row > 0).mean() > 0.25
    assert sum(len(w) > 1 for w in wnids_per_row.values()) > 500  # captions naming two classes
    upper = text.dropna().str.isupper()
    assert upper.sum() > 50  # case variants


def test_engines_agree_on_overlapping_and_repeated_occurrences():
    """Occurrences sharing a space, nested lemmas, a lemma repeated back to back, a caption
    that is only a lemma, and batch ends: the same pairs from every engine."""
    lemma_map = {"a": "n1", "a a": "n2", "hot dog": "n3", "dog": "n4", "sea lion": "n5", "lion": "n6"}
    captions = ["a a a a", "hot dog", "dog hot dog sea lion lion", "a", "", None, "xa ax a", "dog"]
    results = [found(LemmaMatcher(lemma_map, "laionet", engine=e), captions) for e in ENGINES]
    expected = {row: laionet_reference_match(c, sorted(lemma_map)) for row, c in enumerate(captions)}
    assert all(r == {k: v for k, v in expected.items() if v} for r in results)
    with pytest.raises(ValueError, match="unknown matching engine"):
        LemmaMatcher(lemma_map, "laionet", engine="regex")

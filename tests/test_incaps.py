"""Pure tests of the ImageNet-Captions rules (curation/captions.py, curation/samples/incaps.py)."""
from __future__ import annotations

import json
import os

import pytest

from curation import captions as C
from curation import concepts
from curation.samples.incaps import class_sizes, entries_json, generate_entries

TENCH, GOLDFISH = "n01440764", "n01443537"


@pytest.fixture(scope="module")
def classes():
    return concepts.load_concepts()


@pytest.fixture(scope="module")
def templates():
    return concepts.openai_templates()


def entry(filename="n01440764_1.JPEG", wnid=TENCH, title="a title", tags=("t1", "t2"),
          description="a description"):
    return {"filename": filename, "wnid": wnid, "title": title, "tags": list(tags),
            "description": description}


def build(classes, templates=(), **spec):
    return C.CaptionBuilder(C.CaptionSpec(**spec), "/data/imagenet/", classes, templates)


# ---------------------------------------------------------------- caption rules
def test_fields_in_order_separated_by_single_spaces(classes):
    row = build(classes, use_title=True, use_tags=True, use_description=True).row(entry())
    assert row == C.Row(C.KEPT, "n01440764_1.JPEG", "/data/imagenet/train/n01440764/n01440764_1.JPEG",
                        0, "a title t1 t2 a description")
    spec = C.CaptionSpec(use_title=True, use_description=True)
    assert C.join_caption("T", ["x"], "D", spec) == "T D"
    assert C.join_caption("", ["x"], "D", C.CaptionSpec(True, True, True)) == "x D"
    assert C.join_caption("T", [], "", C.CaptionSpec(True, True, True)) == "T"


def test_newlines_tabs_and_carriage_returns_become_spaces():
    spec = C.CaptionSpec(True, True, True)
    assert C.join_caption("a\nb", ["c\td"], "e\r\nf", spec) == "a b c d e  f"
    assert "\t" not in C.join_caption("\t", ["\t"], "x\t", spec)


def test_template_modes_prefix_the_class_name(classes):
    e = entry(wnid=GOLDFISH)
    expect = {"cname": "goldfish a title", "a+cname": "a goldfish a title",
              "photo": "a photo of a goldfish a title"}
    for mode, caption in expect.items():
        assert build(classes, use_title=True, append_cname=True, mode=mode).row(e).caption == caption
    # template only: the filled template and the space the original puts before the (empty) text
    assert build(classes, append_cname=True, mode="a+cname").row(e).caption == "a goldfish "
    assert build(classes, use_title=True, append_cname=True).row(entry(wnid=GOLDFISH, title="")).caption \
        == "goldfish "


def test_spaces_are_kept_as_the_original_builds_them():
    full = C.CaptionSpec(True, True, True)
    assert C.join_caption(" T ", [], "", C.CaptionSpec(use_title=True)) == " T "
    assert C.join_caption(" T ", [" a", "b "], " D ", full) == " T   a b   D "
    # a space goes before a field only when text came before it: tags [""] add nothing
    assert C.join_caption("", [""], "D", full) == "D"
    assert C.join_caption("T", [""], "D", full) == "T  D"
    assert C.join_caption("\n", [], "D", full) == "  D"
    assert C.join_caption(" ", [], "", full, prefix="a tench") == "a tench  "


def test_openai80_and_synset_choices_are_seeded_per_file(classes, templates):
    lemmas = set(classes.set_index("wnid").loc["n02110185", "lemmas"])  # Siberian husky
    b = build(classes, templates, append_cname=True, use_synset=True, mode="openai80", seed=0)
    files = [f"n02110185_{i}.JPEG" for i in range(200)]
    caps = [b.row(entry(f, "n02110185", "", [], "")).caption for f in files]
    filled = {t.format(lemma) + " " for t in templates for lemma in lemmas}  # template + " " + no text
    assert set(caps) <= filled
    assert len(set(caps)) > 50  # many templates and both lemmas are used
    assert {lemma for lemma in lemmas if any(lemma in c for c in caps)} == lemmas
    again = [b.row(entry(f, "n02110185", "", [], "")).caption for f in reversed(files)]
    assert again[::-1] == caps  # a function of the file, not of the order
    other = build(classes, templates, append_cname=True, use_synset=True, mode="openai80", seed=1)
    assert [other.row(entry(f, "n02110185", "", [], "")).caption for f in files] != caps


def test_empty_caption_is_a_drop_reason(classes):
    b = build(classes, use_title=True)
    assert b.row(entry(title="")).status == C.EMPTY_CAPTION
    assert b.row(entry(title=" \n\t ")).status == C.EMPTY_CAPTION
    # the original leaves out captions of spaces only; other blanks are text to it
    assert b.row(entry(title="\x0b")).status == C.KEPT and b.row(entry(title="\x0b")).caption == "\x0b"
    assert b.row(entry(title=" x ")).caption == " x "
    assert build(classes, use_title=True, append_cname=True).row(entry(title="")).status == C.KEPT


@pytest.mark.parametrize("bad, problem", [
    ({"wnid": TENCH, "title": "", "description": "", "tags": []}, "missing field 'filename'"),
    ({**entry(), "title": 5}, "field 'title' is a JSON number"),
    ({**entry(), "description": None}, "field 'description' is a JSON null"),
    ({k: v for k, v in entry().items() if k != "tags"}, "missing field 'tags'"),
    ({**entry(), "tags": "a, b"}, "expected a list of strings"),
    ({**entry(), "tags": ["a", 1]}, "expected a list of strings"),
    ({**entry(), "filename": "../x.JPEG"}, "not a plain file name"),
    (["not", "an", "object"], "JSON array, not an object"),
])
def test_bad_entries_name_the_problem(classes, bad, problem):
    row = build(classes, use_title=True).row(bad)
    assert row.status == C.BAD_ENTRY and problem in row.problem


def test_unknown_wnid(classes):
    row = build(classes, use_title=True).row(entry(wnid="n99999999"))
    assert row.status == C.UNKNOWN_WNID and "n99999999" in row.problem


def test_spec_problems():
    assert C.CaptionSpec().problem()[0] == "append_cname"
    assert C.CaptionSpec(use_title=True, use_synset=True).problem()[0] == "use_synset"
    assert C.CaptionSpec(append_cname=True, mode="openai80").problem() is None


# ---------------------------------------------------------------- names of the original
def test_caption_file_names_follow_the_original():
    full = C.CaptionSpec(True, True, True, append_cname=True)
    assert C.caption_file_name(full, 448896) == "incaps_title_tags_description+cname_448896.tsv"
    assert C.caption_file_name(C.CaptionSpec(append_cname=True, mode="a+cname"), 448896) == "incaps_a+cname_448896.tsv"
    synset = C.CaptionSpec(append_cname=True, use_synset=True, mode="openai80")
    assert C.caption_file_name(synset, 448896) == "incaps_openai80_synset_448896.tsv"
    assert C.caption_file_name(C.CaptionSpec(use_title=True), 443012) == "incaps_title_443012.tsv"


def test_frequency_names_match_the_reference_files(reference_dir):
    names = {C.caption_frequency_name(C.CaptionSpec(t, g, d)) for t in (0, 1) for g in (0, 1)
             for d in (0, 1) if t or g or d}
    names.add(C.caption_frequency_name(C.CaptionSpec(append_cname=True)))
    assert "class_frequency_incaps_full_text_imagenet_ori.txt" in names
    on_disk = set(os.listdir(os.path.join(reference_dir, "freqs")))
    assert len(names & on_disk) == 7  # all but full_text, which the reference does not ship


def test_subset_and_trim_tail_names(reference_dir):
    df = "/x/incaps_title_tags_description+cname_448896.tsv"
    in100 = C.subset_names(df, 44548, 100, in100=True)
    assert in100 == ("in100caps_title_tags_description+cname_44548.tsv", "class_frequency_incaps_imagenet100_ori.txt")
    n = C.subset_names(df, 44548, n=44548)
    assert n == ("incaps_title_tags_description+cname_44548.tsv", "class_frequency_incaps_n44548_ori.txt")
    on_disk = set(os.listdir(os.path.join(reference_dir, "freqs")))
    assert in100[1] in on_disk and n[1] in on_disk
    assert C.subset_names(df, 900, 10, n=900)[1] == "class_frequency_in10caps_n900_ori.txt"
    assert C.trim_tail_names(df, 5, 1) == ("incaps_title_tags_description+cname_tail5ceil1.tsv",
                                           "class_frequency_incaps_tail5ceil1_imagenet_ori.txt")


def test_tail_labels_count_empty_classes_and_break_ties_by_label():
    counts = {0: 5, 1: 1, 2: 1, 4: 3}
    assert C.tail_labels(counts, 5, 3) == [3, 1, 2]


# ---------------------------------------------------------------- parsing the list in ranges
def _parse(data: bytes, parts: int):
    slices, elements = [], []
    for start, end in C.split_ranges(len(data), parts):
        found = C.ListSlice()
        elements.extend(C.iter_list_elements(data, start, end, found))
        slices.append(found)
    return elements, C.chain_problem(slices)


@pytest.mark.parametrize("indent", [None, 2])
def test_ranges_yield_every_element_once(indent):
    entries = generate_entries(concepts.wnids()[:20], 15, seed=4)
    entries[3]["title"] = 'a "quoted" , {"tricky": [1]} title ]'
    data = json.dumps(entries, ensure_ascii=False, indent=indent).encode("utf-8")
    for parts in (1, 2, 7, 50):
        elements, problem = _parse(data, parts)
        assert problem is None and elements == entries, parts


def test_a_false_range_start_is_detected():
    # ', {}' inside a string looks like an element start to a range that begins there
    entries = [{"title": "x" * 50 + ", {}, " + "y" * 50}, {"title": "z"}]
    data = json.dumps(entries).encode()
    problems = [_parse(data, parts)[1] for parts in range(2, 40)]
    assert any(problems)
    assert _parse(data, 1) == (entries, None)


@pytest.mark.parametrize("text, message", [
    (b'{"a": 1}', "must start with '['"),
    (b'[{"a": 1} {"b": 2}]', "expected ',' or ']'"),
    (b'[{"a": 1}, {"b": }]', "invalid JSON at byte"),
    (b'[{"a": 1}', "not closed"),
    (b'[{"a": 1}] x', "after the end of the list"),
])
def test_broken_lists_are_reported(text, message):
    elements, problem = _parse(text, 1)
    assert message in problem


def test_empty_list():
    assert _parse(b" [ ] \n", 1) == ([], None)


# ---------------------------------------------------------------- generated data
def test_generated_entries_are_realistic_and_seeded():
    sizes = class_sizes(50, 200)
    assert sizes[0] == 200 and sizes[-1] == 0 and sorted(sizes, reverse=True) == sizes
    entries = generate_entries(concepts.wnids()[:50], 200, seed=1)
    assert len(entries) == sum(sizes)
    assert len({e["filename"] for e in entries}) == len(entries)
    text = entries_json(entries)
    assert json.loads(text) == entries
    assert any(not e["title"] for e in entries) and any(not e["tags"] for e in entries)
    assert any(not e["description"] for e in entries)
    assert any(ch in text for ch in "éü東")
    assert "\\n" in text and "\\t" in text and "\\r" in text
    assert generate_entries(concepts.wnids()[:50], 200, seed=1) == entries
    assert generate_entries(concepts.wnids()[:50], 200, seed=2) != entries


def test_range_tallies_combine_into_list_counts(classes):
    entries = [entry(f"n01440764_{i}.JPEG", title="" if i % 5 == 0 else "t") for i in range(40)]
    entries[7] = {**entries[7], "title": 5}
    entries[31] = {**entries[31], "wnid": "n00000000"}
    data = json.dumps(entries).encode()
    builder = build(classes, use_title=True)
    for parts in (1, 3, 8):
        tallies, kept = [], []
        for start, end in C.split_ranges(len(data), parts):
            tally = C.RangeTally()
            kept.extend(C.kept_rows(data, start, end, builder, True, tally))
            tallies.append(tally)
        total = C.combine_tallies(tallies)
        assert total.problem is None and total.read == 40
        assert total.by_status == {C.KEPT: 30, C.EMPTY_CAPTION: 8, C.BAD_ENTRY: 1, C.UNKNOWN_WNID: 1}
        assert total.by_label == {0: 30} and len(kept) == 30
        assert [(i, name) for i, name, _ in total.bad] == [(7, "n01440764_7.JPEG"), (31, "n01440764_31.JPEG")]
        assert kept[0][4] == C.order_key("n01440764_1.JPEG", 0, "shuffle")


def test_trim_tail_caps_the_smallest_classes_by_seeded_key_in_file_order():
    import pandas as pd

    from curation.captions import order_key, tail_labels, trim_tail

    # class 0: 6 rows, class 1: 4, class 2: 3, class 3: 1; 5 classes (class 4 empty)
    labels = [0, 1, 0, 2, 1, 0, 2, 1, 3, 0, 1, 2, 0, 0]
    rows = pd.DataFrame({"filepath": [f"f{i}.jpg" for i in range(len(labels))], "label": labels,
                         "caption": [f"c{i}" for i in range(len(labels))]})
    counts = rows["label"].value_counts().to_dict()
    assert tail_labels(counts, 5, 3) == [4, 3, 2]
    got = trim_tail(rows, 5, lastk=3, ceil=2, seed=7)
    # classes 4 (empty) and 3 (one row) are under the ceiling; class 2 keeps its 2 rows of smallest key
    class2 = rows[rows.label == 2]
    keep2 = sorted(class2.index, key=lambda i: (order_key(rows.filepath[i], 7, "trim"), i))[:2]
    assert list(got.index) == [i for i in rows.index if rows.label[i] != 2 or i in keep2]  # file order
    assert got["label"].value_counts().to_dict() == {0: 6, 1: 4, 2: 2, 3: 1}
    assert trim_tail(rows, 5, lastk=3, ceil=2, seed=8)["label"].value_counts()[2] == 2
    # a larger tail reaches class 1 (4 rows -> 2), and ceil 0 empties the tail classes
    assert trim_tail(rows, 5, lastk=4, ceil=2, seed=7)["label"].value_counts().to_dict() == {0: 6, 1: 2, 2: 2, 3: 1}
    assert set(trim_tail(rows, 5, lastk=4, ceil=0, seed=7)["label"]) == {0}

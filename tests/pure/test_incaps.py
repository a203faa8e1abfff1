"""Pure tests of the ImageNet-Captions rules (curation/captions.py, curation/samples/incaps.py)."""
from __future__ import annotations

import json
import os
import random

import pytest

from curation import captions as C
from curation import concepts
from curation.errors import InputError
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


# ---------------------------------------------------------------- reading the list
@pytest.mark.parametrize("indent", [None, 2])
def test_read_entries_returns_the_list_as_json_load(indent):
    entries = generate_entries(concepts.wnids()[:20], 15, seed=4)
    entries[3]["title"] = 'a "quoted" , {"tricky": [1]} title ]'
    data = json.dumps(entries, ensure_ascii=False, indent=indent).encode("utf-8")
    assert C.read_entries(data, "x.json") == entries


def test_a_utf8_byte_order_mark_is_skipped():
    entries = [entry(title="Zürich")]
    data = json.dumps(entries, ensure_ascii=False).encode("utf-8")
    assert C.read_entries(b"\xef\xbb\xbf" + data, "x.json") == entries
    # and counts in the byte offset of an error
    with pytest.raises(InputError, match=r"x.json: invalid JSON at byte 4: Expecting value"):
        C.read_entries(b"\xef\xbb\xbf[}", "x.json")


@pytest.mark.parametrize("text, message", [
    (b"", "the file is empty"),
    (b'{"a": 1}', r"not a JSON list: a JSON object starts at byte 0 \(expected '\['\)"),
    (b' \n"text"', "not a JSON list: a JSON string starts at byte 2"),
    (b'[{"a": 1} {"b": 2}]', "invalid JSON at byte 10: Expecting ',' delimiter$"),
    (b'[{"a": 1}, {"b": }]', "invalid JSON at byte 17: Expecting value$"),
    # offsets are bytes of the file, not characters: "é" is two bytes (character 14, byte 16)
    (b'[{"a": "\xc3\xa9\xc3\xa9"}, oops]', "invalid JSON at byte 16: Expecting value$"),
    (b'[{"a": 1}', r"invalid JSON at byte 9: Expecting ',' delimiter \(the file ends there: is it cut off\?\)"),
    (b'[{"a": 1}, {"b": "cut', r"at byte 17: Unterminated string \(the file ends inside it"),
    (b'[{"a": 1}] x', "invalid JSON at byte 11: Extra data"),
    (b'[{"a": "\xc3\xa9\xff"}]', "not UTF-8 text at byte 10"),
])
def test_broken_lists_are_one_error_with_the_byte_offset(text, message):
    with pytest.raises(InputError, match=f"^x.json: .*{message}"):
        C.read_entries(text, "x.json")


def test_empty_list():
    assert C.read_entries(b" [ ] \n", "x.json") == []


# ---------------------------------------------------------------- the list to rows
def _original_stream(entries, builder, shuffle, seed, templates=None, synset=False):
    """create_incaps_caption_variants.py's calls on Python's `random`, written out: seed,
    shuffle the list, then per caption of a known wnid a template and a lemma."""
    random.seed(seed)
    metadata = list(entries)
    if shuffle:
        random.seed(seed)
        random.shuffle(metadata)
    out = []
    for d in metadata:
        if C.entry_problem(d) is not None or d["wnid"] not in builder.label:
            continue
        t = random.choice(templates) if templates else None
        lemma = random.choice(builder.lemmas[d["wnid"]]) if synset else None
        out.append((d["filename"], t, lemma))
    return out


def test_caption_rows_tally_the_list_and_sample_bad_entries_in_list_order(classes):
    entries = [entry(f"n01440764_{i}.JPEG", title="" if i % 5 == 0 else "t") for i in range(40)]
    entries[7] = {**entries[7], "title": 5}
    entries[31] = {**entries[31], "wnid": "n00000000"}
    entries[33] = "not an entry"
    builder = build(classes, use_title=True)
    for sampling in ("keyed", "original"):
        for shuffle in (False, True):
            made = C.caption_rows(entries, builder, shuffle, sampling)
            assert made.read == 40
            assert made.by_status == {C.KEPT: 29, C.EMPTY_CAPTION: 8, C.BAD_ENTRY: 2, C.UNKNOWN_WNID: 1}
            assert made.by_label == {0: 29} and len(made.rows) == 29 and made.n_bad == 3
            assert [(i, name) for i, name, _ in made.bad] == [(7, "n01440764_7.JPEG"), (31, "n01440764_31.JPEG"),
                                                           (33, None)]
            kept = sorted(r[0].rsplit("/", 1)[1] for r in made.rows)
            assert kept == sorted(e["filename"] for i, e in enumerate(entries)
                                  if i not in (7, 31, 33) and i % 5)
    # only the first BAD_SAMPLE bad entries are listed, all are counted
    many = [{**entry(f"n01440764_{i}.JPEG"), "tags": None} for i in range(25)]
    made = C.caption_rows(many, builder, True, "original")
    assert made.n_bad == 25 and [b[0] for b in made.bad] == list(range(C.BAD_SAMPLE))


def test_keyed_order_depends_on_the_seed_only(classes):
    entries = generate_entries(concepts.wnids()[:30], 20, seed=5)
    builder = build(classes, use_title=True, use_tags=True, append_cname=True)
    plain = C.caption_rows(entries, builder, False)
    assert [r[0].rsplit("/", 1)[1] for r in plain.rows] == [e["filename"] for e in entries]  # the list order
    shuffled = C.caption_rows(entries, builder, True)
    assert [r[0].rsplit("/", 1)[1] for r in shuffled.rows] == sorted(
        (e["filename"] for e in entries), key=lambda f: C.order_key(f, 0, "shuffle"))
    # the same rows in the same order from the list in any order
    assert C.caption_rows(entries[::-1], builder, True).rows == shuffled.rows
    assert C.caption_rows(entries[7:] + entries[:7], builder, True).rows == shuffled.rows
    other = C.caption_rows(entries, build(classes, use_title=True, use_tags=True, append_cname=True, seed=1), True)
    assert other.rows != shuffled.rows and sorted(other.rows) == sorted(shuffled.rows)


@pytest.mark.parametrize("spec", [
    dict(use_title=True, append_cname=True, mode="openai80", seed=0),
    dict(append_cname=True, use_synset=True, mode="openai80", seed=3),
    dict(append_cname=True, use_synset=True, mode="a+cname", seed=0),
    dict(use_title=True, seed=0),
])
@pytest.mark.parametrize("shuffle", [True, False])
def test_original_sampling_is_the_original_random_stream(classes, templates, spec, shuffle):
    entries = generate_entries(concepts.wnids()[:12], 25, seed=2)
    # bad entries and unknown wnids take part in the shuffle and draw nothing
    entries.insert(4, {**entries[4], "wnid": "n99999999", "filename": "odd_1.JPEG"})
    entries.insert(30, {**entries[30], "title": None, "filename": "odd_2.JPEG"})
    builder = build(classes, templates, **spec)
    made = C.caption_rows(entries, builder, shuffle, "original")
    use_templates = spec.get("mode") == "openai80" and spec.get("append_cname")
    stream = _original_stream(entries, builder, shuffle, spec["seed"], builder.templates if use_templates else None,
                              spec.get("use_synset", False))
    by_name = {e["filename"]: e for e in entries}
    expected = []
    for filename, template, lemma in stream:
        e = by_name[filename]
        if spec.get("append_cname"):
            name = lemma if lemma is not None else builder.classname[e["wnid"]]
            prefix = (template or C.MODES[spec["mode"]]).format(name)
        else:
            prefix = None
        caption = C.join_caption(e["title"], e["tags"], e["description"], builder.spec, prefix)
        if not C.is_blank(caption):
            expected.append((f"/data/imagenet/train/{e['wnid']}/{filename}", builder.label[e["wnid"]], caption))
    assert made.rows == expected
    assert made.by_status[C.UNKNOWN_WNID] == 1 and made.by_status[C.BAD_ENTRY] == 1


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

"""Concept data: the packaged table and lemma maps against the reference files, the
LAIONet lemma rules, the `curate concepts ...` jobs and their errors."""
from __future__ import annotations




import pandas as pd

import pytest

from curation import concepts as C

from curation.errors import ConfigError, InputError

from tests.support.concepts import _json, _ref


STANDARD_WNIDS_WITHOUT_LEMMA = ["n01807496", "n02012849", "n03126707", "n03495258", "n03710637", "n03773504"]


@pytest.fixture(scope="module")
def ilsvrc_list(reference_dir):
    """LAIONet's synset list: 999 wnids, husky under n02112837, second crane missing."""
    return C.read_synsets_file(_ref(reference_dir, "ILSVRC2012_synsets.txt"))


# ---------------------------------------------------------------- the concept table
def test_concept_table_has_1000_sorted_classes_with_reference_names(reference_dir):
    table = C.load_concepts()
    assert list(table.columns) == list(C.CONCEPT_COLUMNS)
    assert len(table) == 1000 and table["wnid"].is_unique
    assert list(table["wnid"]) == sorted(_json(_ref(reference_dir, "descriptors_imagenet_synset.json")))
    assert list(table["label"]) == list(range(1000))
    assert C.classnames() == list(_json(_ref(reference_dir, "descriptors_imagenet.json")))
    assert C.wnids() == list(table["wnid"]) and C.wnid_to_label()["n01443537"] == 1
    assert table["definition"].str.strip().str.len().gt(0).all()
    assert table["lemmas"].map(len).gt(0).all()


def test_lemmas_are_wordnet_lemmas_in_wordnet_order(reference_dir, ilsvrc_list):
    table = C.load_concepts().set_index("wnid")
    # LAIONet's list carries the same lemma lists (case kept) for its 999 wnids
    for wnid, lemmas in ilsvrc_list.items():
        assert table.loc[C.normalize_wnid(wnid), "lemmas"] == lemmas, wnid


def test_husky_and_kit_fox():
    table = C.load_concepts().set_index("wnid")
    husky = table.loc["n02110185"]
    assert husky["lemmas"] == ["Siberian husky"] and husky["name"] == "siberian_husky"
    assert C.normalize_wnid("n02112837") == "n02110185" and "n02112837" not in table.index
    assert C.normalize_wnid("n02119789") == "n02119789"
    fox = table.loc["n02119789"]
    assert fox["name"] == "kit_fox" and fox["lemmas"] == ["kit fox", "Vulpes macrotis"]
    assert "fox" in fox["definition"]


def test_packaged_data_equals_a_fresh_build(reference_dir):
    classes = C.classes_from_reference(_ref(reference_dir, "descriptors_imagenet_synset.json"),
                                       _ref(reference_dir, "descriptors_imagenet.json"))
    pd.testing.assert_frame_equal(C.read_classes(), classes)
    pd.testing.assert_frame_equal(C.load_concepts(), C.build_concept_table(classes))
    assert C.load_lemma_map() == C.build_lemma_map(C.standard_synsets(), "ilsvrc")


def test_imagenet100(reference_dir):
    with open(_ref(reference_dir, "imagenet100_idxs.txt")) as fh:
        assert C.imagenet100_labels() == [int(x) for x in fh.read().split()]
    in100 = C.imagenet100_wnids()
    assert len(in100) == len(set(in100)) == 100 and set(in100) <= set(C.wnids())
    assert in100[0] == C.wnids()[15]
    assert C.class_subset_labels("imagenet100") == C.imagenet100_labels()
    assert C.class_subset_labels("all") == list(range(1000))


def test_openai_templates_come_from_open_clip():
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    templates = C.openai_templates()
    assert len(templates) == 80 and templates[0] == "a bad photo of a {}."
    assert all(t.count("{}") == 1 for t in templates)
    assert [t.format("tench") for t in templates] == [f("tench") for f in OPENAI_IMAGENET_TEMPLATES]


# ---------------------------------------------------------------- lemma maps
def test_ilsvrc_map_of_laionet_list_equals_reference_byte_for_byte(reference_dir, ilsvrc_list):
    built = C.build_lemma_map_detailed(ilsvrc_list, "ilsvrc")
    path = _ref(reference_dir, "lemma2wnid_unique_in_ilsvrc_ignored_empty_wnids.json")
    assert built.lemma2wnid == _json(path)
    assert len(built.lemma2wnid) == 1825 and len(set(built.lemma2wnid.values())) == 995
    with open(path, encoding="utf-8") as fh:
        assert C.lemma_map_json(built.lemma2wnid) == fh.read()
    assert built.entries == built.dropped["not_unique"] + 1825 and built.extended == []


def test_standard_map_differs_from_reference_only_in_crane_and_husky(reference_dir):
    packaged = C.load_lemma_map()
    assert len(packaged) == 1824 and len(set(packaged.values())) == 994
    assert C.wnids_without_lemma(packaged, C.wnids()) == STANDARD_WNIDS_WITHOUT_LEMMA
    assert C.load_lemma_map("file://" + C.LEMMA_MAP_FILE) == packaged
    reference = C.load_lemma_map(_ref(reference_dir, "lemma2wnid_unique_in_ilsvrc_ignored_empty_wnids.json"))
    assert reference["Siberian husky"] == "n02110185"  # alias normalized on load
    assert reference == {**packaged, "crane": "n02012849"}


def test_named_laionet_map_equals_the_reference_with_the_husky_alias(reference_dir, ilsvrc_list):
    reference = _json(_ref(reference_dir, "lemma2wnid_unique_in_ilsvrc_ignored_empty_wnids.json"))
    laionet = C.load_lemma_map("laionet")
    assert reference["Siberian husky"] == "n02112837" and laionet["Siberian husky"] == "n02110185"
    assert laionet == {lemma: C.normalize_wnid(w) for lemma, w in reference.items()}
    assert len(laionet) == 1825 and laionet["crane"] == "n02012849"
    # derived from the standard list: LAIONet's list is it without n03126707 (husky aliased)
    assert C.laionet_synsets() == {C.normalize_wnid(w): lemmas for w, lemmas in ilsvrc_list.items()}
    assert C.load_lemma_map("standard") == C.load_lemma_map() == C.load_lemma_map(C.LEMMA_MAP_FILE)
    assert "crane" not in C.load_lemma_map("standard")


def test_lemma_map_names_and_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for ok in (None, "standard", "laionet", "s3a://bucket/map.json"):
        C.check_lemma_map(ok)
    with pytest.raises(ConfigError, match=r"config key 'lemma_map': unknown lemma map 'laionet2'; "
                                          r"allowed values: standard, laionet or the path"):
        C.check_lemma_map("laionet2")
    with pytest.raises(ConfigError, match=r"config key 'lemma_map': file not found: maps/x.json"):
        C.check_lemma_map("maps/x.json")
    # a bare name that is an existing file is that file; a packaged name is always the map
    (tmp_path / "mymap").write_text('{"kit fox": "n02119789"}')
    (tmp_path / "laionet").write_text('{"kit fox": "n02119789"}')
    C.check_lemma_map("mymap")
    assert C.load_lemma_map("mymap") == {"kit fox": "n02119789"}
    assert len(C.load_lemma_map("laionet")) == 1825


def test_wordnet_scope_with_hypernyms_equals_reference(reference_dir, ilsvrc_list):
    built = C.build_lemma_map_detailed(ilsvrc_list, "wordnet", extend_hypernyms=True)
    with open(_ref(reference_dir, "lemma2wnid_unique_in_wordnet.json"), encoding="utf-8") as fh:
        assert C.lemma_map_json(built.lemma2wnid) == fh.read()
    assert len(built.lemma2wnid) == 1573 and len(set(built.lemma2wnid.values())) == 999
    # missile.n.01 has two hypernyms (weapon.n.01, rocket.n.01): the first by name is used
    assert built.lemma2wnid["missile rocket"] == "n03773504" and "missile rocket" in built.extended
    assert len(built.extended) == 274 and built.dropped == {"not_unique": 286}
    assert built.entries == len(built.lemma2wnid) + 286


def test_lemma_rules_on_a_small_list():
    synsets = {"n02012849": ["crane"], "n03126707": ["crane"], "n02119789": ["kit fox", "Vulpes macrotis"]}
    assert C.build_lemma_map(synsets, "ilsvrc") == {"kit fox": "n02119789", "Vulpes macrotis": "n02119789"}
    extended = C.build_lemma_map(synsets, "ilsvrc", extend_hypernyms=True)
    assert extended["crane bird"] == "n02012849" and extended["crane device"] == "n03126707"
    # "Vulpes macrotis" has one WordNet sense; "kit fox" and "crane" have several
    assert C.build_lemma_map(synsets, "wordnet") == {"Vulpes macrotis": "n02119789"}
    # two wnids extending to the same key: ambiguous, dropped for both (LAIONet raised)
    clash = C.build_lemma_map_detailed({"n02012849": ["crane"], "n01807496": ["crane"]}, "ilsvrc", True)
    assert clash.lemma2wnid == {} and clash.dropped == {"ambiguous_extension": 2}
    with pytest.raises(InputError, match="'no such lemma' of n02119789 is not in WordNet"):
        C.build_lemma_map({"n02119789": ["no such lemma"]}, "wordnet")


def test_bad_synset_list_and_lemma_map_files_name_the_problem(tmp_path):
    bad = tmp_path / "synsets.txt"
    bad.write_text("id: lemmas\nn02119789: kit fox\nthis line has no wnid\n")
    with pytest.raises(InputError, match=r"synsets.txt:3: expected 'wnid: lemma"):
        C.read_synsets_file(str(bad))
    bad.write_text("x02119789: kit fox\n")
    with pytest.raises(InputError, match=r"synsets.txt:1: 'x02119789' is not a noun wnid"):
        C.read_synsets_file(str(bad))
    with pytest.raises(InputError, match="synset list not found"):
        C.read_synsets_file(str(tmp_path / "missing.txt"))
    lemma_map = tmp_path / "map.json"
    lemma_map.write_text('{"kit fox": "n02119789", "unicorn": "n99999999"}')
    with pytest.raises(InputError, match=r"map.json: lemma 'unicorn': 'n99999999' is not one of the 1000"):
        C.load_lemma_map(str(lemma_map))
    lemma_map.write_text('["kit fox"]')
    with pytest.raises(InputError, match="map.json: expected a JSON object"):
        C.load_lemma_map(str(lemma_map))
    with pytest.raises(InputError, match="wnid n02112838 is not a WordNet 3.0 noun synset"):
        C.synset_of(C.load_wordnet(), "n02112838")


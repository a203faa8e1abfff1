"""Synset queries (pure), the text encoders, and `curate laionet similarity` on Spark."""
from __future__ import annotations

import pytest

from curation.queries import (QUERY_TYPES, query_column, similarity_column,
                              synset_query)


# ---------------------------------------------------------------- queries (pure)
def test_query_texts_follow_the_original():
    lemmas = ["kit fox", "Vulpes macrotis"]
    definition = "small grey fox of southwestern United States"
    assert synset_query("name", "kit_fox", definition, lemmas) == "kit fox"
    assert synset_query("name", "kit_fox.n.01", definition, lemmas) == "kit fox"
    assert synset_query("name_def", "kit_fox", definition, lemmas) == f"kit fox which is {definition}"
    assert synset_query("lemmas", "kit_fox", definition, lemmas) == "kit fox or Vulpes macrotis"
    assert synset_query("a_photo_of_name", "kit_fox", definition, lemmas) == "a photo of kit fox"
    assert synset_query("a_clear_photo_of_name_def", "kit_fox", definition, lemmas) == \
        f"a clear photo of kit fox which is {definition}"
    assert synset_query("a_photo_of_lemmas", "kit_fox", definition, lemmas) == \
        "a photo of kit fox or Vulpes macrotis"
    assert synset_query("name_def", "kit_fox", definition, lemmas, lemma="Vulpes macrotis") == \
        f"Vulpes macrotis which is {definition}"
    assert query_column("name_def", "wnid") == "name_def_wnid"
    assert similarity_column("name_def", "wnid") == "text_to_name_def_wnid_similarity"
    assert len(QUERY_TYPES) == 7
    with pytest.raises(ValueError, match="unknown query type"):
        synset_query("definition", "kit_fox", definition, lemmas)

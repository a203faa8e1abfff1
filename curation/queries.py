"""Synset queries: the text a caption is compared with to decide whether it is about its class.

The query types and column names are those of the original LAIONet pipeline
(eval-on-laion `core/queries.py`), so our outputs read like its metadata:

| query type                  | text                                           |
|-----------------------------|------------------------------------------------|
| `name`                      | `kit fox`                                      |
| `name_def`                  | `kit fox which is <WordNet definition>`        |
| `lemmas`                    | `kit fox or Vulpes macrotis` (all synset lemmas) |
| `a_photo_of_name`           | `a photo of kit fox`                           |
| `a_photo_of_name_def`       | `a photo of kit fox which is ...`              |
| `a_clear_photo_of_name_def` | `a clear photo of kit fox which is ...`        |
| `a_photo_of_lemmas`         | `a photo of kit fox or Vulpes macrotis`        |

The query key is `wnid` (the name is the synset's name) or `lemma` (the name is the lemma
that matched the caption). The query goes in column `<query_type>_<key>` (e.g.
`name_def_wnid`) and the score in `text_to_<query_type>_<key>_similarity`.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

QUERY_TYPES = ("name", "name_def", "lemmas", "a_photo_of_name", "a_photo_of_name_def",
               "a_clear_photo_of_name_def", "a_photo_of_lemmas")
QUERY_KEYS = ("wnid", "lemma")


def query_column(query_type: str, query_key: str) -> str:
    return f"{query_type}_{query_key}"


def similarity_column(query_type: str, query_key: str) -> str:
    return f"text_to_{query_column(query_type, query_key)}_similarity"


def synset_display_name(name: str) -> str:
    """`kit_fox` or `kit_fox.n.01` -> `kit fox` (the original strips `.n.NN` and `_`)."""
    cut = name.find(".n.")
    return (name[:cut] if cut >= 0 else name).replace("_", " ")


def synset_query(query_type: str, name: str, definition: str, lemmas: Sequence[str],
                 lemma: Optional[str] = None) -> str:
    """The query text of one synset; `lemma` (key `lemma`) replaces the synset name."""
    if query_type not in QUERY_TYPES:
        raise ValueError(f"unknown query type {query_type!r}; use one of {', '.join(QUERY_TYPES)}")
    shown = lemma if lemma is not None else synset_display_name(name)
    name_def = f"{shown} which is {definition}"
    lemma_list = " or ".join(str(x).replace("_", " ") for x in lemmas)
    return {
        "name": shown,
        "name_def": name_def,
        "lemmas": lemma_list,
        "a_photo_of_name": f"a photo of {shown}",
        "a_photo_of_name_def": f"a photo of {name_def}",
        "a_clear_photo_of_name_def": f"a clear photo of {name_def}",
        "a_photo_of_lemmas": f"a photo of {lemma_list}",
    }[query_type]


def queries_for(concepts, query_type: str, keys: Iterable[tuple]) -> list:
    """Query texts for `(wnid, lemma_or_None)` keys, looked up in the concept table.

    `concepts` is `curation.concepts.load_concepts()` (or any DataFrame with columns
    `wnid, name, definition, lemmas`). Unknown wnids raise KeyError naming the wnid.
    """
    table = concepts.set_index("wnid")
    out = []
    for wnid, lemma in keys:
        if wnid not in table.index:
            raise KeyError(f"wnid {wnid} is not in the concept table")
        row = table.loc[wnid]
        out.append(synset_query(query_type, row["name"], row["definition"], list(row["lemmas"]), lemma))
    return out

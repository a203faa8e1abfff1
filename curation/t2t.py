"""LAIONet matched to ImageNet-Captions: queries, max-similarity labels, frequency quotas.

The recipe (after the `eval-on-laion` and `clip-beyond-tail` scripts): every
ImageNet-Captions text retrieves its top-k most similar LAION captions; a class's
retrieved LAION rows form a supplement to LAIONet (`laionet-t2t`); `match-freq` then takes,
per class, as many images as ImageNet-Captions has, from LAIONet first and from the
supplement for the rest.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
import pandas as pd

from curation.errors import InputError
from curation.sampling import stable_uniform

_FILENAME_RE = re.compile(r"^(n\d{8})_")

QUERY_COLUMNS = ("filename", "wnid", "text")
SOURCES = ("laionet", "laionet-t2t")
#: t2t-subset's rules (`--assign`): which retrieved rows are kept, with which wnid
ASSIGN_RULES = ("greedy", "max-sim", "all")


# ---------------------------------------------------------------- ImageNet-Captions queries
def read_incaps_json(path: str) -> List[dict]:
    """The entries of `imagenet_captions.json` (a JSON list of objects)."""
    try:
        with open(path, encoding="utf-8") as fh:
            entries = json.load(fh)
    except FileNotFoundError:
        raise InputError(f"ImageNet-Captions json not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(entries, list):
        raise InputError(f"{path}: expected a JSON list of entries, got {type(entries).__name__}")
    return entries


def wnid_of_filename(filename: str, where: str) -> str:
    """ImageNet file names start with their class: `n01440764_10026.JPEG` -> n01440764."""
    m = _FILENAME_RE.match(filename)
    if not m:
        raise InputError(f"{where}: filename {filename!r} does not start with '<wnid>_'")
    return m.group(1)


def _field(entry: dict, key: str, kind: type, where: str):
    value = entry.get(key)
    if value is None:
        return kind()
    if not isinstance(value, kind) or (kind is list and not all(isinstance(t, str) for t in value)):
        raise InputError(f"{where}: field {key!r} must be a {'list of strings' if kind is list else 'string'}, "
                         f"got {value!r:.60}")
    return value


def query_text(title: str, tags: Sequence[str], description: str) -> str:
    """The original preprocessing's text: title, tags and description joined by spaces
    (empty fields leave their separators, as there)."""
    return " ".join([title, *tags, description])


def incaps_queries(entries: Sequence[dict], source: str = "imagenet_captions.json") -> pd.DataFrame:
    """One query per unique filename (its first entry): columns filename, wnid, text;
    sorted by filename. The wnid is the filename's prefix, as in the original scripts."""
    rows: Dict[str, tuple] = {}
    for i, entry in enumerate(entries):
        where = f"{source} entry {i}"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected an object, got {type(entry).__name__}")
        filename = entry.get("filename")
        if not isinstance(filename, str):
            raise InputError(f"{where}: missing or non-string 'filename'")
        if filename in rows:
            continue
        text = query_text(_field(entry, "title", str, where), _field(entry, "tags", list, where),
                          _field(entry, "description", str, where))
        rows[filename] = (filename, wnid_of_filename(filename, where), text)
    df = pd.DataFrame(sorted(rows.values()), columns=list(QUERY_COLUMNS))
    return df


def has_text(texts: pd.Series) -> pd.Series:
    """True where a caption has a non-blank character (blank texts are not searched)."""
    return texts.fillna("").str.strip().str.len() > 0


# ---------------------------------------------------------------- retrieved rows -> one wnid
def assign_wnid_by_sim(pairs: pd.DataFrame) -> pd.DataFrame:
    """Give each retrieved LAION row the class it is most similar to.

    `pairs` has one row per retrieval (laion_index, wnid, similarity); a LAION row can be
    retrieved by several captions of several classes. The result has one row per
    laion_index with the wnid of the highest similarity (ties: the smaller wnid; the
    original kept whichever it met first), that similarity, and `n_wnids`, the number of
    classes that retrieved it.
    """
    cols = ["laion_index", "wnid", "similarity", "n_wnids"]
    if pairs.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             zip(cols, ("int64", "object", "float32", "int32"))})
    best = (pairs.sort_values(["laion_index", "similarity", "wnid"], ascending=[True, False, True])
                 .drop_duplicates("laion_index"))
    n_wnids = pairs.groupby("laion_index")["wnid"].nunique().astype("int32").rename("n_wnids")
    out = best.join(n_wnids, on="laion_index")[cols].sort_values("laion_index")
    return out.reset_index(drop=True)


# ---------------------------------------------------------------- one row per text (the original rule)
def greedy_assign(text: np.ndarray, rank: np.ndarray, laion_index: np.ndarray,
                  n_texts: int) -> Tuple[np.ndarray, np.ndarray]:
    """The original rule (laionet-dev `find_wnid_to_laion_indices_local.py`): walk the texts
    in order (text id 0, 1, ...) and give each the best-ranked of its retrieved rows that no
    earlier text took; at most one row per text, no row twice.

    Input: one entry per retrieval, in any order: `text` in [0, n_texts), `rank` >= 1 (gaps
    allowed), `laion_index`. Returns (taken laion_index per text, -1 for none; its rank, 0
    for none). The pairs are scattered into a (texts x max rank) int64 matrix, which the
    walk reads row by row with a set of the rows taken so far; its cost is the number of
    candidates it looks at (a text stops at its first free row).
    """
    # no int64 copies of text and rank (22 M entries each at ImageNet-Captions scale)
    text, rank = np.asarray(text), np.asarray(rank)
    laion_index = np.asarray(laion_index, dtype=np.int64)
    taken = np.full(n_texts, -1, dtype=np.int64)
    taken_rank = np.zeros(n_texts, dtype=np.int32)
    if not len(text):
        return taken, taken_rank
    if text.min() < 0 or text.max() >= n_texts:
        raise ValueError(f"text ids must lie in [0, {n_texts})")
    if rank.min() < 1:
        raise InputError(f"search results: rank {int(rank.min())} (ranks start at 1)")
    if laion_index.min() < 0:
        raise InputError(f"search results: laion_index {int(laion_index.min())} (must be >= 0)")
    k = int(rank.max())
    cand = np.full((n_texts, k), -1, dtype=np.int64)
    cand[text, rank - 1] = laion_index
    if int(np.count_nonzero(cand >= 0)) != len(text):
        key = text.astype(np.int64) * (k + 1) + rank
        first = key[pd.Series(key).duplicated().to_numpy()][0]
        raise InputError(f"search results: text {int(first // (k + 1))} has two rows at rank {int(first % (k + 1))}")
    seen = set()
    for t, hits in enumerate(cand):
        for j, row in enumerate(hits.tolist()):
            if row >= 0 and row not in seen:
                seen.add(row)
                taken[t] = row
                taken_rank[t] = j + 1
                break
    return taken, taken_rank


# ---------------------------------------------------------------- match-freq quotas
def class_targets(wnids: Sequence[str], all_wnids: Sequence[str]) -> Dict[str, int]:
    """Target per class = how many ImageNet-Captions images it has (0 for absent classes)."""
    counts = pd.Series(list(wnids), dtype="object").value_counts()
    unknown = sorted(set(counts.index) - set(all_wnids))
    if unknown:
        raise InputError(f"ImageNet-Captions wnids outside the class list: {unknown[:5]}")
    return {w: int(counts.get(w, 0)) for w in all_wnids}


@dataclass
class MatchSelection:
    #: the chosen rows: laion_index, wnid, from (`laionet` / `laionet-t2t`), sorted by laion_index
    rows: pd.DataFrame
    #: per class: wnid, target, from_laionet, from_t2t, achieved, shortfall
    table: pd.DataFrame
    read: int = 0
    dropped: Dict[str, int] = field(default_factory=dict)


def _first_by_key(df: pd.DataFrame, quota: Mapping[str, int], seed: int, salt: str) -> pd.Series:
    """Mask of the rows that are among the first quota[wnid] of their class when ordered by
    a seeded hash of laion_index (ties: laion_index): a reproducible sample per class."""
    keyed = df.assign(_key=stable_uniform(df["laion_index"].tolist(), seed, salt))
    keyed = keyed.sort_values(["wnid", "_key", "laion_index"], kind="stable")
    rank = keyed.groupby("wnid", sort=False).cumcount()
    limit = keyed["wnid"].map(quota).fillna(0).astype("int64")
    return (rank < limit).reindex(df.index)


def _check_unique(df: pd.DataFrame, what: str) -> None:
    dup = df["laion_index"][df["laion_index"].duplicated()]
    if len(dup):
        raise InputError(f"{what}: laion_index {int(dup.iloc[0])} occurs more than once")


def match_frequencies(laionet: pd.DataFrame, t2t: pd.DataFrame, targets: Mapping[str, int],
                      seed: int) -> MatchSelection:
    """Per class, up to `targets[wnid]` rows from LAIONet, the rest from the retrieved set.

    `laionet` and `t2t` have columns laion_index, wnid. Each part is a seeded sample of its
    class (same seed -> same rows, whatever the input order). A retrieved row already taken
    from LAIONet (the same image) is not taken twice.
    """
    _check_unique(laionet, "LAIONet metadata")
    _check_unique(t2t, "retrieved (t2t) metadata")
    laionet = laionet[["laion_index", "wnid"]].reset_index(drop=True)
    t2t = t2t[["laion_index", "wnid"]].reset_index(drop=True)
    available = laionet["wnid"].value_counts()
    from_laionet = {w: min(int(t), int(available.get(w, 0))) for w, t in targets.items()}
    take_laionet = _first_by_key(laionet, from_laionet, seed, "laionet")
    chosen = laionet[take_laionet]

    seen = t2t["laion_index"].isin(chosen["laion_index"])
    fresh = t2t[~seen]
    available_t2t = fresh["wnid"].value_counts()
    from_t2t = {w: min(int(t) - from_laionet[w], int(available_t2t.get(w, 0))) for w, t in targets.items()}
    take_t2t = _first_by_key(fresh, from_t2t, seed, "laionet-t2t")

    rows = pd.concat([chosen.assign(**{"from": "laionet"}), fresh[take_t2t].assign(**{"from": "laionet-t2t"})])
    rows = rows.sort_values(["laion_index", "from"], kind="stable").reset_index(drop=True)
    table = pd.DataFrame({"wnid": list(targets), "target": [int(t) for t in targets.values()],
                          "from_laionet": [from_laionet[w] for w in targets],
                          "from_t2t": [from_t2t[w] for w in targets]})
    table["achieved"] = table["from_laionet"] + table["from_t2t"]
    table["shortfall"] = table["target"] - table["achieved"]
    dropped = {"laionet_over_target": int((~take_laionet).sum()),
               "t2t_already_from_laionet": int(seen.sum()),
               "t2t_over_target": int((~take_t2t).sum())}
    return MatchSelection(rows, table, read=len(laionet) + len(t2t), dropped=dropped)


def shortfall_lines(table: pd.DataFrame, classnames: Mapping[str, str], limit: int = 20) -> List[str]:
    """Human-readable lines for the classes that stay below their target."""
    short = table[table["shortfall"] > 0].sort_values(["shortfall", "wnid"], ascending=[False, True])
    lines = [f"{w} ({classnames.get(w, '?')}): {a} of {t} (short by {s})"
             for w, a, t, s in zip(short["wnid"], short["achieved"], short["target"], short["shortfall"])]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more classes"]
    return lines

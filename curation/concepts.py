"""ImageNet-1k concepts: the concept table, lemma->wnid maps, ImageNet-100, prompt templates.

Everything a job needs at run time ships in `curation/data/` (built once from WordNet 3.0
and the reference class lists), so running a recipe needs neither WordNet nor network:

- `imagenet_classes.tsv`: the standard 1000 ILSVRC-2012 wnids (sorted; label = position)
  with the class names the seed recipes use (class-frequency files, `cname` captions);
- `imagenet_concepts.parquet`: the concept table (`load_concepts()`), built from the
  class list and WordNet by `build_concept_table()` (`curate concepts build`);
- `lemma2wnid_ilsvrc.json`: the default lemma map `standard` (LAIONet rule, `ilsvrc`
  scope, empty wnids ignored) of the standard 1000 wnids (`curate concepts lemma-map`);
  the map `laionet` (the study's) is derived from the concept table at run time;
- `imagenet100_labels.txt`: the labels of the ImageNet-100 subset.

WordNet (through nltk) is needed only to rebuild the table, or to build a lemma map with
`wordnet` uniqueness scope or hypernym extension.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import pandas as pd

from curation.errors import ConfigError, InputError, MissingResourceError

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
CLASSES_FILE = os.path.join(DATA_DIR, "imagenet_classes.tsv")
CONCEPT_TABLE_FILE = os.path.join(DATA_DIR, "imagenet_concepts.parquet")
LEMMA_MAP_FILE = os.path.join(DATA_DIR, "lemma2wnid_ilsvrc.json")
IMAGENET100_FILE = os.path.join(DATA_DIR, "imagenet100_labels.txt")

NUM_CLASSES = 1000
CONCEPT_COLUMNS = ("wnid", "label", "classname", "lemmas", "name", "definition")
#: Stale wnids found in older ILSVRC lists (LAIONet's synset file lists Siberian husky under
#: n02112837, which is not a WordNet 3.0 synset) -> the standard wnid.
WNID_ALIASES = {"n02112837": "n02110185"}
SCOPES = ("ilsvrc", "wordnet")
CLASS_SUBSETS = ("all", "imagenet100")
#: LAIONet extends a lemma with the first hypernym whose lemma counts sum to at least this.
WELL_KNOWN_HYPERNYM_MIN_COUNT = 2
WORDNET_VERSION = "3.0"

#: The packaged lemma maps, by the name `--lemma-map` takes: `standard` (the 1000 standard
#: wnids) and `laionet` (the same rule over LAIONet's 999-synset list, which lacks the
#: second `crane` synset: the map the study's LAIONet was labelled with).
LEMMA_MAPS = ("standard", "laionet")
#: crane (the machine): absent from LAIONet's synset list, so there `crane` is the bird.
LAIONET_MISSING_WNID = "n03126707"
#: the help of every job's `--lemma-map`
LEMMA_MAP_HELP = ("lemma map: a packaged one by name (standard: the 1000 standard wnids, 1,824 lemmas; "
                  "laionet: the study's, without the second crane synset n03126707, 1,825 lemmas) "
                  "or the path of a {lemma: wnid} JSON file")

_WNID_RE = re.compile(r"^n\d{8}$")
_BARE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


# ---------------------------------------------------------------- wnids and the class list
def normalize_wnid(wnid: str) -> str:
    """The standard wnid of `wnid` (n02112837 -> n02110185); other wnids are unchanged."""
    wnid = wnid.strip()
    return WNID_ALIASES.get(wnid, wnid)


def _check_wnid(wnid: str, where: str) -> str:
    if not _WNID_RE.match(wnid):
        raise InputError(f"{where}: {wnid!r} is not a noun wnid (expected 'n' and 8 digits)")
    return wnid


def read_classes(path: str = CLASSES_FILE) -> pd.DataFrame:
    """The class list (`wnid`, `classname`; label = row position) from a TSV with a header."""
    if not os.path.exists(path):
        raise InputError(f"class list not found: {path}")
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if list(df.columns) != ["wnid", "classname"]:
        raise InputError(f"{path}: expected the header 'wnid<TAB>classname', got {list(df.columns)}")
    for row, wnid in enumerate(df["wnid"], start=2):
        _check_wnid(wnid, f"{path}:{row}")
    return df


def classes_from_reference(synset_json: str, descriptors_json: str) -> pd.DataFrame:
    """The class list from the reference files of the seed recipes.

    `synset_json` (descriptors_imagenet_synset.json) is keyed by the 1000 wnids, and its
    sorted keys give the labels; `descriptors_json` (descriptors_imagenet.json) is keyed by
    the class names in label order. This is how `imagenet_classes.tsv` was made.
    """
    wnids = sorted(_read_json_object(synset_json))
    names = list(_read_json_object(descriptors_json))
    for path, items in ((synset_json, wnids), (descriptors_json, names)):
        if len(items) != NUM_CLASSES or len(set(items)) != NUM_CLASSES:
            raise InputError(f"{path}: expected {NUM_CLASSES} distinct keys, got {len(set(items))}")
    for w in wnids:
        _check_wnid(w, synset_json)
    return pd.DataFrame({"wnid": wnids, "classname": names})


def write_classes(df: pd.DataFrame, path: str) -> None:
    df[["wnid", "classname"]].to_csv(path, sep="\t", index=False, lineterminator="\n")


def _read_text(path: str) -> str:
    """A small local text file (a plain path or `file:` URI). Other schemes are read by the
    jobs, which pass their file-system layer (`udfs.files`) as `read_text`."""
    local = path
    if path.startswith("file:"):
        rest = path[len("file:"):]
        local = "/" + rest[2:].lstrip("/") if rest.startswith("//") else rest
    elif "://" in path:
        raise InputError(f"cannot read {path}: a URI is read through the jobs' file-system layer "
                         "(pass read_text=udfs.files.read_text)")
    try:
        with open(local, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except OSError as e:
        raise InputError(f"cannot read {path}: {e}") from None


def _read_json_object(path: str, read_text: Optional[Callable[[str], str]] = None) -> dict:
    try:
        data = json.loads((read_text or _read_text)(path))
    except json.JSONDecodeError as e:
        raise InputError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


# ---------------------------------------------------------------- WordNet
def load_wordnet():
    """nltk's WordNet 3.0 reader, or a one-line MissingResourceError saying how to get it."""
    import nltk

    how = ("install it with `python -m nltk.downloader wordnet` or set NLTK_DATA to a folder "
           "holding corpora/wordnet.zip")
    searched = os.pathsep.join(nltk.data.path)
    try:
        from nltk.corpus import wordnet as wn

        version = wn.get_version()
    except LookupError:
        raise MissingResourceError(f"WordNet not found by nltk (searched {searched}): {how}") from None
    except Exception as e:  # a corrupt zip / unreadable folder surfaces as various errors
        found = [os.path.join(d, "corpora", name) for d in nltk.data.path for name in ("wordnet", "wordnet.zip")
                 if os.path.exists(os.path.join(d, "corpora", name))]
        raise MissingResourceError(f"WordNet at {found[0] if found else searched} could not be read "
                                   f"({type(e).__name__}: {e}): {how}") from None
    if version != WORDNET_VERSION:
        raise MissingResourceError(
            f"WordNet {version} found, but wnids are WordNet {WORDNET_VERSION} offsets; {how}")
    return wn


def synset_of(wn, wnid: str):
    """The WordNet 3.0 noun synset of a wnid (aliases accepted)."""
    wnid = normalize_wnid(_check_wnid(wnid.strip(), "wnid"))
    with warnings.catch_warnings():
        # nltk warns and returns None for an unknown offset; we raise our own error instead
        warnings.simplefilter("ignore", UserWarning)
        synset = wn.synset_from_pos_and_offset("n", int(wnid[1:]))
    if synset is None:
        raise InputError(f"wnid {wnid} is not a WordNet {WORDNET_VERSION} noun synset")
    return synset


# ---------------------------------------------------------------- the concept table
def build_concept_table(classes: Optional[pd.DataFrame] = None, wn=None) -> pd.DataFrame:
    """The concept table from the class list and WordNet (columns `CONCEPT_COLUMNS`).

    `lemmas` are the synset's lemma names in WordNet order with '_' -> ' ' (case kept, as
    in LAIONet's synset file), `name` is the synset name without '.n.NN' (e.g. kit_fox).
    """
    classes = read_classes() if classes is None else classes
    wn = load_wordnet() if wn is None else wn
    rows = []
    for label, (wnid, classname) in enumerate(zip(classes["wnid"], classes["classname"])):
        synset = synset_of(wn, wnid)
        rows.append({
            "wnid": wnid,
            "label": label,
            "classname": classname,
            "lemmas": [lemma.name().replace("_", " ") for lemma in synset.lemmas()],
            "name": synset.name().rsplit(".", 2)[0],
            "definition": synset.definition(),
        })
    df = pd.DataFrame(rows, columns=list(CONCEPT_COLUMNS))
    df["label"] = df["label"].astype("int64")
    return df


def write_concept_table(df: pd.DataFrame, path: str) -> None:
    """Write the table as one parquet file with a fixed schema (no pandas index)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("wnid", pa.string()), ("label", pa.int64()), ("classname", pa.string()),
                        ("lemmas", pa.list_(pa.string())), ("name", pa.string()),
                        ("definition", pa.string())])
    table = pa.Table.from_pandas(df[list(CONCEPT_COLUMNS)], schema=schema, preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), path)


def read_concept_table(path: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    df = pq.read_table(path).to_pandas()
    df["lemmas"] = df["lemmas"].map(list)
    return df


@lru_cache(maxsize=1)
def _concepts() -> pd.DataFrame:
    return read_concept_table(CONCEPT_TABLE_FILE)


def load_concepts() -> pd.DataFrame:
    """The packaged concept table: 1000 rows sorted by wnid, label = position (a copy)."""
    return _concepts().copy()


def classnames() -> List[str]:
    return list(_concepts()["classname"])


def wnids() -> List[str]:
    return list(_concepts()["wnid"])


def wnid_to_label() -> Dict[str, int]:
    """{wnid: label} for the 1000 standard wnids (normalize aliases first)."""
    return {w: int(i) for w, i in zip(_concepts()["wnid"], _concepts()["label"])}


def imagenet100_labels() -> List[int]:
    """The 100 labels of ImageNet-100 (sorted)."""
    with open(IMAGENET100_FILE) as fh:
        return [int(line) for line in fh if line.strip()]


def imagenet100_wnids() -> List[str]:
    all_wnids = wnids()
    return [all_wnids[i] for i in imagenet100_labels()]


def class_subset_labels(name: str) -> List[int]:
    """The labels of a named class subset (`CLASS_SUBSETS`)."""
    if name == "all":
        return list(range(NUM_CLASSES))
    if name == "imagenet100":
        return imagenet100_labels()
    raise ValueError(f"class subset must be one of {CLASS_SUBSETS}, got {name!r}")


def openai_templates() -> List[str]:
    """The 80 OpenAI ImageNet prompt templates of open_clip, as '{}' format strings."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return [template("{}") for template in OPENAI_IMAGENET_TEMPLATES]


# ---------------------------------------------------------------- synset lists and lemma maps
def read_synsets_file(path: str) -> Dict[str, List[str]]:
    """A LAIONet synset list `wnid: lemma, lemma, ...` (optional `id: lemmas` header).

    Wnids are kept as written (the reference maps carry the stale husky wnid).
    """
    synsets: Dict[str, List[str]] = {}
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise InputError(f"synset list not found: {path}") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip() or (n == 1 and line.strip() == "id: lemmas"):
            continue
        wnid, sep, lemmas = line.partition(": ")
        if not sep or not lemmas.strip():
            raise InputError(f"{path}:{n}: expected 'wnid: lemma, lemma, ...', got {line!r}")
        wnid = _check_wnid(wnid.strip(), f"{path}:{n}")
        if wnid in synsets:
            raise InputError(f"{path}:{n}: wnid {wnid} is listed twice")
        synsets[wnid] = lemmas.split(", ")
    if not synsets:
        raise InputError(f"{path}: no synsets")
    return synsets


def standard_synsets() -> Dict[str, List[str]]:
    """{wnid: lemmas} of the standard 1000 wnids, from the packaged concept table."""
    return {wnid: list(lemmas) for wnid, lemmas in zip(_concepts()["wnid"], _concepts()["lemmas"])}


@dataclass
class LemmaMapBuild:
    """A lemma map and how it was made (for the job's report)."""
    lemma2wnid: Dict[str, str]
    #: (wnid, lemma) entries of the synset list
    entries: int
    #: entries that did not become a key, by reason
    dropped: Dict[str, int] = field(default_factory=dict)
    #: keys made by hypernym extension
    extended: List[str] = field(default_factory=list)


def build_lemma_map(synsets: Mapping[str, Sequence[str]], scope: str = "ilsvrc",
                    extend_hypernyms: bool = False, wn=None) -> Dict[str, str]:
    """A {lemma: wnid} map by LAIONet's rules (see `build_lemma_map_detailed`)."""
    return build_lemma_map_detailed(synsets, scope, extend_hypernyms, wn).lemma2wnid


def build_lemma_map_detailed(synsets: Mapping[str, Sequence[str]], scope: str = "ilsvrc",
                             extend_hypernyms: bool = False, wn=None) -> LemmaMapBuild:
    """A {lemma: wnid} map by LAIONet's rules, with counts.

    A lemma is kept when it is unique: it occurs once in the whole list (`ilsvrc`) or has
    one sense in all of WordNet (`wordnet`); an ambiguous lemma would label captions that
    mean something else. A wnid left without a lemma is ignored, or with
    `extend_hypernyms` each of its lemmas is extended with the most frequent lemma of its
    first well-known hypernym ("crane" -> "crane bird"), unless that word is already in it.

    LAIONet raised when two wnids produced the same key; here such a key is dropped as
    ambiguous, like a non-unique lemma (with another hypernym order "missile" and
    "projectile, missile" both become "... weapon"). WordNet is needed for the `wordnet`
    scope and for the extension only.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    if (scope == "wordnet" or extend_hypernyms) and wn is None:
        wn = load_wordnet()
    counts = Counter(lemma for lemmas in synsets.values() for lemma in lemmas)

    def is_unique(lemma: str, wnid: str) -> bool:
        if scope == "ilsvrc":
            return counts[lemma] == 1
        senses = wn.lemmas(lemma.replace(" ", "_"))
        if not senses:
            raise InputError(f"lemma {lemma!r} of {wnid} is not in WordNet")
        return len(senses) == 1

    dropped: Counter = Counter()
    claims: Dict[str, List[str]] = {}  # key -> the wnid of each entry that produced it
    extended = set()
    for wnid, lemmas in synsets.items():
        keys = [lemma for lemma in lemmas if is_unique(lemma, wnid)]
        if not keys and extend_hypernyms:
            word = _well_known_hypernym_word(wn, wnid)
            keys = [lemma if word in lemma else f"{lemma} {word}" for lemma in lemmas]
            extended.update(keys)
        dropped["not_unique"] += len(lemmas) - len(keys)
        for key in keys:
            claims.setdefault(key, []).append(wnid)

    lemma2wnid: Dict[str, str] = {}
    for key, owners in claims.items():
        if len(set(owners)) > 1:
            dropped["ambiguous_extension" if key in extended else "ambiguous"] += len(owners)
        else:
            lemma2wnid[key] = owners[0]
            dropped["duplicate"] += len(owners) - 1
    return LemmaMapBuild(lemma2wnid=lemma2wnid, entries=int(sum(counts.values())),
                         dropped={k: int(v) for k, v in sorted(dropped.items()) if v},
                         extended=sorted(k for k in lemma2wnid if k in extended))


def _well_known_hypernym_word(wn, wnid: str) -> str:
    """The most frequent lemma (first on ties) of the first hypernym with count >= 2.

    "First" is by synset name: nltk keeps hypernym pointers in a set, so `hypernyms()[0]`
    changes with PYTHONHASHSEED; nltk releases of LAIONet's time sorted them by name,
    which reproduces its `wordnet`-scope map exactly.
    """
    synset = synset_of(wn, wnid)
    while True:
        hypernyms = synset.hypernyms()
        if not hypernyms:
            raise InputError(f"wnid {wnid}: no well-known hypernym in WordNet to extend its lemmas with")
        synset = min(hypernyms, key=lambda s: s.name())
        if sum(lemma.count() for lemma in synset.lemmas()) >= WELL_KNOWN_HYPERNYM_MIN_COUNT:
            break
    best = max(synset.lemmas(), key=lambda lemma: lemma.count())
    return best.name().replace("_", " ")


def lemma_map_json(lemma2wnid: Mapping[str, str]) -> str:
    """The map as JSON, one entry a line, sorted (the layout of the LAIONet reference files)."""
    return json.dumps(dict(lemma2wnid), indent=0, sort_keys=True, ensure_ascii=False)


def laionet_synsets() -> Dict[str, List[str]]:
    """LAIONet's synset list rebuilt from the standard one: the 1000 standard wnids without
    n03126707 (construction crane). Its `ilsvrc` map equals LAIONet's
    `lemma2wnid_unique_in_ilsvrc_ignored_empty_wnids.json` (Siberian husky under its
    standard wnid)."""
    return {w: lemmas for w, lemmas in standard_synsets().items() if w != LAIONET_MISSING_WNID}


def check_lemma_map(source: Optional[str], key: str = "lemma_map") -> None:
    """ConfigError unless `source` is a packaged map name, a URI or an existing file.

    A bare name (letters, digits, `_`, `-`) that is neither a packaged map nor an existing
    file is taken for a misspelt name; anything else for a missing file.
    """
    if source is None or source in LEMMA_MAPS or "://" in source or os.path.exists(source):
        return
    if _BARE_NAME_RE.match(source):
        raise ConfigError(key, f"unknown lemma map {source!r}; allowed values: {', '.join(LEMMA_MAPS)} "
                               "or the path of a {lemma: wnid} JSON file")
    raise ConfigError(key, f"file not found: {source}")


def load_lemma_map(source: Optional[str] = None, read_text: Optional[Callable[[str], str]] = None) -> Dict[str, str]:
    """A {lemma: wnid} map: a packaged one by name (`standard`, the default: `ilsvrc` scope,
    standard 1000 wnids, 1,824 lemmas; `laionet`: the same rule without n03126707, 1,825
    lemmas) or a JSON object file (any other value is a path). Wnids are normalized
    (n02112837 -> n02110185) and must be among the 1000 standard wnids.

    `read_text(path) -> str` reads a file's text (the jobs pass their file-system layer,
    `udfs.files`, so that `s3a://` and `hdfs://` work as for every other path); default: a
    local path or `file:` URI."""
    source = source or "standard"
    if source == "laionet":
        return build_lemma_map(laionet_synsets(), "ilsvrc")
    if source == "standard":
        source = LEMMA_MAP_FILE
    data = _read_json_object(source, read_text if source != LEMMA_MAP_FILE else None)
    known = set(wnids())
    out: Dict[str, str] = {}
    for lemma, wnid in data.items():
        if not isinstance(wnid, str):
            raise InputError(f"{source}: lemma {lemma!r}: wnid must be a string, got {wnid!r}")
        standard = normalize_wnid(wnid)
        if standard not in known:
            raise InputError(f"{source}: lemma {lemma!r}: {wnid!r} is not one of the 1000 ImageNet wnids")
        out[lemma] = standard
    return out


def wnids_without_lemma(lemma2wnid: Mapping[str, str], all_wnids: Iterable[str]) -> List[str]:
    """The wnids of `all_wnids` that no lemma of the map points to (sorted)."""
    covered = set(lemma2wnid.values())
    return sorted(set(all_wnids) - covered)

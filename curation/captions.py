"""ImageNet-Captions variants: caption rules, file names, and reading the metadata list.

The seed recipe (`create_incaps_caption_variants.py` and friends of "What makes CLIP
robust to long-tailed pre-training data") builds open_clip training TSVs
(`filepath<TAB>label<TAB>caption`) from `imagenet_captions.json`, a JSON list of
`{filename, wnid, title, description, tags}` entries. This module holds the rules as
pure functions, so the Spark job, the benchmark's pandas baseline and the tests share them:

- `CaptionSpec` + `CaptionBuilder.row()`: entry -> (filepath, label, caption) or a reason
  for dropping it (bad entry, unknown wnid, empty caption);
- `read_entries` (the file's bytes -> the JSON list, or one error with the byte offset)
  and `caption_rows` (the list -> the kept rows in output order, and the tally of the
  rest): the whole `curate incaps captions` parse, on plain Python objects;
- the original scripts' output names (`caption_file_name`, `caption_frequency_name`,
  `subset_names`, `trim_tail_names`).

Every random choice (template, lemma, row order) is `curation.sampling` hashing of the
entry's file name and the seed, so it does not depend on the order of the list; or, with
`--sampling original`, the original script's generator run over the list as it ran
(`caption_rows`).
"""
from __future__ import annotations

import gc
import json
import random
import re
from dataclasses import dataclass
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from curation.errors import InputError
from curation.paths import unsafe_name
from curation.sampling import SAMPLING_MODES, stable_choice_index, stable_key

TEXT_FIELDS = ("title", "tags", "description")
#: mode -> template; `openai80` picks one of the 80 OpenAI ImageNet templates per row
MODES = {"cname": "{}", "a+cname": "a {}", "photo": "a photo of a {}", "openai80": None}
#: the original's names of the frequency files without a class-name prefix, by the
#: (title, tags, description) fields used
FREQUENCY_NAMES = {
    (False, False, True): "description_only", (False, True, False): "tags_only",
    (False, True, True): "no_title", (True, False, False): "title_only",
    (True, False, True): "no_tags", (True, True, False): "no_description",
    (True, True, True): "full_text",
}
#: row statuses; everything but `kept` is a drop reason in the stage report
KEPT, EMPTY_CAPTION, BAD_ENTRY, UNKNOWN_WNID = "kept", "empty_caption", "bad_entry", "unknown_wnid"
BAD_ROW_STATUSES = (BAD_ENTRY, UNKNOWN_WNID)
#: a signed 64-bit order key from the unsigned `stable_key` (order preserved)
_SIGN = 2 ** 63
_COUNT_SUFFIX = re.compile(r"_\d+$")
_STR_ONLY = {str}


def clean_text(text: str) -> str:
    """Newlines, carriage returns and tabs become spaces (one each, as in the original),
    so a caption is one TSV field."""
    # three `replace`s: several times faster than `str.translate` with a dict on non-ASCII text
    return text.replace("\n", " ").replace("\r", " ").replace("\t", " ")


def order_key(item_id: str, seed: int, salt: str) -> int:
    """A reproducible signed 64-bit sort key for a row (Spark's LongType)."""
    return stable_key(item_id, seed, salt) - _SIGN


# ---------------------------------------------------------------- caption rules
@dataclass(frozen=True)
class CaptionSpec:
    use_title: bool = False
    use_tags: bool = False
    use_description: bool = False
    append_cname: bool = False
    use_synset: bool = False
    mode: str = "cname"
    seed: int = 0

    @property
    def fields(self) -> Tuple[str, ...]:
        used = (self.use_title, self.use_tags, self.use_description)
        return tuple(f for f, use in zip(TEXT_FIELDS, used) if use)

    def problem(self) -> Optional[Tuple[str, str]]:
        """(key, message) when the combination makes no caption, else None."""
        if self.mode not in MODES:
            return "mode", f"got {self.mode!r}; allowed values: {', '.join(MODES)}"
        if not (self.fields or self.append_cname):
            return "append_cname", "no caption source: use a text field (--use-title/--use-tags/--use-description) or --append-cname"
        if self.use_synset and not self.append_cname:
            return "use_synset", "--use-synset chooses the name that --append-cname adds; set --append-cname too"
        return None


def join_caption(title: str, tags: Sequence[str], description: str, spec: CaptionSpec,
                 prefix: Optional[str] = None) -> str:
    """The caption of one entry, exactly as the original builds it: the asked-for non-empty
    fields (title, space-joined tags, description), a space before a field when text came
    before it, then newlines/tabs as spaces; with a `prefix` (the filled template) in front,
    followed by a space. Nothing is trimmed: a template-only caption is `"a tench "`, and
    the TSV writer (`curation.tsv`) keeps its spaces."""
    text = ""
    if spec.use_title and title:
        text = title
    if spec.use_tags and tags:
        text += (" " if text else "") + " ".join(tags)
    if spec.use_description and description:
        text += (" " if text else "") + description
    text = clean_text(text)
    return text if prefix is None else f"{prefix} {text}"


def is_blank(caption: str) -> bool:
    """The original's test for a caption it leaves out: nothing but spaces."""
    return not caption.replace(" ", "")


def entry_problem(entry: Any) -> Optional[str]:
    """Why an element of the list is not a valid entry (missing field, wrong type), or None."""
    if type(entry) is dict:  # fast path for what `json` returns; anything else: the checks below
        try:
            name, wnid, title, description, tags = (entry["filename"], entry["wnid"], entry["title"],
                                                    entry["description"], entry["tags"])
        except KeyError:
            pass
        else:
            if (type(name) is str and type(wnid) is str and type(title) is str
                    and type(description) is str and type(tags) is list
                    and (not tags or set(map(type, tags)) == _STR_ONLY)
                    and unsafe_name(name) is None):
                return None
    if not isinstance(entry, dict):
        return f"entry is a JSON {_json_type(entry)}, not an object"
    for name in ("filename", "wnid", "title", "description"):
        if name not in entry:
            return f"missing field '{name}'"
        if not isinstance(entry[name], str):
            return f"field '{name}' is a JSON {_json_type(entry[name])}, expected a string"
    if "tags" not in entry:
        return "missing field 'tags'"
    tags = entry["tags"]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return f"field 'tags' is {json.dumps(tags, ensure_ascii=False)[:60]}, expected a list of strings"
    name = entry["filename"]
    why = unsafe_name(name)  # the one rule for values that become path components
    if why:
        return f"field 'filename' {name[:80]!r} is not a plain file name ({why})"
    return None


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


class Row(NamedTuple):
    """One list element's outcome: `status` is KEPT or the reason it is dropped."""
    status: str
    filename: Optional[str]
    filepath: Optional[str] = None
    label: Optional[int] = None
    caption: Optional[str] = None
    problem: Optional[str] = None


class CaptionBuilder:
    """Turns entries into output rows for one `CaptionSpec` (class tables built once).

    `classes` is the concept table (`curation.concepts.load_concepts()`: wnid, label,
    classname, lemmas; or a dict of those columns as lists) and `templates` the 80 OpenAI
    templates (needed for `openai80`).
    """

    def __init__(self, spec: CaptionSpec, imagenet_root: str, classes, templates: Sequence[str] = ()):
        self.spec = spec
        self.train_dir = imagenet_root.rstrip("/") + "/train"
        self.label = dict(zip(classes["wnid"], (int(x) for x in classes["label"])))
        self.classname = dict(zip(classes["wnid"], classes["classname"]))
        self.lemmas = dict(zip(classes["wnid"], (list(x) for x in classes["lemmas"])))
        template = MODES[spec.mode]
        self.templates = [template] if template is not None else list(templates)
        if not self.templates:
            raise ValueError("mode openai80 needs the 80 templates")

    def prefix(self, filename: str, wnid: str, picks: Optional[Tuple[int, int]] = None) -> Optional[str]:
        """The filled template, or None without --append-cname. `picks` (template index,
        lemma index) are the original script's draws (`caption_rows` with
        `sampling="original"`); without them both are keyed hashes of the file name."""
        if not self.spec.append_cname:
            return None
        seed = self.spec.seed
        if self.spec.use_synset:
            lemmas = self.lemmas[wnid]
            name = lemmas[picks[1] if picks is not None else
                          stable_choice_index(filename, len(lemmas), seed, "lemma")]
        else:
            name = self.classname[wnid]
        if len(self.templates) == 1:
            template = self.templates[0]
        else:
            template = self.templates[picks[0] if picks is not None else
                                      stable_choice_index(filename, len(self.templates), seed, "template")]
        return template.format(name)

    def draw_code(self, entry: Any) -> int:
        """The entry's label when the original script builds (and draws for) its caption,
        i.e. a valid entry of a known wnid; else -1 (`caption_rows`)."""
        if entry_problem(entry) is not None:
            return -1
        return self.label.get(entry["wnid"], -1)

    def row(self, entry: Any, picks: Optional[Tuple[int, int]] = None) -> Row:
        problem = entry_problem(entry)
        filename = entry.get("filename") if isinstance(entry, dict) else None
        filename = filename if isinstance(filename, str) else None
        if problem:
            return Row(BAD_ENTRY, filename, problem=problem)
        wnid = entry["wnid"]
        if wnid not in self.label:
            return Row(UNKNOWN_WNID, filename,
                       problem=f"wnid {wnid!r} is not one of the 1000 ImageNet classes")
        caption = join_caption(entry["title"], entry["tags"], entry["description"], self.spec,
                               self.prefix(filename, wnid, picks))
        return Row(EMPTY_CAPTION if is_blank(caption) else KEPT, filename,
                   f"{self.train_dir}/{wnid}/{filename}", self.label[wnid], caption)


# ---------------------------------------------------------------- file names of the original
def caption_file_name(spec: CaptionSpec, n_rows: int) -> str:
    """e.g. `incaps_title_tags_description+cname_448896.tsv`, `incaps_openai80_synset_448896.tsv`."""
    fields = "".join(f"_{f}" for f in spec.fields)
    if not spec.fields:
        variant = f"_{spec.mode}"
    elif spec.append_cname:
        variant = f"+{spec.mode}"
    else:
        variant = ""
    return f"incaps{fields}{variant}{'_synset' if spec.use_synset else ''}_{n_rows}.tsv"


def caption_frequency_name(spec: CaptionSpec) -> str:
    """`class_frequency_incaps_imagenet_ori.txt` when a class name is added (every entry
    is kept), else `class_frequency_incaps_<full_text|title_only|no_tags|...>_imagenet_ori.txt`."""
    if spec.append_cname:
        return "class_frequency_incaps_imagenet_ori.txt"
    used = (spec.use_title, spec.use_tags, spec.use_description)
    return f"class_frequency_incaps_{FREQUENCY_NAMES[used]}_imagenet_ori.txt"


def _stem(df_name: str) -> str:
    """The input TSV's name without directory, `.tsv` and the `_<rows>` suffix."""
    base = df_name.rstrip("/").rsplit("/", 1)[-1]
    base = base[:-4] if base.endswith(".tsv") else base
    return _COUNT_SUFFIX.sub("", base)


def subset_names(df_name: str, n_rows: int, n_classes: Optional[int] = None,
                 in100: bool = False, n: Optional[int] = None) -> Tuple[str, str]:
    """(TSV name, frequency file name) of a subset, as the original names them:
    `in<k>caps_..._<rows>.tsv` for a class subset, `..._<n>.tsv` for a row sample;
    frequency files `class_frequency_incaps_imagenet100_ori.txt` (ImageNet-100),
    `class_frequency_in<k>caps_ori.txt` (k random classes), `..._n<n>_ori.txt`."""
    stem = _stem(df_name)
    tag = "incaps"
    if n_classes is not None:
        stem = stem.replace("incaps", f"in{n_classes}caps", 1)
        tag = "incaps_imagenet100" if in100 else f"in{n_classes}caps"
    freq = f"class_frequency_{tag}{f'_n{n}' if n is not None else ''}_ori.txt"
    return f"{stem}_{n_rows}.tsv", freq


def trim_tail_names(df_name: str, lastk: int, ceil: int) -> Tuple[str, str]:
    """(`<stem>_tail<k>ceil<c>.tsv`, `class_frequency_incaps_tail<k>ceil<c>_imagenet_ori.txt`)."""
    tag = f"tail{lastk}ceil{ceil}"
    return f"{_stem(df_name)}_{tag}.tsv", f"class_frequency_incaps_{tag}_imagenet_ori.txt"


# ---------------------------------------------------------------- class subsets and trim-tail
def tail_labels(counts: Dict[int, int], n_classes: int, lastk: int) -> List[int]:
    """The `lastk` labels with the fewest examples (ties broken by label; empty classes count)."""
    return sorted(range(n_classes), key=lambda lab: (counts.get(lab, 0), lab))[:lastk]


def trim_tail(rows, n_classes: int, lastk: int, ceil: int, seed: int):
    """trim-tail's rule on a pandas frame of (filepath, label, ...) in file order: the rows
    kept when the `lastk` smallest classes (`tail_labels`) are capped at `ceil` rows each.

    A capped class keeps its `ceil` rows of smallest `order_key(filepath, seed, "trim")`
    (ties by file position); every other row stays; the file order is kept. The Spark job
    (`jobs/incaps.py: run_trim_tail`) does the same with a window over the tail classes.
    """
    import numpy as np
    import pandas as pd

    counts = rows["label"].value_counts().to_dict()
    tail = set(tail_labels({int(k): int(v) for k, v in counts.items()}, n_classes, lastk))
    in_tail = rows["label"].isin(tail).to_numpy()
    if not in_tail.any():
        return rows
    pos = np.arange(len(rows))
    keys = [order_key(f, seed, "trim") for f in rows["filepath"][in_tail]]
    ranked = (pd.DataFrame({"label": rows["label"][in_tail].to_numpy(), "key": keys, "pos": pos[in_tail]})
              .sort_values(["key", "pos"], kind="stable"))
    kept_tail = ranked.groupby("label", sort=False).head(ceil)["pos"].to_numpy()
    keep = ~in_tail
    keep[kept_tail] = True
    return rows[keep]


# ---------------------------------------------------------------- the whole list, in one pass
#: how many offending entries a report lists
BAD_SAMPLE = 10
_BOM = b"\xef\xbb\xbf"
_JSON_SPACE = " \t\r\n"


def read_entries(data: bytes, source: str) -> list:
    """The entries of `imagenet_captions.json` from the file's bytes: the JSON list as
    `json.load` returns it (UTF-8; a leading byte order mark is skipped).

    A file that is empty, not UTF-8, not valid JSON, cut off or not a list is one
    `InputError` naming `source` and the byte offset of the problem (the offset is in
    bytes of the file, whatever characters come before it)."""
    if not data:
        raise InputError(f"{source}: the file is empty (expected a JSON list of entries)")
    skip = len(_BOM) if data.startswith(_BOM) else 0
    try:
        text = str(memoryview(data)[skip:], "utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{source}: not UTF-8 text at byte {skip + e.start}") from None
    # the parse makes millions of containers and no cycles: with the garbage collector on,
    # its passes over the growing heap took ~1.4 of the parse's 2.4 CPU s at 450k entries
    collecting = gc.isenabled()
    gc.disable()
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as e:
        at = skip + len(text[:e.pos].encode("utf-8"))
        msg, hint = e.msg, ""
        if e.pos >= len(text):
            hint = " (the file ends there: is it cut off?)"
        elif msg.endswith(" starting at"):  # "Unterminated string starting at": the file ends in it
            msg, hint = msg[:-len(" starting at")], " (the file ends inside it: is it cut off?)"
        raise InputError(f"{source}: invalid JSON at byte {at}: {msg}{hint}") from None
    finally:
        if collecting:
            gc.enable()
    if not isinstance(entries, list):
        at = skip + len(text) - len(text.lstrip(_JSON_SPACE))  # JSON white space is ASCII
        raise InputError(f"{source}: the file is not a JSON list: a JSON {_json_type(entries)} starts at "
                         f"byte {at} (expected '[')")
    return entries


@dataclass
class CaptionRows:
    """What `caption_rows` made of the list."""
    #: (filepath, label, caption) of the kept entries, in output order
    rows: List[Tuple[str, int, str]]
    #: entries in the list
    read: int
    #: entries by status (KEPT or a drop reason)
    by_status: Dict[str, int]
    #: kept rows by label
    by_label: Dict[int, int]
    #: the first `BAD_SAMPLE` bad entries in list order: (entry number, filename, problem)
    bad: List[Tuple[int, Optional[str], str]]
    #: bad entries (BAD_ROW_STATUSES) in all
    n_bad: int


def caption_rows(entries: Sequence[Any], builder: CaptionBuilder, shuffle: bool,
                 sampling: str = "keyed") -> CaptionRows:
    """The kept rows of the JSON list `entries`, in output order, and the tally of the rest.

    Without `shuffle` the rows keep the list order. `sampling="keyed"`: template and lemma
    are keyed hashes of the file name (`CaptionBuilder.row`) and `shuffle` sorts by
    `order_key(filename, seed, "shuffle")` (list position between equal keys), so the
    output depends on the seed and the entries, not on their order in the list.
    `sampling="original"`: `create_incaps_caption_variants.py`'s random stream, run as it
    runs: Python's generator seeded with `seed` shuffles the whole list (`shuffle`; bad
    entries and unknown wnids take part), then, in that order, each valid entry of a
    known wnid draws `random.choice` of the templates (`openai80`) and then of its
    synset's lemmas (`use_synset`), with `append_cname` only (without it no draw reaches
    the output); the rows come out in that order."""
    if sampling not in SAMPLING_MODES:
        raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
    spec = builder.spec
    seed = spec.seed
    n = len(entries)
    rng = None
    order = plain = range(n)
    if sampling == "original":
        rng = random.Random(seed)
        if shuffle:
            order = list(plain)
            rng.shuffle(order)
    n_templates = len(builder.templates) if spec.append_cname else 0
    draw_lemma = spec.append_cname and spec.use_synset
    draws = rng is not None and (n_templates > 1 or draw_lemma)
    keyed_shuffle = shuffle and rng is None

    rows: List[Tuple[str, int, str]] = []
    keys: List[Tuple[int, int]] = []
    by_status: Dict[str, int] = {}
    by_label: Dict[int, int] = {}
    bad: List[Tuple[int, Optional[str], str]] = []
    for p in order:
        entry = entries[p]
        picks = None
        if draws and builder.draw_code(entry) >= 0:
            template = rng.choice(range(n_templates)) if n_templates > 1 else -1
            lemma = rng.choice(range(len(builder.lemmas[entry["wnid"]]))) if draw_lemma else -1
            picks = (template, lemma)
        r = builder.row(entry, picks)
        by_status[r.status] = by_status.get(r.status, 0) + 1
        if r.status == KEPT:
            by_label[r.label] = by_label.get(r.label, 0) + 1
            rows.append((r.filepath, r.label, r.caption))
            if keyed_shuffle:
                keys.append((order_key(r.filename, seed, "shuffle"), p))
        elif r.status in BAD_ROW_STATUSES:
            bad.append((p, r.filename, r.problem))
    if keyed_shuffle:
        rows = [rows[i] for i in sorted(range(len(rows)), key=keys.__getitem__)]
    if order is not plain:  # the original's shuffled order: the report lists bad entries in list order
        bad.sort(key=lambda b: b[0])
    return CaptionRows(rows, n, by_status, by_label, bad[:BAD_SAMPLE], len(bad))

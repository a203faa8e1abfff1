"""ImageNet-Captions variants: caption rules, file names, and reading the metadata list.

The seed recipe (`create_incaps_caption_variants.py` and friends of "What makes CLIP
robust to long-tailed pre-training data") builds open_clip training TSVs
(`filepath<TAB>label<TAB>caption`) from `imagenet_captions.json`, a JSON list of
`{filename, wnid, title, description, tags}` entries. This module holds the rules as
pure functions, so the Spark job, the benchmark's pandas baseline and the tests share them:

- `CaptionSpec` + `CaptionBuilder.rows()`: entry -> (filepath, label, caption) or a reason
  for dropping it (bad entry, unknown wnid, empty caption);
- the original scripts' output names (`caption_file_name`, `caption_frequency_name`,
  `subset_names`, `trim_tail_names`);
- `iter_list_elements`: the elements of a JSON list that *start* in a byte range, so a
  large list can be parsed by several tasks (see its docstring for why that is safe).

Every random choice (template, lemma, row order) is `curation.sampling` hashing of the
entry's file name and the seed, so it does not depend on row order or partitioning; or,
with `--sampling original`, the original script's draws by list position (`CaptionDraws`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from curation.paths import unsafe_name
from curation.sampling import CaptionDraws, stable_choice_index, stable_key

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
        lemma index) are the original script's draws (`curation.sampling.CaptionDraws`);
        without them both are keyed hashes of the file name."""
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
        i.e. a valid entry of a known wnid; else -1."""
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


# ---------------------------------------------------------------- reading a JSON list in ranges
#: an entry is at most this long (bytes); a longer one makes the parallel parse fall back
MAX_ENTRY_BYTES = 1 << 20
_WS = re.compile(r"[ \t\r\n]*")
_LIST_START = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*\[[ \t\r\n]*")


@dataclass
class ListSlice:
    """What `iter_list_elements` found in its byte range."""
    #: byte offset of the first element it parsed (-1: none starts in the range)
    first: int = -1
    #: byte offset of the element after its last one (-1: the list ends there)
    next: int = -1
    count: int = 0
    #: why the range could not be parsed (the caller then parses the file in one piece)
    error: Optional[str] = None


def split_ranges(size: int, parts: int) -> List[Tuple[int, int]]:
    parts = max(1, min(parts, size))
    step = -(-size // parts)
    return [(s, min(size, s + step)) for s in range(0, size, step)]


def _char_start(data, i: int) -> int:
    """The largest UTF-8 character start <= i."""
    while 0 < i < len(data) and (data[i] & 0xC0) == 0x80:
        i -= 1
    return i


def _next_candidate(data, pos: int, end: int) -> int:
    """The first '{' in [pos, end) preceded (after whitespace) by ',' or '['."""
    while True:
        s = data.find(b"{", pos, end)
        if s < 0:
            return -1
        j = s - 1
        while j >= 0 and data[j] in b" \t\r\n":
            j -= 1
        if j >= 0 and data[j] in b",[":
            return s
        pos = s + 1


def iter_list_elements(data, start: int, end: int, out: ListSlice) -> Iterator[Any]:
    """Yield the elements of the JSON list in `data` (bytes or mmap, UTF-8) that start at a
    byte offset in [start, end); fill `out`.

    Why several tasks can do this independently: a range other than the first starts at
    its first '{' that follows ',' or '[' (whitespace between). Inside a JSON string such a
    '{' is rare, and a false start is caught afterwards: the ranges are right exactly when
    each range's `next` equals the following non-empty range's `first` and the last one
    reaches the end of the list; otherwise the caller parses the file as one range, which
    is always right. Errors are reported in `out.error`, never raised.
    """
    size = len(data)
    if start == 0:
        m = _LIST_START.match(data)
        if not m:
            out.error = "the file is not a JSON list (it must start with '[')"
            return
        first = m.end()
        if data[first:first + 1] == b"]":
            if bytes(data[first + 1:]).strip():
                out.error = f"unexpected data after the end of the list at byte {first + 1}"
            out.first = first
            return
    else:
        first = _next_candidate(data, start, end)
        if first < 0:
            return
    out.first = first
    stop_byte = size if end >= size else _char_start(data, end)
    text_end = size if end >= size else _char_start(data, min(size, stop_byte + MAX_ENTRY_BYTES))
    try:
        text = bytes(data[first:text_end]).decode("utf-8")
        limit = len(text) - len(bytes(data[stop_byte:text_end]).decode("utf-8"))
    except UnicodeDecodeError as e:
        out.error = f"not UTF-8 text near byte {first + e.start}"
        return
    decoder = json.JSONDecoder()

    def byte_at(pos: int) -> int:
        return first + len(text[:pos].encode("utf-8"))

    pos = 0
    while pos < limit:
        try:
            element, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            out.error = f"invalid JSON at byte {byte_at(e.pos)}: {e.msg}"
            return
        out.count += 1
        yield element
        pos = _WS.match(text, pos).end()
        sep = text[pos:pos + 1]
        if sep == "]":
            if text[pos + 1:].strip() or text_end < size:
                out.error = f"unexpected data after the end of the list at byte {byte_at(pos + 1)}"
            return
        if sep != ",":
            out.error = (f"expected ',' or ']' after an entry at byte {byte_at(pos)}"
                         if sep else "the list is not closed with ']'")
            return
        pos = _WS.match(text, pos + 1).end()
    out.next = byte_at(pos)


def chain_problem(slices: Sequence[ListSlice]) -> Optional[str]:
    """None when the ranges' elements are exactly the list's elements (see
    `iter_list_elements`), else why not."""
    found = [s for s in slices if s.first >= 0 or s.error]
    for s in found:
        if s.error:
            return s.error
    for a, b in zip(found, found[1:]):
        if a.next != b.first:
            return f"range ending at byte {a.next} does not meet the next one at byte {b.first}"
    if found and found[-1].next != -1:
        return "the list is not closed with ']'"
    return None


# ---------------------------------------------------------------- one range of the list, tallied
#: how many offending entries a report lists
BAD_SAMPLE = 10


@dataclass
class RangeTally:
    """What one byte range of the list held: where its entries start and end, rows by
    status and kept rows by label, and its first bad entries (index in the range,
    filename, problem). Small, so tasks can send it to the driver instead of the rows."""
    found: ListSlice = field(default_factory=ListSlice)
    by_status: Dict[str, int] = field(default_factory=dict)
    by_label: Dict[int, int] = field(default_factory=dict)
    bad: List[Tuple[int, Optional[str], str]] = field(default_factory=list)


def kept_rows(data, start: int, end: int, builder: CaptionBuilder, shuffle: bool,
              tally: RangeTally, draws: Optional[CaptionDraws] = None,
              base: int = 0) -> Iterator[Tuple[int, str, int, str, Optional[int]]]:
    """(index in range, filepath, label, caption, shuffle key or None) of the kept entries
    that start in [start, end); everything else is counted in `tally`.

    With `draws` (`--sampling original`; `base` is the list position of the range's first
    entry) the shuffle key is the entry's place in the original's shuffled list and the
    template / lemma are the original's draws; without them both are keyed hashes."""
    seed = builder.spec.seed
    for idx, entry in enumerate(iter_list_elements(data, start, end, tally.found)):
        if draws is None:
            r = builder.row(entry)
        else:
            r = builder.row(entry, draws.picks(base + idx))
        tally.by_status[r.status] = tally.by_status.get(r.status, 0) + 1
        if r.status == KEPT:
            tally.by_label[r.label] = tally.by_label.get(r.label, 0) + 1
            if not shuffle:
                key = None
            elif draws is None:
                key = order_key(r.filename, seed, "shuffle")
            else:
                key = int(draws.rank[base + idx])
            yield idx, r.filepath, r.label, r.caption, key
        elif r.status in BAD_ROW_STATUSES and len(tally.bad) < BAD_SAMPLE:
            tally.bad.append((idx, r.filename, r.problem))


def draw_codes(data, start: int, end: int, builder: CaptionBuilder, found: ListSlice) -> bytes:
    """`CaptionBuilder.draw_code` of each entry that starts in [start, end), in list order,
    as int16 bytes (what `--sampling original` needs of a range: no text); `found` as in
    `iter_list_elements`."""
    from array import array

    codes = array("h", (builder.draw_code(e) for e in iter_list_elements(data, start, end, found)))
    return codes.tobytes()


@dataclass
class ListTally:
    """The tallies of all ranges, in list order."""
    problem: Optional[str]
    read: int
    by_status: Dict[str, int]
    by_label: Dict[int, int]
    #: the first bad entries: (entry number in the list, filename, problem)
    bad: List[Tuple[int, Optional[str], str]]


def combine_tallies(tallies: Sequence[RangeTally]) -> ListTally:
    by_status: Dict[str, int] = {}
    by_label: Dict[int, int] = {}
    bad: List[Tuple[int, Optional[str], str]] = []
    read = 0
    for t in tallies:
        for key, n in t.by_status.items():
            by_status[key] = by_status.get(key, 0) + n
        for key, n in t.by_label.items():
            by_label[key] = by_label.get(key, 0) + n
        bad.extend((read + idx, name, problem) for idx, name, problem in t.bad)
        read += t.found.count
    return ListTally(chain_problem([t.found for t in tallies]), read, by_status, by_label, bad[:BAD_SAMPLE])

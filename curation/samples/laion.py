"""Realistic LAION-400M-schema rows for tests, benchmarks and the demo (no network).

Captions exercise what the LAIONet stages must get right: positives for many classes in
case and punctuation variants, captions naming two classes, ambiguous words (`crane`, a
`Jaguar` car), near misses (`dogs` is not `dog`, `paid` contains `ai`), lemmas with
punctuation (`U-boat`), other languages, nulls, empty strings and very long captions.
URLs are `{base}/{kind}/{key}.{ext}` for the local image server (see CONTRIBUTING.md).

Everything is a function of (seed, part, row): rows are generated in fixed blocks of
`BLOCK_ROWS`, each with its own seeded generator, so any slicing into row groups or
chunks gives the same data.
"""
from __future__ import annotations

import string
from typing import Dict, Iterator, List, Mapping, Sequence, Tuple

import numpy as np
import pyarrow as pa

from curation.laion import INDEX_SHIFT_PER_PART, LAION_COLUMNS, NSFW_VALUES

BLOCK_ROWS = 10_000

#: (kind, probability) of the URL kinds the image server understands
URL_KINDS: Tuple[Tuple[str, float], ...] = (
    ("img", 0.90), ("404", 0.02), ("timeout", 0.02), ("text", 0.02), ("redirect", 0.02), ("huge", 0.02))
URL_EXTENSIONS: Tuple[Tuple[str, float], ...] = (("jpg", 0.7), ("png", 0.2), ("webp", 0.1))
NSFW_PROBABILITIES = (0.90, 0.07, 0.03)  # UNLIKELY, UNSURE, NSFW
LICENSES = ("?", "?", "?", "?", "?", "?", "?", "?", "https://creativecommons.org/licenses/by/4.0/",
            "https://creativecommons.org/licenses/by-nc-sa/4.0/")

#: (caption kind, probability); "positive" and friends take lemmas from the lemma map
CAPTION_KINDS: Tuple[Tuple[str, float], ...] = (
    ("positive", 0.30), ("two_classes", 0.06), ("ambiguous", 0.04), ("near_miss", 0.05),
    ("punctuated_lemma", 0.02), ("other_language", 0.08), ("null", 0.02), ("empty", 0.02),
    ("very_long", 0.01), ("negative", 0.40))

TEMPLATES = (
    "{x}", "a photo of a {x}", "Photo of {x} in the garden", "{x} for sale", "Vintage {x} poster 24x36",
    "Close-up of a {x} on white background", "{x} | Stock Photo", "My new {x}!!!",
    "Beautiful {x} at sunset - wallpaper HD", "How to draw a {x}: step by step",
    "{x} - Free Shipping, Best Price", "cute {x} (2019)", "IMG_2041.JPG {x}",
    "\"{x}\" by John Smith, oil on canvas", "#{x} #photography #nature", "The {x}.",
)
#: how a lemma is written in a caption: case and punctuation variants
VARIANTS = (
    "{l}", "{l}", "{l}", "{L}", "{U}", "{lo}", "({l})", "{l},", "{l}!", "'{l}'", "{l}'s",
    "{l}-shaped", "#{l}", "{l}...", "\n{l}", "{l}\t",
)
#: ambiguous words: the lemma map excludes `crane` (two ILSVRC synsets), and these contexts
#: use a class lemma in another sense (a car, a fish tank, a computer mouse)
AMBIGUOUS = (
    "Construction crane lifting steel beams", "Whooping crane in flight", "paper crane origami",
    "2016 Jaguar XF for sale", "jaguar print dress", "Aquarium fish tank with LED light",
    "wireless mouse and keyboard combo", "Men's boxer shorts 3-pack", "Cardigan sweater, knit",
    "Cardigan Welsh Corgi puppy", "Ralph Lauren cardigan", "kite surfing holidays",
)
NEAR_MISSES = (
    "paid in full", "dogs and cats", "catalog of tigers", "Bookshelves for kids",
    "pineapples on the table", "hotdogs at the stadium", "Golden retrievers playing",
    "ATMs near me", "goldfishes", "tabbycat", "tiger-lily bouquet",
)
OTHER_LANGUAGES = (
    "Schöner Hund im Garten", "Le chat noir sur le canapé", "Perro corriendo en la playa",
    "Gatto soriano che dorme", "Кошка на диване", "日本の猫の写真", "海边的狗", "고양이 사진",
    "Ein {x} im Schnee", "Un {x} sur la plage", "Foto de un {x}", "{x}の写真",
    "Ｔｉｇｅｒ im Zoo", "ein Ｕ-Ｂｏｏｔ im Hafen",
)
NEGATIVES = (
    "Women's summer dress floral print", "Modern living room interior design", "Wedding invitation template",
    "Abstract background with blue lines", "Happy birthday card", "Mountain landscape at dawn",
    "Logo design for a coffee shop", "Men's leather wallet brown", "Kitchen cabinet ideas 2020",
    "Business people shaking hands", "Watercolor flowers clip art", "Sale 50% off - today only!",
    "New York City skyline at night", "Cotton bed sheets, queen size", "Smartphone case - black",
)
FILLER = ("the", "a", "best", "new", "photo", "image", "of", "and", "with", "for", "in", "on",
          "free", "vector", "high", "quality", "summer", "style", "design", "home", "2021")


def _choose(probabilities: Sequence[float], u: np.ndarray) -> np.ndarray:
    """Category index per uniform draw `u` (inverse CDF)."""
    cdf = np.cumsum(probabilities)
    return np.minimum(np.searchsorted(cdf / cdf[-1], u, side="right"), len(probabilities) - 1)


def _written(lemma: str, variant: str) -> str:
    return variant.format(l=lemma, L=lemma.title(), U=lemma.upper(), lo=lemma.lower())


class SampleLaion:
    """Generates LAION-schema rows; `rows(part, start, stop)` is deterministic per row."""

    def __init__(self, lemma_to_wnid: Mapping[str, str], seed: int, image_base_url: str):
        self.seed = int(seed)
        self.base = image_base_url.rstrip("/")
        lemmas = sorted(lemma_to_wnid)
        self.lemmas = [l for l in lemmas if not any(c in string.punctuation for c in l)]
        self.punctuated = [l for l in lemmas if any(c in string.punctuation for c in l)] or self.lemmas

    def _block(self, part: int, block: int) -> Dict[str, list]:
        rng = np.random.default_rng([self.seed, part, block])
        n = BLOCK_ROWS
        u = rng.random((n, 8))
        ints = rng.integers(0, 2 ** 31, size=(n, 6))
        kinds = _choose([p for _, p in CAPTION_KINDS], u[:, 0])
        captions: List = []
        for i in range(n):
            captions.append(self._caption(CAPTION_KINDS[kinds[i]][0], ints[i], u[i]))
        first = block * BLOCK_ROWS
        rows = np.arange(first, first + n, dtype=np.int64)
        url_kinds = _choose([p for _, p in URL_KINDS], u[:, 5])
        exts = _choose([p for _, p in URL_EXTENSIONS], u[:, 6])
        keys = [f"{part:05d}{r:08d}" for r in rows]
        return {
            "SAMPLE_ID": (part * INDEX_SHIFT_PER_PART + rows) * 7 + 3,
            "URL": [f"{self.base}/{URL_KINDS[k][0]}/{key}.{URL_EXTENSIONS[e][0]}"
                    for k, key, e in zip(url_kinds, keys, exts)],
            "TEXT": captions,
            "HEIGHT": (64 + ints[:, 4] % 961).astype(np.int32),
            "WIDTH": (64 + ints[:, 5] % 961).astype(np.int32),
            "LICENSE": [LICENSES[k] for k in ints[:, 3] % len(LICENSES)],
            "NSFW": [NSFW_VALUES[k] for k in _choose(NSFW_PROBABILITIES, u[:, 7])],
            "similarity": 0.28 + 0.17 * u[:, 4],
        }

    def _caption(self, kind: str, ints: np.ndarray, u: np.ndarray):
        def pick(options: Sequence[str], k: int) -> str:
            return options[int(ints[k]) % len(options)]

        template = pick(TEMPLATES, 1)
        if kind == "positive":
            return template.format(x=_written(pick(self.lemmas, 0), pick(VARIANTS, 2)))
        if kind == "two_classes":
            return f"{_written(pick(self.lemmas, 0), pick(VARIANTS, 2))} and {pick(self.lemmas, 3)}"
        if kind == "ambiguous":
            return pick(AMBIGUOUS, 0)
        if kind == "near_miss":
            return template.format(x=pick(NEAR_MISSES, 0))
        if kind == "punctuated_lemma":
            lemma = pick(self.punctuated, 0)
            return template.format(x=lemma if u[1] < 0.5 else lemma.upper().replace("-", " "))
        if kind == "other_language":
            return pick(OTHER_LANGUAGES, 0).replace("{x}", pick(self.lemmas, 3))
        if kind == "null":
            return None
        if kind == "empty":
            return ""
        if kind == "very_long":
            words = [FILLER[(int(ints[0]) + 7 * j) % len(FILLER)] for j in range(400 + int(ints[2]) % 800)]
            if u[1] < 0.5:  # a lemma somewhere in the middle
                words.insert(len(words) // 2, pick(self.lemmas, 3))
            return " ".join(words)
        return pick(NEGATIVES, 0) if u[1] < 0.7 else f"{pick(NEGATIVES, 0)} {pick(FILLER, 2)}"

    def rows(self, part: int, start: int, stop: int) -> pa.Table:
        """Rows [start, stop) of part `part` as an Arrow table with the LAION schema."""
        tables = []
        for block in range(start // BLOCK_ROWS, (stop - 1) // BLOCK_ROWS + 1 if stop > start else 0):
            first = block * BLOCK_ROWS
            lo, hi = max(start, first) - first, min(stop, first + BLOCK_ROWS) - first
            table = pa.table(self._block(part, block), schema=laion_schema())
            tables.append(table.slice(lo, hi - lo))
        if not tables:
            return laion_schema().empty_table()
        return pa.concat_tables(tables)

    def chunks(self, part: int, n_rows: int, chunk_rows: int) -> Iterator[pa.Table]:
        """The `n_rows` rows of a part in tables of at most `chunk_rows` rows."""
        for start in range(0, n_rows, chunk_rows):
            yield self.rows(part, start, min(n_rows, start + chunk_rows))


def laion_schema() -> pa.Schema:
    types = {"int64": pa.int64(), "int32": pa.int32(), "string": pa.string(), "double": pa.float64()}
    return pa.schema([(name, types[t]) for name, t in LAION_COLUMNS.items()])


def rows_per_part(total_rows: int, parts: int) -> List[int]:
    """Split `total_rows` over `parts` parts as evenly as possible (earlier parts larger)."""
    base, extra = divmod(total_rows, parts)
    return [base + (1 if p < extra else 0) for p in range(parts)]

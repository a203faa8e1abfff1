"""Generated ImageNet-Captions metadata for tests, demos and benchmarks.

The real `imagenet_captions.json` is a JSON list of `{filename, wnid, title, description,
tags}` entries (about 450k, very unequal class sizes). The generator reproduces what makes
it awkward: long-tailed class sizes (down to an empty class), empty titles, descriptions
and tag lists, non-ASCII text, and newlines, carriage returns and tabs inside fields.
Everything is a function of the seed.
"""
from __future__ import annotations

import io
import json
import random
from typing import Dict, List, Sequence

#: share of entries with an empty field, roughly as in ImageNet-Captions
#: (about 1% without title, 40% without description, 9% without tags)
EMPTY_TITLE = 0.02
EMPTY_DESCRIPTION = 0.4
EMPTY_TAGS = 0.1
#: share of text fields that get a newline, carriage return or tab inside
CONTROL_CHARS = 0.05

_WORDS = ("photo", "my", "trip", "summer", "garden", "old", "the", "at", "near", "home", "day",
          "zoo", "market", "morning", "light", "friend", "blue", "red", "river", "city",
          "café", "Zürich", "naïve", "smörgåsbord", "東京", "Ελλάδα", "🙂", "São", "Paulo")
_CONTROL = ("\n", "\r\n", "\t", "\r")


def class_sizes(n_classes: int, per_class_max: int) -> List[int]:
    """Long-tailed sizes by rank: geometric from `per_class_max` down to 1, and the last
    class empty (ImageNet-Captions has a class without any example) when there are 3+."""
    if n_classes < 1 or per_class_max < 1:
        raise ValueError("n_classes and per_class_max must be positive")
    if n_classes == 1:
        return [per_class_max]
    sizes = [max(1, round(per_class_max ** (1 - r / (n_classes - 1)))) for r in range(n_classes)]
    if n_classes >= 3:
        sizes[-1] = 0
    return sizes


def _text(rng: random.Random, n_words: int, cname: str) -> str:
    words = [rng.choice(_WORDS) for _ in range(n_words)]
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words) + 1), cname)
    if rng.random() < CONTROL_CHARS:
        words.insert(rng.randrange(1, len(words) + 1), rng.choice(_CONTROL))
    return " ".join(words)


def generate_entries(wnids: Sequence[str], per_class_max: int, seed: int,
                     classnames: Dict[str, str] | None = None) -> List[dict]:
    """Entries for the given classes (sizes by `class_sizes` over a seeded class order),
    in a seeded random order. Filenames are ImageNet's `<wnid>_<number>.JPEG`."""
    rng = random.Random(seed)
    order = list(wnids)
    rng.shuffle(order)
    classnames = classnames or {}
    entries = []
    for wnid, size in zip(order, class_sizes(len(order), per_class_max)):
        cname = classnames.get(wnid, "thing")
        numbers = rng.sample(range(1, 20 * size + 2), size)
        for number in numbers:
            entries.append({
                "filename": f"{wnid}_{number}.JPEG",
                "wnid": wnid,
                "title": "" if rng.random() < EMPTY_TITLE else _text(rng, rng.randint(1, 5), cname),
                "description": ("" if rng.random() < EMPTY_DESCRIPTION
                                else _text(rng, rng.randint(3, 25), cname)),
                "tags": ([] if rng.random() < EMPTY_TAGS
                         else [_text(rng, rng.randint(1, 2), cname) for _ in range(rng.randint(1, 8))]),
            })
    rng.shuffle(entries)
    return entries


def entries_json(entries: List[dict]) -> str:
    """The file's text: one JSON list on one line, non-ASCII kept as UTF-8."""
    return json.dumps(entries, ensure_ascii=False)


def tiny_jpeg(seed: int) -> bytes:
    """A small solid-colour JPEG (one per class is enough for loaders to open)."""
    from PIL import Image

    rng = random.Random(seed)
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), tuple(rng.randrange(256) for _ in range(3))).save(buf, "JPEG")
    return buf.getvalue()

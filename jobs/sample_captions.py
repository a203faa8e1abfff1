"""`curate sample-data captions`: a generated YFCC-like caption corpus (tests, bench, demo).

Rows are `filepath` + `caption`, a pure function of (number of rows, seed). Captions mix
languages and mention ImageNet lemmas in varied case, with the cases that decide whole-word
matching: lemmas inside longer words ("goldfishes"), next to punctuation or `_`, several
classes in one caption, tabs/newlines, empty and missing captions. Classes are drawn from a
Zipf-like distribution, so frequency files and plots of the corpus are long-tailed.
"""
from __future__ import annotations

import json
import random
from itertools import accumulate
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence

from curation.errors import ConfigError
from curation.report import StageReport
from jobs.framework.base import Job, main_for
from jobs.framework.config import opt

FORMATS = ("jsonl", "parquet")

_FILLERS = {
    "en": "a photo of my trip to the lake with friends and a small boat in the morning light".split(),
    "de": "ein Foto von unserem Ausflug an den See mit Freunden und einem kleinen Boot".split(),
    "fr": "une photo de notre voyage au lac avec des amis et un petit bateau le matin".split(),
    "es": "una foto de nuestro viaje al lago con amigos y un barco pequeño por la mañana".split(),
    "ja": "湖 への 旅行 の 写真 友達 と 小さな ボート 朝 の 光".split(),
    "zh": "我们 去 湖边 旅行 的 照片 和 朋友 一起 早上".split(),
    "ru": "фото нашей поездки на озеро с друзьями и маленькой лодкой утром".split(),
    "tr": "İstanbul gezisinden bir fotoğraf arkadaşlarla göl kenarında".split(),
}
_LANGS = sorted(_FILLERS)


def _cased(rng: random.Random, lemma: str) -> str:
    return rng.choice((lemma, lemma.lower(), lemma.upper(), lemma.title()))


def _mention(rng: random.Random, lemma: str) -> str:
    """A lemma as it may appear in a caption; some forms are not whole-word mentions."""
    word = _cased(rng, lemma)
    form = rng.random()
    if form < 0.55:
        return word
    if form < 0.75:
        return rng.choice(("({})", "{},", "#{}", "\"{}\"", "{}'s", "{}-like", "{}.")).format(word)
    # not whole words: glued to letters, digits or '_'
    return rng.choice(("{}s", "{}es", "un{}", "{}_2", "x{}", "{}9")).format(word)


def generate_captions(n: int, seed: int = 0, lemmas_by_label: Optional[Dict[int, Sequence[str]]] = None
                      ) -> Iterator[Dict[str, Optional[str]]]:
    """The first `n` rows of the corpus for `seed`."""
    if lemmas_by_label is None:
        from curation.concepts import load_concepts

        concepts = load_concepts()
        lemmas_by_label = dict(zip(concepts["label"].astype(int), concepts["lemmas"]))
    rng = random.Random(seed)
    labels = sorted(lemmas_by_label)
    order = rng.sample(labels, len(labels))
    cum_weights = list(accumulate(1.0 / (rank + 1) ** 1.1 for rank in range(len(order))))
    lemma_lists = {label: list(lemmas) for label, lemmas in lemmas_by_label.items()}
    for i in range(n):
        filepath = f"images/{i // 10000:05d}/{i:09d}.jpg"
        kind = rng.random()
        if kind < 0.01:
            yield {"filepath": filepath, "caption": None}
            continue
        if kind < 0.02:
            yield {"filepath": filepath, "caption": ""}
            continue
        words: List[str] = rng.sample(_FILLERS[rng.choice(_LANGS)], 5)
        n_mentions = rng.choices((0, 1, 2, 3), cum_weights=(0.35, 0.8, 0.95, 1.0))[0]
        for label in rng.choices(order, cum_weights=cum_weights, k=n_mentions):
            lemmas = lemma_lists[label]
            if lemmas:
                words.insert(rng.randint(0, len(words)), _mention(rng, rng.choice(lemmas)))
        caption = " ".join(words)
        if rng.random() < 0.03:
            caption = caption.replace(" ", rng.choice(("\t", "\n", "\r\n")), 1)
        yield {"filepath": filepath, "caption": caption}


@dataclass
class SampleCaptionsConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"out": "output"}
    rows: int = opt(1000, "number of captions")
    out: str = opt(None, "output file (local path; .jsonl or .parquet)", required=True)
    seed: int = opt(0, "random seed (same seed, same rows)")

    def validate(self):
        if self.rows < 1:
            raise ConfigError("rows", f"must be at least 1, got {self.rows}")
        if self.out.rsplit(".", 1)[-1] not in FORMATS:
            raise ConfigError("out", f"must end in .jsonl or .parquet, got {self.out!r}")


def run_sample_captions(_spark, cfg: SampleCaptionsConfig):
    from jobs.io.output import finish_local_file, local_out, write_local

    out = local_out(cfg)
    rows = generate_captions(cfg.rows, cfg.seed)

    def write(tmp: str) -> None:
        if out.endswith(".parquet"):
            import pandas as pd

            pd.DataFrame(list(rows), columns=["filepath", "caption"]).to_parquet(tmp, index=False)
        else:
            with open(tmp, "w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    write_local(out, write)
    finish_local_file(out, cfg, StageReport("sample-data captions", read=cfg.rows, kept=cfg.rows,
                                             info={"out": cfg.out}))
    return out


JOB = Job(command=("sample-data", "captions"), config=SampleCaptionsConfig, run=run_sample_captions,
          help="generate a YFCC-like caption corpus (filepath, caption) for tests and benchmarks",
          needs_spark=False)

if __name__ == "__main__":
    main_for(JOB)

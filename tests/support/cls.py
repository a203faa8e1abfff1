"""Helpers and fixtures of the cls tests shared by more than one layer."""


import pandas as pd

EDGE_CAPTIONS = [
    ("edge/0.jpg", "A GOLDFISH and a Tench, swimming"),      # two classes, any case
    ("edge/1.jpg", "goldfishes swimming"),                   # not a whole word
    ("edge/2.jpg", "tabs\tand\r\nnewlines around a goldfish"),
    ("edge/3.jpg", "an R.V. parked"),                        # '\b' after '.' needs a word char
    ("edge/4.jpg", "RxVs are campers"),                      # '.' as any char: compat only
    ("edge/5.jpg", None),
    ("edge/6.jpg", "   "),
    ("edge\t7.jpg", "a goldfish"),                           # a path that would break the TSV
    (None, "a goldfish"),
    ("edge/8.jpg", '"Goldfish" in a bowl, said "Tom" '),     # quotes and a trailing space: kept
    ("edge/9.jpg", "  a tench's \\ tail"),                   # leading spaces, ', \\
]


def _corpus(n=300, seed=2):
    from jobs.sample_captions import generate_captions

    rows = [dict(filepath=f, caption=c) for f, c in EDGE_CAPTIONS]
    return pd.DataFrame(rows + list(generate_captions(n, seed)))


def _cfg(**kw):
    from jobs.cls import ClsConfig
    from jobs.framework.config import build_config

    return build_config(ClsConfig, kw)

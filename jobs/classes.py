"""ImageNet classes of rows, as Spark steps shared by the recipes (`cls`, `freq`, the
LAIONet subsets): match captions to classes, map wnid/label columns to labels, and count
examples per class in one aggregation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

#: `n` of a `match_classes` row that is not a (row, class) pair: why the row has no class
from udfs.matcher import BAD_PATH, NO_CAPTION, NO_CLASS  # noqa: F401


def lemmas_by_label() -> Dict[int, List[str]]:
    """The WordNet lemmas ('_' -> ' ') of each ImageNet class, as the original used them."""
    from curation.concepts import load_concepts

    concepts = load_concepts()
    return {int(label): list(lemmas) for label, lemmas in zip(concepts["label"], concepts["lemmas"])}


def match_classes(df, caption_col: str, compat_unescaped: bool = False, path_col: Optional[str] = None):
    """One row per (row of `df`, class its caption mentions as a whole word): `df`'s
    columns + `label` + `n`, the number of classes that caption mentions. A row without
    class gives one row with null columns and label, and `n` saying why: `NO_CLASS`,
    `NO_CAPTION` (null or blank), or `BAD_PATH` (`path_col` null, empty, or holding a tab
    or newline, which would break a TSV), so one pass yields both output and counts.

    Runs as `mapInArrow`: each Arrow batch is matched in one scan (`WordMatcher.match_batch`)
    by a matcher built once per Python worker, and the matched rows are taken from the
    Arrow batch: only the captions become Python strings (no pandas, no Spark arrays).
    """
    from pyspark.sql.types import IntegerType, StructField, StructType

    from curation.wordmatch import matcher_key
    from udfs.matcher import class_batches

    key = matcher_key(lemmas_by_label(), compat_unescaped)
    schema = StructType([StructField(f.name, f.dataType, True) for f in df.schema.fields]
                        + [StructField("label", IntegerType(), True), StructField("n", IntegerType(), False)])
    return df.mapInArrow(class_batches(key, caption_col, path_col), schema)


@dataclass
class ClassCounts:
    """Examples per class and the rows behind them, from one aggregation."""
    #: examples per class (with `single_label`: of single-class rows only)
    counts: Dict[int, int]
    #: rows with at least one class, and with more than one
    matched: int
    multi_label: int
    #: rows that count: all matched ones, or the single-class ones
    kept: int
    #: rows without class by their `n` (0, or a producer's negative reason code), and
    #: pairs whose value is no class
    without_class: Dict[int, int]
    unknown: int


def count_classes(pairs, single_label: bool = False) -> ClassCounts:
    """Count a DataFrame of (`label`, `n`) pairs: one pair per (row, class of that row),
    `n` = the row's number of classes; a row without class may appear as (null, n <= 0),
    a value that is no class as (null, n > 0).

    A row with n classes gives n pairs, so the rows with n classes are the pairs of
    group n divided by n.
    """
    from pyspark.sql import functions as F

    pairs_by_n: Dict[int, int] = {}
    counts: Dict[int, int] = {}
    unknown = 0
    for g in pairs.groupBy("n", "label").agg(F.count(F.lit(1)).alias("pairs")).collect():
        n, label, k = int(g["n"]), g["label"], int(g["pairs"])
        pairs_by_n[n] = pairs_by_n.get(n, 0) + k
        if label is None:
            unknown += k if n > 0 else 0
        elif n == 1 or not single_label:
            counts[int(label)] = counts.get(int(label), 0) + k
    matched = sum(k // n for n, k in pairs_by_n.items() if n > 0)
    multi = matched - pairs_by_n.get(1, 0)
    return ClassCounts(counts, matched, multi, matched - multi if single_label else matched,
                       without_class={n: k for n, k in pairs_by_n.items() if n <= 0}, unknown=unknown)


def wnid_label(wnid):
    """Column expression: the ImageNet label of a wnid column (aliases such as LAIONet's
    husky wnid accepted; null for anything else)."""
    from pyspark.sql import functions as F

    from curation.concepts import WNID_ALIASES, wnid_to_label

    mapping = dict(wnid_to_label())
    mapping.update({alias: mapping[standard] for alias, standard in WNID_ALIASES.items()})
    return F.create_map(*[F.lit(x) for item in sorted(mapping.items()) for x in item])[wnid]


def labels_column(by: str, column: str):
    """Each row's class labels as an array column, from a `label`, `wnid` or `wnids`
    column; no value (null, or an empty field) gives no label, a value that is no class
    (text, out of range, unknown wnid) a null element."""
    from pyspark.sql import functions as F

    from curation.concepts import classnames

    col = F.col(column)
    if by == "wnids":
        labels = F.transform(col, wnid_label)
    elif by == "wnid":
        labels = F.array(wnid_label(col))
    else:
        label = col.cast("int")
        labels = F.array(F.when((label >= 0) & (label < len(classnames())), label))
    # no value: null, or an empty TSV field (read as "", as pandas reads it)
    missing = col.isNull() if by == "wnids" else col.isNull() | (col.cast("string") == "")
    return F.when(missing, F.array().cast("array<int>")).otherwise(labels)

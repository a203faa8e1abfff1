"""TSVs byte for byte as pandas writes them, and read as pandas (and open_clip) reads them."""
from __future__ import annotations


import numpy as np

import pandas as pd

import pytest

from curation.errors import InputError


from tests.support.tsv import AWKWARD, _frame


def _write(spark, tmp_path, pdf, name, partitions=3, rows=True, **kw):
    from jobs.io import output

    df = spark.createDataFrame(pdf).repartition(partitions)
    df = df if rows else df.where("false")
    path = str(tmp_path / name)
    output.write_single_csv(spark, df, path, **kw)
    with open(path, "rb") as fh:
        return fh.read()


def test_spark_writer_gives_pandas_bytes(spark, tmp_path):
    pdf = _frame(AWKWARD)
    got = _write(spark, tmp_path, pdf, "a.tsv", order_by=["label"])
    assert got == pdf.to_csv(sep="\t", index=False).encode("utf-8")
    # order_only columns order the rows and stay out of the file; empty partitions are harmless
    keyed = pdf.assign(key=np.arange(len(pdf))[::-1])
    got = _write(spark, tmp_path, keyed, "b.tsv", partitions=40, order_by=["key"], order_only=["key"])
    assert got == pdf.iloc[::-1].to_csv(sep="\t", index=False).encode("utf-8")
    assert pd.read_csv(tmp_path / "b.tsv", sep="\t", keep_default_na=False).caption.tolist() \
        == pdf.caption.iloc[::-1].tolist()


def test_spark_writer_nulls_and_numbers_as_pandas(spark, tmp_path):
    pdf = pd.DataFrame({"k": pd.array([3, 1, 2, 4], dtype="Int64"), "label": pd.array([5, None, 7, 0], dtype="Int32"),
                        "caption": ["x", None, "", "NA"], "score": [0.1, np.nan, 1e-7, 2.5]})
    got = _write(spark, tmp_path, pdf, "n.tsv", order_by=["k"])
    assert got == pdf.sort_values("k").to_csv(sep="\t", index=False).encode("utf-8")
    assert b"\t1.0\t" not in got and got.splitlines()[1] == b"1\t\t\t"  # null label: empty, not 'nan' or 1.0
    # no rows: the header alone; no header when asked
    assert _write(spark, tmp_path, pdf, "e.tsv", rows=False) == b"k\tlabel\tcaption\tscore\n"
    assert _write(spark, tmp_path, pdf, "h.tsv", order_by=["k"], header=False) == \
        pdf.sort_values("k").to_csv(sep="\t", index=False, header=False).encode("utf-8")


def test_reader_reads_as_pandas(spark, tmp_path):
    from jobs.io import output

    pdf = _frame(AWKWARD)
    path = tmp_path / "r.tsv"
    pdf.to_csv(path, sep="\t", index=False)
    got = output.read_tsv(spark, str(path)).toPandas()
    expected = pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)
    assert list(got.columns) == ["filepath", "label", "caption"]
    assert got.caption.tolist() == expected.caption.tolist() == AWKWARD
    assert got.filepath.tolist() == expected.filepath.tolist()
    # rows with too many or too few fields: one line naming the file and the row
    (tmp_path / "bad.tsv").write_text("a\tb\n1\t2\n3\t4\t5\n")
    with pytest.raises(InputError, match=r"bad\.tsv: the row '3\\t4\\t5' does not have the 2 tab-separated "
                                         r"fields of the header \(a, b\)"):
        output.read_tsv(spark, str(tmp_path / "bad.tsv"))
    (tmp_path / "short.tsv").write_text("a\tb\n1\n")
    with pytest.raises(InputError, match=r"short\.tsv: the row '1' does not have"):
        output.read_tsv(spark, str(tmp_path / "short.tsv"))
    unchecked = output.read_tsv(spark, str(tmp_path / "short.tsv"), check=False).toPandas()
    assert unchecked[output.MALFORMED].notna().all()


"""TSVs byte for byte as pandas writes them, and read as pandas (and open_clip) reads them."""
from __future__ import annotations

import io

import pandas as pd

from curation.tsv import LineFormatter, frame_text, header_text, rows_bytes
from tests.support.tsv import AWKWARD, _frame


def test_line_formatter_writes_what_pandas_writes():
    df = _frame(AWKWARD + [None])
    line = LineFormatter()
    text = "".join(line(row) + "\n" for row in df.itertuples(index=False))
    assert text == df.to_csv(sep="\t", index=False, header=False)
    assert header_text(df.columns) + frame_text(df) == df.to_csv(sep="\t", index=False)
    # a quote inside a field is doubled and the field quoted; spaces are kept
    assert line(["a", 1, 'say "hi" ']) == 'a\t1\t"say ""hi"" "'
    assert line([" x ", 2, ""]) == " x \t2\t"


def test_rows_bytes_are_pandas_bytes():
    df = _frame(AWKWARD + [None])
    rows = list(df.itertuples(index=False))
    assert rows_bytes(rows) == df.to_csv(sep="\t", index=False, header=False).encode("utf-8")
    line = LineFormatter()
    assert rows_bytes(rows) == "".join(line(row) + "\n" for row in rows).encode("utf-8")
    assert rows_bytes([]) == b""


def test_pandas_reads_back_every_value_without_tab_or_newline_loss():
    df = _frame([v for v in AWKWARD if "\r" not in v])  # pandas itself leaves a bare \r unquoted
    back = pd.read_csv(io.StringIO(df.to_csv(sep="\t", index=False)), sep="\t",
                       keep_default_na=False)
    assert list(back.caption) == list(df.caption)

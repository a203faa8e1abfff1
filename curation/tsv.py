"""TSV text exactly as pandas writes it, so open_clip's loader reads it back.

open_clip's training loader reads our TSVs with `pd.read_csv(path, sep='\\t')`, and the
original scripts wrote them with `DataFrame.to_csv(path, sep='\\t', index=False)`: fields
holding the separator, `"` or `\\n` are quoted (`"` doubled), everything else is written
as is, spaces included; None/NaN are empty fields. Every TSV we write is those bytes for
the same rows in the same order (line terminator `\\n`), so
`pd.read_csv(path, sep='\\t', keep_default_na=False)` returns exactly the values written.

- `frame_text(df)`: the rows of a DataFrame (no header), by pandas itself;
- `header_text(columns)`: the header line;
- `LineFormatter`: one row as a line, for code that builds lines one by one (the Python
  `csv` writer with pandas' settings, which is what pandas calls; tests compare the two);
- `rows_bytes(rows)`: many rows as the UTF-8 bytes of their lines (the same writer).
"""
from __future__ import annotations

import csv
import io
from typing import Iterable, Sequence

SEP = "\t"
LINE_END = "\n"
#: what `DataFrame.to_csv` hands the `csv` writer (pandas' defaults, our separator and line end)
_CSV_ARGS = dict(delimiter=SEP, quotechar='"', doublequote=True, escapechar=None,
                 quoting=csv.QUOTE_MINIMAL, lineterminator=LINE_END)


def frame_text(df, header: bool = False, sep: str = SEP) -> str:
    """`df.to_csv(sep=sep, index=False)` (header only when asked) as a string."""
    return df.to_csv(sep=sep, index=False, header=header, lineterminator=LINE_END)


def header_text(columns: Sequence[str], sep: str = SEP) -> str:
    """The header line pandas writes for these columns (with its line end)."""
    import pandas as pd

    return frame_text(pd.DataFrame(columns=list(columns)), header=True, sep=sep)


class LineFormatter:
    """`fmt(values)` -> one TSV line without its line end, as pandas writes a row of
    these values (str, int or None; None is an empty field)."""

    def __init__(self, sep: str = SEP):
        self._buf = io.StringIO()
        self._writer = csv.writer(self._buf, **dict(_CSV_ARGS, delimiter=sep))

    def __call__(self, values: Iterable) -> str:
        buf = self._buf
        buf.seek(0)
        buf.truncate()
        self._writer.writerow(values)
        return buf.getvalue()[:-len(LINE_END)]


class _Lines(list):
    """A file-like list: the `csv` writer's `write` (one call per row) appends the line."""
    write = list.append


def rows_bytes(rows: Iterable[Sequence], sep: str = SEP) -> bytes:
    """The TSV lines of `rows` (values str, int or None), UTF-8 encoded: what `LineFormatter`
    gives row by row plus line ends, from one `csv` writer over all rows (faster)."""
    lines = _Lines()
    csv.writer(lines, **dict(_CSV_ARGS, delimiter=sep)).writerows(rows)
    return b"".join(line.encode("utf-8") for line in lines)

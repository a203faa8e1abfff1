"""Helpers and fixtures of the tsv tests shared by more than one layer."""
from __future__ import annotations

import pandas as pd

#: values that need quoting, or that a trimming or unquoted writer would change
AWKWARD = ['"start', 'end"', 'mid"dle', '"both"', '"', '""', "it's", "back\\slash", "\\", "\\\"",
           "tab\there", "new\nline", "cr\r\nlf", "Zürich 東京 🙂 ناصر", " lead", "trail ", "  both  ",
           "", " ", "NA", "null", "nan", "None", "#comment", "a,b;c"]


def _frame(values):
    return pd.DataFrame({"filepath": [f"p/{i}.jpg" for i in range(len(values))],
                         "label": list(range(len(values))), "caption": values})

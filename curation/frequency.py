"""Class-frequency files: `classname<TAB>count`, one line per class in label order, no header."""
from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Tuple

from curation.errors import InputError


def frequency_text(counts_by_label: Mapping[int, int], classnames: Sequence[str]) -> str:
    """The file's text; classes without examples get 0."""
    unknown = [lab for lab in counts_by_label if not 0 <= int(lab) < len(classnames)]
    if unknown:
        raise ValueError(f"labels outside 0..{len(classnames) - 1}: {sorted(unknown)[:5]}")
    return "".join(f"{name}\t{int(counts_by_label.get(i, 0))}\n" for i, name in enumerate(classnames))


def read_frequency_file(path: str, expected_lines: int | None = None) -> List[Tuple[str, int]]:
    """Parse a frequency file; error names the file and line on a bad line or count."""
    rows: List[Tuple[str, int]] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            name, sep, count = line.rpartition("\t")
            if not sep:
                raise InputError(f"{path}:{lineno}: expected 'classname<TAB>count', got {line!r}")
            try:
                rows.append((name, int(count)))
            except ValueError:
                raise InputError(f"{path}:{lineno}: count {count!r} is not an integer") from None
    if expected_lines is not None and len(rows) != expected_lines:
        raise InputError(f"{path}: expected {expected_lines} lines (one per class), found {len(rows)}")
    return rows


def counts_from_frequency_file(path: str, classnames: Sequence[str]) -> Dict[int, int]:
    rows = read_frequency_file(path, expected_lines=len(classnames))
    for i, ((name, _), expected) in enumerate(zip(rows, classnames)):
        if name != expected:
            raise InputError(f"{path}:{i + 1}: class {name!r} where {expected!r} was expected")
    return {i: c for i, (_, c) in enumerate(rows)}

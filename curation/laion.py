"""LAION-400M metadata parts: file names, the `laion_index`, the column schema.

The original LAIONet pipeline identifies a row by `laion_index = part * 100,000,000 +
row position in its part file`; our outputs use the same index so that they join with its
published metadata. Part files are named like Spark wrote them:
`part-00017-5b54c5d5-bbcf-484d-a2ce-0d6f73df1a36-c000.snappy.parquet`.
"""
from __future__ import annotations

import re
from typing import Dict, Optional

from curation.errors import InputError

#: the index space reserved for one part (LAION-400M parts hold about 13M rows each)
INDEX_SHIFT_PER_PART = 100_000_000

#: the part number is the first number after `part-` in the file name
PART_FILE_REGEX = r"^part-(\d+)-"
_PART_FILE_RE = re.compile(PART_FILE_REGEX)

#: LAION-400M columns and their Arrow/parquet types (only TEXT is needed by matching)
LAION_COLUMNS: Dict[str, str] = {
    "SAMPLE_ID": "int64",
    "URL": "string",
    "TEXT": "string",
    "HEIGHT": "int32",
    "WIDTH": "int32",
    "LICENSE": "string",
    "NSFW": "string",
    "similarity": "double",
}
TEXT_COLUMN = "TEXT"
INDEX_COLUMN = "laion_index"
NSFW_VALUES = ("UNLIKELY", "UNSURE", "NSFW")


def file_name(path: str) -> str:
    """The last component of a path or URI."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def part_number(path: str) -> Optional[int]:
    """The part number in a LAION part file name, or None when the name has none."""
    match = _PART_FILE_RE.match(file_name(path))
    return int(match.group(1)) if match else None


def require_part_number(path: str) -> int:
    """The part number, or an InputError naming the file (the index depends on it)."""
    part = part_number(path)
    if part is None:
        raise InputError(f"{path}: not a LAION part file name (expected part-NNNNN-...parquet); "
                         "the laion_index is computed from the part number")
    return part


def laion_index(part: int, row: int) -> int:
    """The LAIONet index of row position `row` of part `part`."""
    if not 0 <= row < INDEX_SHIFT_PER_PART:
        raise ValueError(f"row position {row} is outside 0..{INDEX_SHIFT_PER_PART - 1}")
    return part * INDEX_SHIFT_PER_PART + row


def split_laion_index(index: int) -> tuple:
    """(part, row position) of a laion_index."""
    return divmod(int(index), INDEX_SHIFT_PER_PART)


def part_file_name(part: int, uuid: str) -> str:
    """The file name Spark gives part `part` of a write with job id `uuid`."""
    return f"part-{part:05d}-{uuid}-c000.snappy.parquet"

"""Rules for arranging downloaded samples as `<target>/<wnid>/<laion_index>.<ext>`.

Everything that decides *whether* and *where* a sample may be written lives here, so the
Spark task that reads the tars (`udfs/arrange.py`) only moves bytes:

- a target path is built from a `wnid` that looks like `n` + 8 digits and an integer
  `laion_index`, never from a tar member's name, so no input can point outside the target;
- tar member names with `/`, `\\`, `..` or a leading `.` and members that are not regular
  files (links, devices) are rejected, because they can only come from a foreign tar;
- image bytes are sniffed from their header (JPEG, PNG and WebP parsed here, other
  formats by Pillow): bytes that are no image are `not_an_image`, headers announcing more
  than `max_pixels` pixels are a `decompression_bomb` (nothing is decoded, so a bomb costs
  nothing to reject);
- samples are matched to the metadata by `laion_index` through `WnidIndex`, a sorted
  array lookup that is cheap to broadcast (about 12 bytes per row);
- what happened to each metadata row is decided by `row_outcomes` from the tasks' compact
  sample statuses (a laion_index and a one-byte status code per sample, the same order of
  size as the index the driver already holds), with numpy instead of a Spark join.
"""
from __future__ import annotations

import io
import os
import re
import struct
import warnings
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from curation.paths import unsafe_name

WNID_PATTERN = r"^n[0-9]{8}$"
_WNID_RE = re.compile(r"n[0-9]{8}\Z")
#: member extensions that hold the image of a webdataset sample
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
#: Pillow's own warning threshold (about 89.5 megapixels)
DEFAULT_MAX_PIXELS = 89_478_485
#: statuses of a sample that count as a successfully arranged row
SUCCESS = ("written", "present", "checked")
#: every status a sample (or tar problem) can get; its position is the status code tasks send
STATUSES = SUCCESS + ("not_in_metadata", "no_image", "invalid_wnid", "bad_laion_index", "not_an_image",
                      "decompression_bomb", "no_laion_index", "unsafe_member_name", "unsafe_member_type",
                      "corrupt_tar", "decode_error")
STATUS_CODE = {s: i for i, s in enumerate(STATUSES)}


class Rejected(ValueError):
    """A sample (or tar member) that must not be arranged; `reason` goes to the report."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


def is_wnid(value) -> bool:
    return isinstance(value, str) and _WNID_RE.match(value) is not None


def image_relpath(wnid, laion_index, ext: str) -> str:
    """`<wnid>/<laion_index>.<ext>`, or Rejected when a part is not what it must be."""
    if not is_wnid(wnid):
        raise Rejected("invalid_wnid", repr(wnid))
    if isinstance(laion_index, bool) or not isinstance(laion_index, (int, np.integer)) or laion_index < 0:
        raise Rejected("bad_laion_index", repr(laion_index))
    if ext not in IMAGE_EXTS:
        raise Rejected("no_image", f"extension {ext!r}")
    name = f"{int(laion_index)}.{ext}"
    if unsafe_name(wnid) or unsafe_name(name):  # the one rule (implied by the checks above)
        raise Rejected("invalid_wnid" if unsafe_name(wnid) else "bad_laion_index", repr((wnid, name)))
    return f"{wnid}/{name}"


def split_member_name(name: str) -> Tuple[str, str]:
    """(key, extension) of a webdataset member such as `000010003.jpg`; Rejected if unsafe."""
    if unsafe_name(name) or name.startswith("."):  # the one rule, and no hidden files
        raise Rejected("unsafe_member_name", repr(name)[:300])
    key, dot, ext = name.partition(".")
    if not dot or not ext:
        raise Rejected("unsafe_member_name", repr(name))
    return key, ext.lower()


#: JPEG start-of-frame markers (they carry the image size); C4, C8, CC are not frames
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def header_size(data: bytes) -> Optional[Tuple[str, int, int]]:
    """(format, width, height) read from a JPEG, PNG or WebP header; None for anything else.

    Arrange checks every image; parsing the few header bytes itself is several times
    cheaper than `PIL.Image.open`, which stays the fallback for other formats.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return "PNG", w, h
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            w, h = struct.unpack("<HH", data[26:30])
            return "WEBP", w & 0x3FFF, h & 0x3FFF
        if chunk == b"VP8L" and data[20:21] == b"\x2f":
            bits = int.from_bytes(data[21:25], "little")
            return "WEBP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            return "WEBP", int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
        return None
    if data[:2] == b"\xff\xd8":
        i, n = 2, len(data)
        while i + 4 <= n and data[i] == 0xFF:
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
            elif marker in _SOF:
                if i + 9 > n:
                    return None
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return "JPEG", w, h
            elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
                i += 2
            else:
                i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return None


def sniff_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Tuple[str, int, int]:
    """(format, width, height) from the header only; Rejected when not an image or a bomb."""
    found = header_size(data)
    if found is None:
        found = _pillow_size(data)
    fmt, w, h = found
    if w < 1 or h < 1:
        raise Rejected("not_an_image", f"{fmt} header says {w}x{h} pixels")
    if w * h > max_pixels:
        raise Rejected("decompression_bomb", f"{w}x{h} pixels > {max_pixels}")
    return fmt, w, h


def _pillow_size(data: bytes) -> Tuple[str, int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                return (img.format, *img.size)
    except Image.DecompressionBombError as e:
        raise Rejected("decompression_bomb", str(e)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise Rejected("not_an_image", str(e)) from None


def success_name(target_df: str, n: int) -> str:
    """`laionet_thresh0.7.parquet` -> `laionet_thresh0.7_success<n>.parquet` (the seed's naming)."""
    if not target_df.endswith(".parquet"):
        raise ValueError(f"target metadata path must end with .parquet: {target_df}")
    return f"{target_df[:-len('.parquet')]}_success{n}.parquet"


class WnidIndex:
    """laion_index -> wnid as two sorted arrays; `wnid_of` is a binary search."""

    def __init__(self, laion_index: Sequence[int], wnid: Sequence[str]):
        idx = np.asarray(laion_index, dtype=np.int64)
        order = np.argsort(idx, kind="stable")
        self.laion_index = idx[order]
        dup = np.flatnonzero(self.laion_index[1:] == self.laion_index[:-1])
        if len(dup):
            raise ValueError(f"laion_index {self.laion_index[dup[0]]} appears more than once")
        # exact strings (numpy's str dtype would drop trailing NULs: "n01440764\x00" must
        # stay an invalid wnid, not become n01440764)
        names = np.empty(len(idx), dtype=object)
        names[:] = [w if isinstance(w, str) else str(w) for w in wnid]
        self.names, codes = np.unique(names, return_inverse=True)
        self.codes = codes.astype(np.int32)[order]

    def __len__(self) -> int:
        return len(self.laion_index)

    def wnid_of(self, laion_index: int) -> Optional[str]:
        i = int(np.searchsorted(self.laion_index, laion_index))
        if i < len(self.laion_index) and self.laion_index[i] == laion_index:
            return str(self.names[self.codes[i]])
        return None


def tree_class_counts(target: str) -> Dict[str, int]:
    """{wnid: number of image files} of an arranged tree (staging and other folders ignored)."""
    counts = {}
    with os.scandir(target) as entries:
        for entry in entries:
            if entry.is_dir() and is_wnid(entry.name):
                with os.scandir(entry.path) as files:
                    counts[entry.name] = sum(1 for f in files if f.is_file())
    return dict(sorted(counts.items()))


@dataclass
class RowOutcomes:
    """What happened to the metadata rows (in `WnidIndex` order) after the tasks ran."""
    kept: np.ndarray  # bool per row: the row has an image (and a valid wnid)
    reasons: Dict[str, int]  # why the other rows have none: {reason: rows}
    several: int  # rows found in more than one sample

    def kept_laion_index(self, index: WnidIndex) -> np.ndarray:
        return index.laion_index[self.kept]


def row_outcomes(index: WnidIndex, laion_index: np.ndarray, codes: np.ndarray) -> RowOutcomes:
    """Rows of `index` given every sample's (laion_index, status code).

    A row is kept when one of its samples succeeded and its wnid is valid; otherwise its
    reason is `invalid_wnid`, else the alphabetically first status of its failed samples,
    else `not_downloaded`. Samples whose laion_index is not in the index are ignored here
    (the tasks call them `not_in_metadata`).
    """
    n = len(index)
    laion_index = np.asarray(laion_index, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    pos = np.searchsorted(index.laion_index, laion_index)
    inside = pos < n
    match = np.zeros(len(pos), dtype=bool)
    match[inside] = index.laion_index[pos[inside]] == laion_index[inside]
    pos, codes = pos[match], codes[match]
    success = codes < len(SUCCESS)
    ok = np.zeros(n, dtype=bool)
    ok[pos[success]] = True
    # the first failure by name: rank statuses alphabetically, take the minimum rank per row
    by_name = sorted(range(len(STATUSES)), key=STATUSES.__getitem__)
    rank = np.empty(len(STATUSES), dtype=np.int64)
    rank[by_name] = np.arange(len(STATUSES))
    why = np.full(n, len(STATUSES), dtype=np.int64)
    np.minimum.at(why, pos[~success], rank[codes[~success]])
    valid_name = np.array([is_wnid(w) for w in index.names], dtype=bool)
    wnid_ok = valid_name[index.codes] if n else np.zeros(0, dtype=bool)
    kept = ok & wnid_ok
    counts = np.bincount(why[~ok & wnid_ok], minlength=len(STATUSES) + 1)
    reasons = {STATUSES[by_name[r]]: int(c) for r, c in enumerate(counts[:-1])}
    # a row whose wnid cannot name a folder is `invalid_wnid` whatever its samples say
    reasons["invalid_wnid"] += int((~wnid_ok).sum())
    reasons["not_downloaded"] = int(counts[-1])
    several = int((np.bincount(pos, minlength=n) > 1).sum())
    return RowOutcomes(kept, {k: v for k, v in reasons.items() if v}, several)


def status_counts(pairs: Iterable[Tuple[str, int]]) -> Dict[str, int]:
    """{status: n} summed over (status, n) pairs, sorted by status."""
    total: Dict[str, int] = {}
    for status, n in pairs:
        total[status] = total.get(status, 0) + int(n)
    return dict(sorted(total.items()))


# ---------------------------------------------------------------- --reencode
#: the extension of re-encoded images (the original names every image `<laion_index>.jpg`)
REENCODE_EXT = "jpg"


def decode_rgb(data: bytes):
    """The image decoded as the original arrange_laionet.py decodes it (webdataset's
    "pilrgb": `Image.open`, `load`, `convert("RGB")`); Rejected("decode_error") when Pillow
    cannot decode it (the original skipped such samples), "decompression_bomb" when Pillow
    refuses its size (callers check `sniff_image` first)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                return img.convert("RGB")
    except Image.DecompressionBombError as e:
        raise Rejected("decompression_bomb", str(e)) from None
    except Exception as e:  # Pillow raises OSError, ValueError, SyntaxError, struct.error, ...
        raise Rejected("decode_error", f"{type(e).__name__}: {e}") from None


def reencode_jpeg(data: bytes) -> bytes:
    """The bytes of `decode_rgb(data).save("<name>.jpg")`: JPEG with Pillow's defaults
    (quality 75, 4:2:0), what the original writes for every image."""
    buf = io.BytesIO()
    decode_rgb(data).save(buf, format="JPEG")
    return buf.getvalue()

"""Helpers and fixtures of the arrange tests shared by more than one layer."""
from __future__ import annotations

import io
import json
import struct
import tarfile
import zlib

import numpy as np


def png_bomb(side: int = 30_000) -> bytes:
    """A PNG whose header announces side x side pixels (the pixel data is a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def add(tf: tarfile.TarFile, name: str, data: bytes, kind=tarfile.REGTYPE, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname = (len(data) if kind == tarfile.REGTYPE else 0), kind, linkname
    tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def sample(tf, key: str, laion_index, img: bytes = None, wnid: str = None) -> None:
    """A webdataset sample as img2dataset writes it: .jpg, .json, .txt (sorted by extension)."""
    if img is not None:
        add(tf, f"{key}.jpg", img)
    meta = {"laion_index": laion_index, "key": key, "status": "success"}
    if wnid:
        meta["wnid"] = wnid
    add(tf, f"{key}.json", json.dumps(meta).encode())
    add(tf, f"{key}.txt", b"a caption")


def _encoded(mode: str, fmt: str, seed: int, size=(97, 61), **kw) -> bytes:
    """Noisy image bytes of a given mode and format (not what the download's JPEG settings give)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    if mode == "P":
        img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert("P")
    else:
        bands = Image.getmodebands(mode)
        img = Image.frombytes(mode, size, rng.integers(0, 256, size[0] * size[1] * bands, dtype=np.uint8).tobytes())
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()

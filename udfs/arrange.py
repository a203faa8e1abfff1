"""The Spark task of `curate laionet arrange`: one webdataset tar in, image files out.

A task streams its tar once (members are read in order, nothing is extracted by name),
groups members into samples by key, identifies each sample by the `laion_index` in its
`.json`, and writes the image to `<target>/<wnid>/<laion_index>.<ext>` with the wnid taken
from the metadata. Each file is written under a temporary name in its own folder
(`<wnid>/<laion_index>.<ext>.__tmp-<writer>`: the one temporary-file scheme of
`udfs.files.tmp_name`) and renamed into place (`udfs.files.put_local`), so a killed
task leaves no truncated image under an image name. A rename inside one folder is the
cheapest atomic step a file system offers (a staging folder elsewhere costs the kernel 2-3x
more per file on ext4, and on Lustre it can cross metadata servers). Each writer keeps a
marker in `<target>/.arrange-tmp/` while it runs; `clean_staging` looks for temporary
files only when a marker is left, i.e. after a crash, so a clean run scans nothing.

There is no fsync per file (it would cost more than the rest of the task): after a
machine crash, the files of the last seconds may be empty, and a re-run rewrites empty
files. An existing non-empty image is left alone, so a re-run writes nothing new.
`arrange_shard` yields one `(laion_index, status, shard)` record per sample or problem;
`shard_summary` packs them into a few arrays for the driver.
"""
from __future__ import annotations

import json
import os
import shutil
import tarfile
import uuid
import zlib
from collections import Counter
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from curation.arrange import (IMAGE_EXTS, REENCODE_EXT, STATUS_CODE, Rejected, WnidIndex, decode_rgb,
                              image_relpath, is_wnid, reencode_jpeg, sniff_image, split_member_name)
from udfs.files import TMP_MARK, put_local, tmp_name

#: `<target>/.arrange-tmp/`: one marker file per running writer
STAGING = ".arrange-tmp"
Record = Tuple[Optional[int], str, str]


class TreeWriter:
    """Writes files below `target` atomically: a temporary file beside the final one, then
    a rename. Holds a marker in `<target>/.arrange-tmp/` until `close()`."""

    _FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)

    def __init__(self, target: str):
        self.target = target
        self.tag = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        os.makedirs(os.path.join(target, STAGING), exist_ok=True)
        self.marker = os.path.join(target, STAGING, self.tag)
        os.close(os.open(self.marker, self._FLAGS, 0o666))
        self._dirs = set()

    def present(self, relpath: str) -> bool:
        """Whether `relpath` exists already (and is not empty): `write` would keep it."""
        try:
            return os.stat(os.path.join(self.target, relpath)).st_size > 0
        except FileNotFoundError:
            return False

    def write(self, relpath: str, data: bytes) -> str:
        """'present' when the file exists already (and is not empty), else 'written'."""
        final = os.path.join(self.target, relpath)
        try:
            if os.stat(final).st_size > 0:
                return "present"
        except FileNotFoundError:
            pass
        folder = os.path.dirname(final)
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)
        tmp = tmp_name(final, self.tag)
        fd = os.open(tmp, self._FLAGS, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        put_local(tmp, final)
        return "written"

    def close(self) -> None:
        try:
            os.unlink(self.marker)
        except FileNotFoundError:
            pass


def clean_staging(target: str) -> int:
    """Remove what killed writers left (their temporary files and markers); returns the
    number of temporary files removed. Without a marker left nothing is scanned."""
    staging = os.path.join(target, STAGING)
    if not os.path.isdir(staging):
        return 0
    removed = 0
    if os.listdir(staging):  # a writer did not finish: look for its temporary files
        with os.scandir(target) as folders:
            for folder in folders:
                if folder.is_dir(follow_symlinks=False) and is_wnid(folder.name):
                    with os.scandir(folder.path) as files:
                        for f in files:
                            if TMP_MARK in f.name:
                                os.unlink(f.path)
                                removed += 1
    shutil.rmtree(staging, ignore_errors=True)
    return removed


def tar_samples(fileobj, size: int) -> Iterator[Tuple[str, object]]:
    """Yield ('sample', (key, {ext: bytes})) or (problem, detail) in tar order.

    A read error ends the stream with ('corrupt_tar', detail) after the samples read so far
    (the last one with its complete members). `tarfile` ends quietly at a truncated header,
    so a tar of `size` bytes without its end-of-archive blocks is reported as truncated.
    """
    key, files, problem = None, {}, None
    try:
        with tarfile.open(fileobj=fileobj, mode="r|") as tf:
            for member in tf:
                if not member.isfile():
                    yield "unsafe_member_type", member.name
                    continue
                try:
                    member_key, ext = split_member_name(member.name)
                except Rejected as r:
                    yield r.reason, member.name
                    continue
                if member_key != key:
                    if key is not None:
                        yield "sample", (key, files)
                    key, files = member_key, {}
                files[ext] = tf.extractfile(member).read()
            if size - tf.offset < 2 * tarfile.BLOCKSIZE:
                problem = f"truncated: no end-of-archive blocks after byte {tf.offset}"
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        problem = str(e) or type(e).__name__
    if files:
        yield "sample", (key, files)
    if problem:
        yield "corrupt_tar", problem


def arrange_sample(files: Dict[str, bytes], index: WnidIndex, writer: Optional[TreeWriter],
                   max_pixels: int, reencode: bool = False) -> Tuple[Optional[int], str]:
    """(laion_index or None, status) of one sample; writes its image unless `writer` is None.

    `reencode`: the image is decoded to RGB and written as `<laion_index>.jpg` with Pillow's
    JPEG defaults (`curation.arrange.reencode_jpeg`), as the original arrange_laionet.py
    does; an image Pillow cannot decode is `decode_error` (also when only checking)."""
    try:
        laion_index = json.loads(files["json"])["laion_index"]
    except (KeyError, ValueError, TypeError):
        return None, "no_laion_index"
    if isinstance(laion_index, bool) or not isinstance(laion_index, int):
        return None, "no_laion_index"
    wnid = index.wnid_of(laion_index)
    if wnid is None:
        return laion_index, "not_in_metadata"
    ext = next((e for e in IMAGE_EXTS if e in files), None)
    if ext is None:
        return laion_index, "no_image"
    try:
        relpath = image_relpath(wnid, laion_index, REENCODE_EXT if reencode else ext)
        sniff_image(files[ext], max_pixels)
        if reencode:
            if writer is None:
                decode_rgb(files[ext])
            elif writer.present(relpath):
                return laion_index, "present"
            else:
                return laion_index, writer.write(relpath, reencode_jpeg(files[ext]))
    except Rejected as r:
        return laion_index, r.reason
    if writer is None:
        return laion_index, "checked"
    return laion_index, writer.write(relpath, files[ext])


def arrange_shard(shard: str, index: WnidIndex, target: Optional[str], max_pixels: int,
                  reencode: bool = False) -> Iterator[Record]:
    """All records of one tar (`shard`: any path `udfs.files` opens); `target=None` only checks."""
    from udfs import files

    name = shard.rstrip("/").rsplit("/", 1)[-1]
    fs, path = files.fs_for(shard)  # a local file straight from the OS (tarfile reads small blocks)
    writer = TreeWriter(target) if target else None
    try:
        with fs.open(path, "rb") as fh:
            for kind, item in tar_samples(fh, fs.size(path)):
                if kind == "sample":
                    laion_index, status = arrange_sample(item[1], index, writer, max_pixels, reencode)
                    yield laion_index, status, name
                else:
                    yield None, kind, name
    finally:
        if writer is not None:
            writer.close()


def shard_summary(shard: str, index: WnidIndex, target: Optional[str], max_pixels: int,
                  reencode: bool = False):
    """One task's result, small enough to collect: (shard name, {status: samples},
    laion_index int64 array, status code int8 array) of the samples of metadata rows."""
    name = shard.rstrip("/").rsplit("/", 1)[-1]
    counts: Counter = Counter()
    ids, codes = [], []
    for laion_index, status, _ in arrange_shard(shard, index, target, max_pixels, reencode):
        counts[status] += 1
        if laion_index is not None and status != "not_in_metadata":
            ids.append(laion_index)
            codes.append(STATUS_CODE[status])
    return name, dict(counts), np.array(ids, dtype=np.int64), np.array(codes, dtype=np.int8)

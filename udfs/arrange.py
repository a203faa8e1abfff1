"""The Spark task of `curate laionet arrange`: one webdataset tar in, image files out.

A task streams its tar once (members are read in order, nothing is extracted by name),
groups members into samples by key, identifies each sample by the `laion_index` in its
`.json`, and writes the image to `<target>/<wnid>/<laion_index>.<ext>` with the wnid taken
from the metadata. Files are written under `<target>/.arrange-tmp/` and renamed into place,
so a killed task leaves no truncated image; an existing image is left alone, so a re-run
writes nothing new. The task yields one `(laion_index, status, shard)` record per sample
or problem; the job turns them into the success metadata and the report.
"""
from __future__ import annotations

import json
import os
import tarfile
import zlib
from typing import Dict, Iterator, Optional, Tuple

from curation.arrange import IMAGE_EXTS, Rejected, WnidIndex, image_relpath, sniff_image, split_member_name

STAGING = ".arrange-tmp"
Record = Tuple[Optional[int], str, str]


class TreeWriter:
    """Writes files below `target` atomically: staging file, then rename."""

    def __init__(self, target: str):
        self.target = target
        self.staging = os.path.join(target, STAGING)
        os.makedirs(self.staging, exist_ok=True)
        self._dirs = set()

    def write(self, relpath: str, data: bytes) -> str:
        """'present' when the file exists already, else 'written'."""
        final = os.path.join(self.target, relpath)
        if os.path.exists(final):
            return "present"
        folder = os.path.dirname(final)
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)
        tmp = os.path.join(self.staging, f"{os.getpid()}-{relpath.replace('/', '-')}")
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.rename(tmp, final)
        return "written"


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
                   max_pixels: int) -> Tuple[Optional[int], str]:
    """(laion_index or None, status) of one sample; writes its image unless `writer` is None."""
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
        relpath = image_relpath(wnid, laion_index, ext)
        sniff_image(files[ext], max_pixels)
    except Rejected as r:
        return laion_index, r.reason
    if writer is None:
        return laion_index, "checked"
    return laion_index, writer.write(relpath, files[ext])


def arrange_shard(shard: str, index: WnidIndex, target: Optional[str], max_pixels: int) -> Iterator[Record]:
    """All records of one tar (`shard` is any path fsspec opens); `target=None` only checks."""
    import fsspec

    name = shard.rstrip("/").rsplit("/", 1)[-1]
    writer = TreeWriter(target) if target else None
    fs, path = fsspec.core.url_to_fs(shard)
    with fs.open(path, "rb") as fh:
        for kind, item in tar_samples(fh, fs.size(path)):
            if kind == "sample":
                laion_index, status = arrange_sample(item[1], index, writer, max_pixels)
                yield laion_index, status, name
            else:
                yield None, kind, name

"""The one file-system layer: every file operation of our Python code, on the driver and in
the Python workers, goes through this module (Spark's own DataFrame reads and writes go
through Hadoop, as Spark does them).

The rule (`fs_for(path, spark)`):
- a local path or `file:` URI: plain `os` calls (no JVM round trip, no extra library);
  with a session, a relative path is local only while Hadoop's default file system is;
- any other scheme with a session (driver code of a Spark job): the session's Hadoop
  FileSystem, i.e. the same client, configuration (`spark.hadoop.*` credentials) and file
  names as Spark's own reads and writes: `hdfs://`, `s3a://`, `gs://` work wherever Spark
  reads them;
- any other scheme without a session (the Python workers, which have no JVM, and jobs
  that run without Spark): fsspec, which needs the scheme's backend installed on the
  executors (`s3a://`: s3fs, `gs://`: gcsfs, `hdfs://`: pyarrow with libhdfs;
  `pip install longtail-curation[remote]`); a missing backend is one line (`UnsupportedScheme`).

One temporary-file scheme for every writer: a new file or folder is written under
`tmp_name(path)` = `<path>.__tmp-<id>` beside its final name and put in place by one
rename (`put`); a run that dies leaves only `*.__tmp-*` names, which the next run writing
the same path removes (`remove_stale_tmp`). Replacing an existing *output* safely (old
kept aside until the new one is in place) is `jobs.io.output.replace_path`, built on this.

This module never imports pyspark (the workers import it); a session is used only through
the object handed in.
"""
from __future__ import annotations

import os
import shutil
import uuid
from typing import List, Optional

from curation.errors import InputError

#: the mark of a temporary name: `<path>.__tmp-<id>`
TMP_MARK = ".__tmp-"
GLOB_CHARS = "*?[{"
#: bytes per py4j transfer when Python reads a file through Hadoop
HADOOP_CHUNK_BYTES = 16 << 20


class UnsupportedScheme(InputError):
    """No file system for a path's scheme here (a one-line message saying what to install)."""


#: what to install for a scheme fsspec has no backend for here
_BACKENDS = {"s3a": "s3fs", "s3": "s3fs", "s3n": "s3fs", "gs": "gcsfs", "gcs": "gcsfs",
             "hdfs": "pyarrow with libhdfs (HADOOP_HOME, CLASSPATH)", "abfs": "adlfs", "abfss": "adlfs"}


def scheme(path: str) -> str:
    """The URI scheme of `path` ('' for a plain path)."""
    return path.split("://", 1)[0].lower() if "://" in path else ""


def local_path(path: str) -> Optional[str]:
    """The local file-system path of `path` when it is local (plain path, file:/ or file:///)."""
    if path.startswith("file:"):
        rest = path[len("file:"):]
        return "/" + rest[2:].lstrip("/") if rest.startswith("//") else rest
    if "://" in path:
        return None
    return os.path.abspath(path)


def is_glob(path: str) -> bool:
    return any(ch in path for ch in GLOB_CHARS)


def tmp_name(path: str, tag: Optional[str] = None) -> str:
    """The temporary name of a new `path` (file or folder): `<path>.__tmp-<tag>` beside it."""
    return f"{path.rstrip('/')}{TMP_MARK}{tag or uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- backends
def _crc(path: str) -> str:
    """Hadoop's checksum file of a local file (`.<name>.crc` beside it)."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.crc")


class LocalFS:
    """Local paths with `os`. A file's Hadoop checksum (`.<name>.crc`) moves and goes with
    it, as through Hadoop."""

    local = True

    @staticmethod
    def exists(path):
        return os.path.lexists(path)

    @staticmethod
    def isdir(path):
        return os.path.isdir(path)

    @staticmethod
    def is_empty_dir(path):
        return os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path)

    @staticmethod
    def makedirs(path):
        os.makedirs(path, exist_ok=True)

    @staticmethod
    def rename(src, dst):
        parent = os.path.dirname(dst)
        if parent:
            os.makedirs(parent, exist_ok=True)
        os.rename(src, dst)
        if os.path.lexists(_crc(src)):
            os.replace(_crc(src), _crc(dst))

    @staticmethod
    def replace_file(src, dst):
        """One atomic rename over an existing file; the checksum is never stale: the old one
        is removed first (a file without one is read unchecked), the new one follows."""
        if os.path.lexists(_crc(dst)):
            os.remove(_crc(dst))
        os.replace(src, dst)
        if os.path.lexists(_crc(src)):
            os.replace(_crc(src), _crc(dst))

    @staticmethod
    def delete(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
        if os.path.lexists(_crc(path)):
            os.remove(_crc(path))

    @staticmethod
    def glob(pattern):
        import glob as _glob

        return sorted(_glob.glob(pattern))

    @staticmethod
    def list_files(path):
        if os.path.isfile(path):
            return [path]
        return sorted(os.path.join(path, n) for n in os.listdir(path) if os.path.isfile(os.path.join(path, n)))

    @staticmethod
    def size(path):
        return os.path.getsize(path)

    @staticmethod
    def read_bytes(path):
        with open(path, "rb") as fh:
            return fh.read()

    @staticmethod
    def write_bytes(path, data):
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)

    @staticmethod
    def open(path, mode="rb"):
        return open(path, mode)


class HadoopFS:
    """The session's Hadoop FileSystem, through py4j (driver only)."""

    local = False

    def __init__(self, spark):
        self.spark = spark

    def _jvm(self):
        return self.spark.sparkContext._jvm

    def fs(self, path: str):
        """(Hadoop FileSystem, Hadoop Path) of `path`; an unknown scheme is one line."""
        hp = self._jvm().org.apache.hadoop.fs.Path(path)
        try:
            return hp.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration()), hp
        except Exception as e:  # py4j: UnsupportedFileSystemException, a missing connector class
            if "No FileSystem for scheme" in str(e) or "ClassNotFoundException" in str(e):
                raise UnsupportedScheme(
                    f"{path}: Spark has no file system for scheme '{scheme(path)}' (add its Hadoop "
                    "connector: hadoop-aws for s3a://, the GCS connector for gs://)") from None
            raise

    def qualify(self, path):
        fs, hp = self.fs(path)
        return fs.makeQualified(hp).toString()

    def exists(self, path):
        fs, hp = self.fs(path)
        return bool(fs.exists(hp))

    def isdir(self, path):
        fs, hp = self.fs(path)
        return bool(fs.exists(hp)) and bool(fs.getFileStatus(hp).isDirectory())

    def is_empty_dir(self, path):
        fs, hp = self.fs(path)
        return bool(fs.getFileStatus(hp).isDirectory()) and len(fs.listStatus(hp)) == 0

    def makedirs(self, path):
        fs, hp = self.fs(path)
        fs.mkdirs(hp)

    def rename(self, src, dst):
        fs, hsrc = self.fs(src)
        hdst = self._jvm().org.apache.hadoop.fs.Path(dst)
        parent = hdst.getParent()
        if parent is not None and not fs.exists(parent):
            fs.mkdirs(parent)
        if not fs.rename(hsrc, hdst):
            raise OSError(f"could not rename {src} to {dst}")

    def delete(self, path):
        fs, hp = self.fs(path)
        if fs.exists(hp):
            fs.delete(hp, True)

    def glob(self, pattern):
        fs, hp = self.fs(pattern)
        sts = fs.globStatus(hp)
        return sorted(st.getPath().toString() for st in (sts or []))

    def list_files(self, path):
        """Files directly under a directory (sorted); of a file, the file itself."""
        fs, hp = self.fs(path)
        return sorted(st.getPath().toString() for st in fs.listStatus(hp) if st.isFile())

    def size(self, path):
        fs, hp = self.fs(path)
        return int(fs.getFileStatus(hp).getLen())

    def read_bytes(self, path):
        """The file's bytes, streamed from the JVM `HADOOP_CHUNK_BYTES` at a time (one py4j
        transfer per chunk, never the whole file in one Java array)."""
        fs, hp = self.fs(path)
        stream = fs.open(hp)
        chunks = []
        try:
            while True:
                chunk = stream.readNBytes(HADOOP_CHUNK_BYTES)  # a Java byte[]: Python bytes
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            stream.close()
        return b"".join(chunks)

    def write_bytes(self, path, data):
        fs, hp = self.fs(path)
        out = fs.create(hp, True)
        try:
            out.write(bytearray(data))
        finally:
            out.close()


class FsspecFS:
    """Any other scheme through fsspec (Python workers; jobs without a session)."""

    local = False

    def __init__(self, path: str):
        try:
            import fsspec

            # fsspec knows `s3a` as an alias of s3fs, `hdfs` through pyarrow
            self.fs, _ = fsspec.core.url_to_fs(path)
        except (ImportError, ValueError) as e:
            what = _BACKENDS.get(scheme(path))
            how = f"install {what} (pip install longtail-curation[remote])" if what else "use a local, hdfs://, s3a:// or gs:// path"
            raise UnsupportedScheme(f"{path}: no Python file system for scheme '{scheme(path)}' here ({e}); "
                                    f"{how}") from None

    def _p(self, path):
        return self.fs._strip_protocol(path)

    def exists(self, path):
        return bool(self.fs.exists(self._p(path)))

    def isdir(self, path):
        return bool(self.fs.isdir(self._p(path)))

    def is_empty_dir(self, path):
        return self.isdir(path) and not self.fs.ls(self._p(path))

    def makedirs(self, path):
        self.fs.makedirs(self._p(path), exist_ok=True)

    def rename(self, src, dst):
        self.fs.mv(self._p(src), self._p(dst), recursive=True)

    def delete(self, path):
        if self.fs.exists(self._p(path)):
            self.fs.rm(self._p(path), recursive=True)

    def _unstrip(self, inner: str, like: str) -> str:
        return self.fs.unstrip_protocol(inner) if "://" in like else inner

    def glob(self, pattern):
        return sorted(self._unstrip(p, pattern) for p in self.fs.glob(self._p(pattern)))

    def list_files(self, path):
        if self.fs.isfile(self._p(path)):
            return [path]
        return sorted(self._unstrip(e["name"], path) for e in self.fs.ls(self._p(path), detail=True)
                      if e.get("type") == "file")

    def size(self, path):
        return int(self.fs.size(self._p(path)))

    def read_bytes(self, path):
        with self.fs.open(self._p(path), "rb") as fh:
            return fh.read()

    def write_bytes(self, path, data):
        with self.fs.open(self._p(path), "wb") as fh:
            fh.write(data)

    def open(self, path, mode="rb"):
        return self.fs.open(self._p(path), mode)


# ---------------------------------------------------------------- the rule
def local_for(spark, path: str) -> Optional[str]:
    """The local path of `path` where it is local in the caller's terms: with a session, a
    relative path is local only when Hadoop's default file system is."""
    if spark is not None and "://" not in path and not path.startswith(("file:", "/")):
        default_fs = spark.sparkContext._jsc.hadoopConfiguration().get("fs.defaultFS") or "file:///"
        if not default_fs.startswith("file:"):
            return None
    return local_path(path)


def fs_for(path: str, spark=None):
    """(backend, path in its terms): `LocalFS` for a local path, else the session's Hadoop
    FileSystem (`HadoopFS`) with a session, fsspec (`FsspecFS`) without one."""
    local = local_for(spark, path)
    if local is not None:
        return LocalFS, local
    stripped = path.rstrip("/") or path
    return (HadoopFS(spark) if spark is not None else FsspecFS(path)), stripped


def listing_fs(path: str, spark=None):
    """The backend that lists `path`: with a session always Hadoop's (file names as Spark
    gives them, e.g. `file:/...`, so that they match `input_file_name()`)."""
    if spark is not None:
        return HadoopFS(spark), path
    return fs_for(path)


def exists(path: str, spark=None) -> bool:
    fs, p = fs_for(path, spark)
    return bool(fs.exists(p))


def isdir(path: str, spark=None) -> bool:
    fs, p = fs_for(path, spark)
    return bool(fs.isdir(p))


def delete(path: str, spark=None) -> None:
    fs, p = fs_for(path, spark)
    fs.delete(p)


def rename(src: str, dst: str, spark=None) -> None:
    """Move `src` to the free name `dst` (its parent made when missing)."""
    fs, d = fs_for(dst, spark)
    _, s = fs_for(src, spark)
    fs.rename(s, d)


def makedirs(path: str, spark=None) -> None:
    fs, p = fs_for(path, spark)
    fs.makedirs(p)


def glob(pattern: str, spark=None) -> List[str]:
    fs, p = listing_fs(pattern, spark)
    return fs.glob(p)


def list_files(path: str, spark=None) -> List[str]:
    """Files directly under a folder (sorted)."""
    fs, p = listing_fs(path, spark)
    return fs.list_files(p)


def read_bytes(path: str, spark=None) -> bytes:
    fs, p = fs_for(path, spark)
    return fs.read_bytes(p)


def read_text(path: str, spark=None) -> str:
    return read_bytes(path, spark).decode("utf-8")


def create(path: str, data: bytes, spark=None) -> None:
    """Write a file in one go (no temporary name: for files inside a temporary folder)."""
    fs, p = fs_for(path, spark)
    fs.write_bytes(p, data)


def put(tmp: str, path: str, spark=None) -> None:
    """Put the complete file or folder `tmp` at `path` by one rename: atomic over an existing
    local file; `path` must otherwise be free (replacing an output is
    `jobs.io.output.replace_path`)."""
    fs, p = fs_for(path, spark)
    _, t = fs_for(tmp, spark)
    if fs is LocalFS and os.path.isfile(t) and (os.path.isfile(p) or not os.path.lexists(p)):
        LocalFS.replace_file(t, p)
    else:
        fs.rename(t, p)


def remove_stale_tmp(path: str, spark=None) -> List[str]:
    """Delete `<path>.__tmp-*` siblings left by a killed run (returns what was removed).

    Two runs writing the same path at the same time are not supported: the later one
    removes the earlier one's temporary output."""
    fs, p = fs_for(path, spark)
    stale = (fs.glob(_escape_glob(p) + TMP_MARK + "*") if fs is LocalFS
             else glob(f"{path.rstrip('/')}{TMP_MARK}*", spark))
    for tmp in stale:
        delete(tmp, spark)
    return stale


def _escape_glob(path: str) -> str:
    import glob as _glob

    return _glob.escape(path.rstrip("/"))


def put_local(tmp: str, path: str) -> None:
    """`put` of a local file written by our Python code (no Hadoop checksum to carry): one
    `os.replace`, the cheapest atomic step (the workers' writers: arrange's image tree)."""
    os.replace(tmp, path)


def write_new(path: str, data: bytes, spark=None) -> None:
    """Write `data` at `path` under `tmp_name(path)`, then `put` (no stale temporaries
    removed: for files of a job's own temporary folder, which several task attempts may
    write at once)."""
    tmp = tmp_name(path)
    try:
        create(tmp, data, spark)
        put(tmp, path, spark)
    finally:
        delete(tmp, spark)

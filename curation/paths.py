"""Path rules: which values may name a file we write, and when two paths overlap.

- `unsafe_name(value)`: the one rule for a value from data (a wnid, a tar member name, an
  ImageNet-Captions filename, a shard or stage name) that becomes one component of a path
  we write or put in a TSV. It returns why the value is refused (a short reason for the
  stage report) or None. Refused: anything but a non-empty string, `/` or `\\` (so no
  absolute path and no second component), `.` / `..` or any `..`, a NUL or another
  control character, and more than `NAME_MAX` bytes in UTF-8 (the file-system limit).
- `resolve(path)` / `overlap(a, b)`: whether an output path is, is inside, or contains an
  input path, after resolving `file:` URIs, relative paths, symlinks and trailing slashes;
  URIs of other schemes are compared by scheme, authority and normalised path.
"""
from __future__ import annotations

import os
import posixpath
import re
from typing import NamedTuple, Optional

#: longest file name (one path component) in bytes on Linux, macOS, HDFS and S3 keys' parts
NAME_MAX = 255

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_GLOB_CHARS = "*?[{"

#: reasons `unsafe_name` gives (report keys are `<what>_<reason>` or the caller's own)
UNSAFE_REASONS = ("not_a_string", "empty", "separator", "dot_dot", "control_char", "too_long")


def unsafe_name(value) -> Optional[str]:
    """Why `value` cannot be one component of a path we write, or None when it can."""
    if not isinstance(value, str):
        return "not_a_string"
    if not value:
        return "empty"
    if "/" in value or "\\" in value:
        return "separator"
    if value in (".", "..") or ".." in value:
        return "dot_dot"
    if _CONTROL.search(value):
        return "control_char"
    if len(value.encode("utf-8", "surrogatepass")) > NAME_MAX:
        return "too_long"
    return None


def is_safe_name(value) -> bool:
    return unsafe_name(value) is None


def unsafe_root(value) -> Optional[str]:
    """Why a configured root (a path written at the start of every TSV file path, e.g.
    `--images-root`) cannot be used: a control character (a tab or line break would break
    the TSV), or a component longer than `NAME_MAX` bytes. None when it can."""
    if not isinstance(value, str):
        return "not_a_string"
    if _CONTROL.search(value):
        return "control_char"
    if any(len(p.encode("utf-8", "surrogatepass")) > NAME_MAX for p in value.split("/")):
        return "too_long"
    return None


class Resolved(NamedTuple):
    #: "scheme://authority" ("file://" for local paths)
    root: str
    #: normalised absolute path without a trailing slash ("/" for the root)
    path: str


def is_glob(path: str) -> bool:
    return any(c in path for c in _GLOB_CHARS)


def resolve(path: str) -> Resolved:
    """`path` as (scheme://authority, absolute normalised path).

    Local paths (plain, `file:/x`, `file:///x`) are made absolute and their symlinks
    resolved (the longest existing prefix; a glob's static part); other URIs are
    normalised only. A plain path counts as local (the output layer qualifies paths
    through Hadoop first, so on a cluster a plain path arrives as its full URI)."""
    if path.startswith("file:"):
        rest = path[len("file:"):]
        local = "/" + rest[2:].lstrip("/") if rest.startswith("//") else rest
        return Resolved("file://", _real(local))
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/]*)(.*)$", path)
    if m:
        scheme, authority, rest = m.groups()
        return Resolved(f"{scheme.lower()}://{authority.lower()}", _norm(rest or "/"))
    return Resolved("file://", _real(path))


def _norm(path: str) -> str:
    out = posixpath.normpath("/" + path.lstrip("/"))
    return "/" if out in ("/", "//") else out.rstrip("/")


def _real(local: str) -> str:
    """Absolute, symlinks resolved; a glob keeps its pattern part as typed."""
    local = os.path.abspath(local or ".")
    if is_glob(local):
        parts = local.split("/")
        static = next(i for i, p in enumerate(parts) if is_glob(p))
        head = os.path.realpath("/".join(parts[:static]) or "/")
        return _norm(head + "/" + "/".join(parts[static:]))
    return _norm(os.path.realpath(local))


def _components(path: str):
    return [p for p in path.split("/") if p]


def overlap(a: str, b: str) -> Optional[str]:
    """How path `a` relates to path `b`: "equal", "inside" (a is below b), "contains"
    (b is below a), or None. A glob in `b` (an input pattern) matches component-wise."""
    ra, rb = resolve(a), resolve(b)
    if ra.root != rb.root:
        return None
    ca, cb = _components(ra.path), _components(rb.path)
    if is_glob(rb.path):
        from fnmatch import fnmatchcase

        static = next(i for i, p in enumerate(cb) if is_glob(p))
        if len(ca) <= static:  # a is at or above the glob's static folder
            return "contains" if ca == cb[:len(ca)] else None
        if len(ca) < len(cb):
            return "contains" if all(fnmatchcase(x, y) for x, y in zip(ca, cb)) else None
        if all(fnmatchcase(x, y) for x, y in zip(ca, cb)):
            return "equal" if len(ca) == len(cb) else "inside"
        return None
    if ca == cb:
        return "equal"
    if ca[:len(cb)] == cb:
        return "inside"
    if cb[:len(ca)] == ca:
        return "contains"
    return None

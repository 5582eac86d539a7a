"""Which version of a mapping is this, and have its files changed since?

A compiled mapping is made of several files: the mapping itself, its lookup tables, its
layout (``CompiledMapping.files``). Its **version** is a short hash of their names and
contents, journalled with every document it makes, so that ``edigw show`` tells which edit
made a payload. Its **stamps** (modification time and size of each file, and of the folders
that hold them, which change when a file is created, deleted or replaced by an editor's
save-by-rename) are what a running gateway compares, cheaply, to know when to reload it.

A file written during the compilation could be read in one version and stamped in the
next; a stamp younger than the start of the compilation (within :data:`RACY_SECONDS`, the
coarsest modification-time granularity we expect) is therefore left unknown, so that the
next look compiles again (and finds the same version, or the newer one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

#: Characters of the hex digest kept as the version (48 bits: collisions are not a concern
#: between the few versions of one mapping).
VERSION_LENGTH = 12
#: A stamp this close to (or after) the start of a compilation is not trusted.
RACY_SECONDS = 2.0

Stamp = tuple[int, int] | None
Stamps = Mapping[Path, Stamp]


def content_version(files: Iterable[Path]) -> str:
    """The short hash of ``files``' names and contents (a missing file counts as empty)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode("utf-8", "surrogateescape") + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"\0missing\0")
        digest.update(b"\0")
    return digest.hexdigest()[:VERSION_LENGTH]


def watched_paths(files: Iterable[Path]) -> list[Path]:
    """``files`` and the folders holding them: a file created beside them (a lookup table
    the next edit names) or replaced by rename changes its folder's stamp."""
    found = list(files)
    return list(dict.fromkeys([*found, *(path.parent for path in found)]))


def stamp_of(path: Path) -> Stamp:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def stamps_of(paths: Iterable[Path], *, compiled_from_ns: int | None = None) -> dict[Path, Stamp]:
    """The stamp of each path (``None``: missing, or racy: changed since ``compiled_from_ns``
    began, less :data:`RACY_SECONDS`)."""
    found: dict[Path, Stamp] = {}
    for path in paths:
        stamp = stamp_of(path)
        if (
            stamp is not None
            and compiled_from_ns is not None
            and stamp[0] >= compiled_from_ns - int(RACY_SECONDS * 1e9)
        ):
            stamp = (-1, -1)  # never equal to a real stamp: looked at again
        found[path] = stamp
    return found


def changed(stamps: Stamps) -> bool:
    """Whether any path's stamp differs from ``stamps`` now (a racy stamp always does)."""
    return any(stamp_of(path) != stamp for path, stamp in stamps.items())


__all__ = [
    "RACY_SECONDS",
    "Stamps",
    "changed",
    "content_version",
    "stamps_of",
    "watched_paths",
]

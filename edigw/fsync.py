"""fsync by path: a file's bytes, or a folder's entries (a name created or renamed into it is
then durable). For the places that must be on disk before edigw acts: the archive, the
journal's barriers."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder's entries: a rename into it is then durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

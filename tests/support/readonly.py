"""Making a file truly read-only for the process under test, root included.

A mode of 0444 stops an ordinary user, not root (these tests often run as root in
containers): then the file is made immutable (``chattr +i``), which stops root too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def make_read_only(path: Path) -> None:
    if os.geteuid() != 0:
        path.chmod(0o444)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: no way to make a file read-only")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"running as root and chattr +i is refused here: {done.stderr.strip()}")


def make_writable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
    path.chmod(0o644)


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` is read-only inside the block (and writable again after, whatever happens)."""
    make_read_only(path)
    try:
        yield
    finally:
        make_writable(path)

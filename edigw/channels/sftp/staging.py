"""Local staging of SFTP downloads: the folder an inbound flow writes the files it fetches
but does not keep in memory (large ones, and small ones beyond a poll's memory budget).

One folder per flow and process (``STAGING/FLOW/PID``), shared by the channels of this
process on the same flow (a reloaded flow's new channel and the old one still disposing of
its files): emptied by its first user, removed by its last. Folders that dead processes
left behind are removed (their files are fetched again); those of live ones are kept.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import threading
from pathlib import Path

from edigw.filemodes import FileModes, make_folders
from edigw.processes import pid_alive


def _own_staging(folder: Path, modes: FileModes) -> Path:
    """This process's staging folder under ``folder``; folders of dead processes (a crash
    left them: those files are fetched again) are removed, those of live ones kept."""
    make_folders(folder, modes)
    for other in folder.iterdir():
        if (
            other.name.isdigit()
            and other.name != str(os.getpid())
            and not pid_alive(int(other.name))
        ):
            shutil.rmtree(other, ignore_errors=True)
    own = folder / str(os.getpid())
    shutil.rmtree(own, ignore_errors=True)
    make_folders(own, modes)
    return own


#: Staging folders in use by this process's inbound channels, and by how many: a flow a
#: reload changed has its new channel on the same folder while the old one still disposes
#: of its files, so the folder is emptied by its first user and removed by its last.
_staging_users: dict[Path, int] = {}
_staging_lock = threading.Lock()
#: Staged files' numbers, unique in the process (two channels may share a folder).
_staged_names = itertools.count(1)


def _use_staging(folder: Path, modes: FileModes) -> Path:
    """This process's staging folder under ``folder`` (``_own_staging`` for its first user)."""
    with _staging_lock:
        own = folder / str(os.getpid())
        if not _staging_users.get(own):
            own = _own_staging(folder, modes)
        _staging_users[own] = _staging_users.get(own, 0) + 1
        return own


def _leave_staging(own: Path) -> None:
    """A channel is done with its staging folder: removed when no other channel uses it."""
    with _staging_lock:
        users = _staging_users.pop(own, 1) - 1
        if users > 0:
            _staging_users[own] = users
        else:
            shutil.rmtree(own, ignore_errors=True)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "channel"

"""Operations on a remote SFTP session, beyond what paramiko's client offers.

Path joining, existence and folder creation, a rename that never overwrites
(``_move_to_free_name``), and small files fetched several at a time over one session
(``_fetch_pipelined``, on paramiko's request layer). Shared by the channels and the
endpoint check; they raise paramiko's and the OS's errors, which their callers translate
(``failures``).
"""

from __future__ import annotations

import errno
import posixpath
from collections.abc import Sequence
from typing import Any

import paramiko
from paramiko import sftp as paramiko_sftp

from edigw.channels.base import numbered_name

#: Read size for remote files (downloads, and a source read again to see if it changed).
_CHUNK = 1 << 20


def _join(folder: str, name: str) -> str:
    return posixpath.join(folder, name) if name else folder


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
    except FileNotFoundError:
        return False
    return True


def _makedirs(sftp: paramiko.SFTPClient, folder: str) -> None:
    if not folder or folder == "/" or _exists(sftp, folder):
        return
    _makedirs(sftp, posixpath.dirname(folder.rstrip("/")))
    try:
        sftp.mkdir(folder)
    except OSError:
        if not _exists(sftp, folder):
            raise


class _Answers:
    """Collects the server's answers to pipelined requests (paramiko's asynchronous hook)."""

    def __init__(self) -> None:
        self.got: dict[int, tuple[int, paramiko.Message]] = {}

    def _async_response(self, kind: int, msg: paramiko.Message, num: int) -> None:
        self.got[num] = (kind, msg)


def _status_error(code: int, text: str) -> OSError:
    """The error an SFTP status stands for (as paramiko's own requests raise them)."""
    if code == paramiko_sftp.SFTP_NO_SUCH_FILE:
        return FileNotFoundError(errno.ENOENT, text or "No such file")
    if code == paramiko_sftp.SFTP_PERMISSION_DENIED:
        return PermissionError(errno.EACCES, text or "Permission denied")
    return OSError(text or f"SFTP status {code}")


def _answer_error(kind: int, msg: paramiko.Message) -> OSError:
    if kind != paramiko_sftp.CMD_STATUS:
        return OSError(f"unexpected server answer ({kind})")
    return _status_error(msg.get_int(), msg.get_text())


def _fetch_pipelined(
    sftp: paramiko.SFTPClient, files: Sequence[tuple[str, int]], *, window: int
) -> list[bytes | OSError]:
    """Each ``(path, listed size)`` file's bytes, or why it could not be read.

    Up to ``window`` files are in flight at once: open, then one read of ``size + 1``
    bytes (so a file that grew since the listing shows it), then close, each request sent
    as soon as the previous answer for that file arrives, so the round trips overlap
    instead of adding up. Sizes must be below ``_PIPELINED_BELOW``. A dead connection
    raises (``_CONNECTION_FAILURES``) and leaves the session out of step: drop it. Trouble
    with one file is returned in its place. Uses paramiko's request layer.
    """
    client: Any = sftp
    answers = _Answers()
    results: list[bytes | OSError | None] = [None] * len(files)
    waiting: dict[int, tuple[int, str]] = {}  # request number -> (file index, step)
    handles: dict[int, bytes] = {}
    queue = iter(range(len(files)))

    def start_next() -> None:
        index = next(queue, None)
        if index is None:
            return
        attrs = paramiko.SFTPAttributes()
        num = client._async_request(
            answers, paramiko_sftp.CMD_OPEN, files[index][0], paramiko_sftp.SFTP_FLAG_READ, attrs
        )
        waiting[num] = (index, "open")

    def finish(index: int, result: bytes | OSError) -> None:
        results[index] = result
        handle = handles.pop(index, None)
        if handle is not None:
            num = client._async_request(answers, paramiko_sftp.CMD_CLOSE, handle)
            waiting[num] = (index, "close")
        start_next()

    for _ in range(window):
        start_next()
    while waiting:
        while not answers.got:
            client._read_response()
        num, (kind, msg) = answers.got.popitem()
        if num not in waiting:
            continue
        index, step = waiting.pop(num)
        if step == "open":
            if kind != paramiko_sftp.CMD_HANDLE:
                finish(index, _answer_error(kind, msg))
                continue
            handles[index] = msg.get_binary()
            num = client._async_request(
                answers,
                paramiko_sftp.CMD_READ,
                handles[index],
                paramiko_sftp.int64(0),
                files[index][1] + 1,
            )
            waiting[num] = (index, "read")
        elif step == "read":
            if kind == paramiko_sftp.CMD_DATA:
                finish(index, msg.get_binary())
            elif kind == paramiko_sftp.CMD_STATUS:
                code, text = msg.get_int(), msg.get_text()
                eof = code == paramiko_sftp.SFTP_EOF
                finish(index, b"" if eof else _status_error(code, text))  # EOF: an empty file
            else:
                finish(index, _answer_error(kind, msg))
        # a close's answer needs nothing: the bytes are already in hand
    return [r if r is not None else OSError("no answer") for r in results]


def _move_to_free_name(sftp: paramiko.SFTPClient, source: str, target: str) -> str:
    """Rename ``source`` to ``target`` or ``NAME.n.ext`` beside it; never overwrites."""
    _makedirs(sftp, posixpath.dirname(target))
    n = 0
    candidate = target
    while _exists(sftp, candidate):
        n += 1
        candidate = numbered_name(target, n)
    sftp.rename(source, candidate)
    return candidate

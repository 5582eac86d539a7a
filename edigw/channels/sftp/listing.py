"""Listing an inbound flow's remote folder.

``_listdir_attr`` lists one folder, names that are not UTF-8 included, on paramiko's request
layer; ``scan`` walks the flow's folder with it at each poll, to the flow's depth, and says
which entries the channel may take and which it cannot (with why).
"""

from __future__ import annotations

import contextlib
import posixpath
import stat
from collections.abc import Collection
from typing import Any

import paramiko
from paramiko import sftp as paramiko_sftp

from edigw.channels.base import Listed, name_problem
from edigw.channels.sftp.failures import _describe, _remote_error
from edigw.channels.sftp.remote import _join
from edigw.channels.sftp.settings import SftpInboundSettings
from edigw.errors import ChannelError


def _listdir_attr(sftp: paramiko.SFTPClient, folder: str) -> list[paramiko.SFTPAttributes]:
    """``listdir_attr`` that survives names which are not UTF-8.

    paramiko's own raises ``UnicodeDecodeError`` for the whole folder when one name has odd
    bytes, so one bad file would hide every other; here such names come back with surrogate
    escapes (``name_problem`` reports them). It also tells a dead connection from the end of
    the listing, which paramiko's ``EOFError`` conflates. Uses paramiko's request layer.
    """
    client: Any = sftp
    kind, msg = client._request(paramiko_sftp.CMD_OPENDIR, folder)
    if kind != paramiko_sftp.CMD_HANDLE:
        msg = f"cannot list {folder}: unexpected server answer"
        raise ChannelError(msg)
    handle = msg.get_binary()
    entries: list[paramiko.SFTPAttributes] = []
    try:
        while True:
            try:
                kind, msg = client._request(paramiko_sftp.CMD_READDIR, handle)
            except EOFError:
                channel = sftp.get_channel()
                if channel is None or channel.closed:
                    raise
                break  # SSH_FX_EOF: the listing is complete
            if kind != paramiko_sftp.CMD_NAME:
                msg = f"cannot list {folder}: unexpected server answer"
                raise ChannelError(msg)
            for _ in range(msg.get_int()):
                name = msg.get_string().decode("utf-8", "surrogateescape")
                longname = msg.get_string().decode("utf-8", "replace")
                attrs = paramiko.SFTPAttributes._from_msg(msg, name, longname)  # type: ignore[attr-defined]
                if name not in (".", ".."):
                    entries.append(attrs)
    finally:
        with contextlib.suppress(Exception):
            client._request(paramiko_sftp.CMD_CLOSE, handle)
    return entries


def scan(
    sftp: paramiko.SFTPClient, root: str, *, skip: Collection[str], settings: SftpInboundSettings
) -> tuple[list[Listed], set[str], list[tuple[str, str]]]:
    """The files of an inbound flow's remote folder ``root``, every name listed, and the
    entries that cannot be taken (with why); see ``SftpInboundChannel.poll``. Folders are
    walked to the flow's depth, never into those in ``skip`` (its done and error folders).
    """
    found: list[Listed] = []
    names: set[str] = set()
    problems: list[tuple[str, str]] = []
    depth_limit = settings.max_depth if settings.recursive else 1
    stack: list[tuple[str, str, int]] = [(root, "", 1)]
    while stack:
        folder, prefix, depth = stack.pop()
        try:
            entries = _listdir_attr(sftp, folder)
        except OSError as exc:
            if not prefix:
                msg = f"cannot list {folder} on endpoint {settings.endpoint}"
                raise _remote_error(msg, exc) from exc
            problems.append((prefix.rstrip("/"), f"cannot list folder: {_describe(exc)}"))
            continue
        for attrs in entries:
            name = prefix + attrs.filename
            names.add(name)
            if attrs.filename.startswith("."):
                continue
            bad = name_problem(name)
            if bad:
                problems.append((name, bad))
                continue
            mode = attrs.st_mode or 0
            if stat.S_ISDIR(mode):
                remote = posixpath.normpath(_join(root, name))
                if depth < depth_limit and remote not in skip:
                    stack.append((remote, name + "/", depth + 1))
                continue
            if not stat.S_ISREG(mode):
                problems.append((name, "not a regular file"))
                continue
            found.append(Listed(name=name, size=attrs.st_size or 0, mtime=attrs.st_mtime or 0))
    return found, names, problems

"""The SFTP outbound channel: delivers files into a partner's remote folder.

``SftpOutboundChannel.deliver`` uploads under a temp name and renames into place (never
clobbering an existing file unless ``if_exists: replace``); it can also tell whether a file
it may have delivered is there with exactly these bytes (``holds``, ``delivered_as``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import posixpath
from pathlib import Path

import paramiko

from edigw.channels.base import (
    Delivered,
    DeliveredIncompletely,
    delivered_name,
    name_problem,
    numbered_name,
)
from edigw.channels.sftp.connection import SftpConnections
from edigw.channels.sftp.failures import _REMOTE_FAILURES, _describe, _remote_error
from edigw.channels.sftp.remote import _exists, _join
from edigw.channels.sftp.settings import SftpOutboundSettings
from edigw.errors import ChannelError


class SftpOutboundChannel:
    """Delivers into a remote folder: ``.NAME.part`` upload, size check, rename into place.

    ``if_exists``: ``replace`` uses the posix-rename extension (atomic overwrite);
    ``fail`` and ``rename`` use the plain SFTP rename, which refuses an existing target, so
    no existing file is ever clobbered and the check cannot race.
    """

    def __init__(self, settings: SftpOutboundSettings, connections: SftpConnections) -> None:
        self.settings = settings
        self.key = f"sftp:{settings.endpoint}:{settings.path}"
        self._connections = connections

    def deliver(self, local_file: Path, name: str) -> Delivered:
        bad = name_problem(name)
        if bad:
            raise ChannelError(bad, retriable=False)
        s = self.settings
        up = s.upload
        final = _join(s.path, name)
        folder, base = posixpath.split(final)
        temp = _join(folder, f"{up.temp_prefix}{base}{up.temp_suffix}")
        placed: str | None = None
        with self._connections.session(s.endpoint) as sftp:
            try:
                with local_file.open("rb") as src:
                    attrs = sftp.putfo(src, temp, confirm=True)
                size = attrs.st_size or 0
                placed = self._place(sftp, temp, final)
                done_path = None
                if up.done_file:
                    done_path = placed + up.done_file
                    sftp.putfo(io.BytesIO(b""), done_path, confirm=False)
            except ChannelError:
                self._cleanup(sftp, temp)
                raise
            except _REMOTE_FAILURES as exc:
                if placed is not None:  # in place: delivered, whatever failed after
                    landed = Delivered(name=posixpath.basename(placed), path=placed, size=size)
                    msg = (
                        f"{s.endpoint}:{placed} delivered, the step after failed: {_describe(exc)}"
                    )
                    owed = up.done_file is not None  # the done file is the only step after
                    raise DeliveredIncompletely(msg, landed, done_file_owed=owed) from exc
                self._cleanup(sftp, temp)
                msg = f"upload of {name} to {s.endpoint}:{final} failed"
                raise _remote_error(msg, exc) from exc
        return Delivered(
            name=posixpath.basename(placed), path=placed, size=size, done_file=done_path
        )

    def write_done_file(self, name: str) -> str | None:
        """Write the done file of ``name``, delivered earlier without one (``None``: no done
        files configured, or ``name`` is no longer in the remote folder)."""
        s = self.settings
        if name_problem(name) or not s.upload.done_file:
            return None
        final = _join(s.path, name)
        done = final + s.upload.done_file
        with self._connections.session(s.endpoint) as sftp:
            try:
                if not _exists(sftp, final):
                    return None
                sftp.putfo(io.BytesIO(b""), done, confirm=False)
            except _REMOTE_FAILURES as exc:
                msg = f"cannot write the done file {s.endpoint}:{done}"
                raise _remote_error(msg, exc) from exc
        return done

    def holds(self, name: str, *, size: int, sha256: str) -> bool:
        """Whether ``name`` is in the remote folder with exactly these bytes: a stat, then
        (same size only) the file read back and hashed (a delivery whose journalling a
        killed node never finished: ``edigw.outbound.pending``)."""
        if name_problem(name):
            return False
        s = self.settings
        with self._connections.session(s.endpoint) as sftp:
            return self._same(sftp, _join(s.path, name), size, sha256) is True

    def delivered_as(self, name: str, *, size: int, sha256: str) -> str | None:
        """The name under which a delivery asked as ``name`` holds exactly these bytes, or
        ``None``: ``name`` itself or, with ``if_exists: rename``, the numbered names rename
        gives, looked at in its order up to the first free one (where it would have put it)."""
        if name_problem(name):
            return None
        s = self.settings
        with self._connections.session(s.endpoint) as sftp:
            return delivered_name(
                name,
                rename=s.upload.if_exists == "rename",
                holds=lambda candidate: self._same(sftp, _join(s.path, candidate), size, sha256),
            )

    def _same(self, sftp: paramiko.SFTPClient, final: str, size: int, sha256: str) -> bool | None:
        """Whether remote ``final`` holds these bytes; ``None`` when there is no such file."""
        try:
            try:
                attrs = sftp.stat(final)
            except FileNotFoundError:
                return None
            if attrs.st_size != size:
                return False
            digest = hashlib.sha256()
            with sftp.open(final, "rb") as remote:
                remote.prefetch(size)
                while chunk := remote.read(1 << 20):
                    digest.update(chunk)
        except _REMOTE_FAILURES as exc:
            msg = f"cannot read {self.settings.endpoint}:{final} back"
            raise _remote_error(msg, exc) from exc
        return digest.hexdigest() == sha256

    def _place(self, sftp: paramiko.SFTPClient, temp: str, final: str) -> str:
        policy = self.settings.upload.if_exists
        if policy == "replace":
            try:
                sftp.posix_rename(temp, final)
            except OSError:
                if not _exists(sftp, final):
                    raise
                sftp.remove(final)  # server without posix-rename: closest we can do
                sftp.rename(temp, final)
            return final
        n = 0
        candidate = final
        while True:
            try:
                sftp.rename(temp, candidate)
                return candidate
            except OSError:
                if not _exists(sftp, candidate):
                    raise
                if policy == "fail":
                    msg = f"{self.settings.endpoint}:{final} already exists (if_exists: fail)"
                    raise ChannelError(msg, retriable=False) from None
                n += 1
                candidate = numbered_name(final, n)

    @staticmethod
    def _cleanup(sftp: paramiko.SFTPClient, temp: str) -> None:
        with contextlib.suppress(Exception):
            sftp.remove(temp)

    def close(self) -> None:
        """The connection belongs to ``SftpConnections``."""

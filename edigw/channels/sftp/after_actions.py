"""What an SFTP inbound flow does to a remote source once its outcome is known.

Moved to the done folder or deleted (its done file following), or moved to the error folder
with a report beside it, never overwriting anything; first, whether the source changed
since it was read (then it is left for the next poll); and, for a replay, the error copy
put where a done file goes. The channel decides when, and remembers what it could not
move; these need only the flow's settings and the connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import posixpath
from datetime import UTC, datetime

import paramiko

from edigw.channels.base import (
    ERROR_CLEARED,
    ChannelActionResult,
    Disposition,
    IncomingFile,
    change_since_read,
    error_report,
    error_report_name,
)
from edigw.channels.sftp.connection import SftpConnections
from edigw.channels.sftp.failures import _REMOTE_FAILURES, _describe
from edigw.channels.sftp.remote import _CHUNK, _exists, _join, _move_to_free_name
from edigw.channels.sftp.settings import SftpInboundSettings
from edigw.errors import ChannelError


def _report_path(target: str) -> str:
    """Where the error report of the remote ``target`` goes: beside it."""
    folder, _, name = target.rpartition("/")
    return f"{folder}/{error_report_name(name)}" if folder else error_report_name(name)


class SftpAfterActions:
    """One inbound flow's after-actions on its remote sources (folders relative to ``root``)."""

    def __init__(
        self, settings: SftpInboundSettings, connections: SftpConnections, root: str
    ) -> None:
        self.settings = settings
        self._connections = connections
        self._root = root

    def _folder(self, folder: str) -> str:
        return _join(self._root, folder)

    def act(
        self,
        sftp: paramiko.SFTPClient,
        action: str,
        incoming: IncomingFile,
        disposition: Disposition,
        remote: str,
        done: str | None,
    ) -> ChannelActionResult:
        s = self.settings
        if action == "delete":
            sftp.remove(remote)
            if done is not None:
                with contextlib.suppress(FileNotFoundError):
                    sftp.remove(done)
            return ChannelActionResult(ok=True, action="deleted")
        folder = self._folder(s.after.to if action == "move" else s.error_folder)
        target = _move_to_free_name(sftp, remote, _join(folder, incoming.name))
        if done is not None:
            with contextlib.suppress(FileNotFoundError):
                _move_to_free_name(sftp, done, target + s.readiness.suffix)
        if action == "move":
            return ChannelActionResult(ok=True, action="moved", target=target)
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        report = error_report(incoming.name, disposition, when=when).encode("utf-8")
        sftp.putfo(io.BytesIO(report), _report_path(target))
        return ChannelActionResult(ok=True, action="error-moved", target=target)

    @staticmethod
    def changed(sftp: paramiko.SFTPClient, incoming: IncomingFile) -> str | None:
        """How the remote source differs from what was read (``None``: the same, or gone:
        the after-action then reports what it finds)."""
        remote = incoming.remote_path
        try:
            attrs = sftp.stat(remote)
        except FileNotFoundError:
            return None

        def digest() -> str:
            hashed = hashlib.sha256()
            with sftp.open(remote, "rb") as src:
                src.prefetch(attrs.st_size or 0)
                while chunk := src.read(_CHUNK):
                    hashed.update(chunk)
            return hashed.hexdigest()

        return change_since_read(
            incoming, size=attrs.st_size or 0, mtime=attrs.st_mtime or 0, digest=digest
        )

    def clear_error(self, name: str, target: str) -> ChannelActionResult:
        """Put a replayed file's error copy where a done file goes; remove its report."""
        s = self.settings
        error_folder = self._folder(s.error_folder).rstrip("/") + "/"
        if not posixpath.normpath(target).startswith(error_folder):
            detail = f"{target} is not in the flow's error folder {error_folder}; left as it is"
            return ChannelActionResult(ok=False, action=ERROR_CLEARED, detail=detail)
        marker = target + s.readiness.suffix if s.readiness.mode == "done_file" else None
        moved = ""
        try:
            with self._connections.session(s.endpoint) as sftp:
                if _exists(sftp, target):
                    if s.after.action == "move":
                        done = _join(self._folder(s.after.to), name)
                        moved = _move_to_free_name(sftp, target, done)
                        if marker is not None and _exists(sftp, marker):
                            _move_to_free_name(sftp, marker, moved + s.readiness.suffix)
                    else:
                        sftp.remove(target)
                for leftover in (marker, _report_path(target)):
                    if leftover is not None:
                        with contextlib.suppress(FileNotFoundError):
                            sftp.remove(leftover)
        except ChannelError as exc:
            return ChannelActionResult(ok=False, action=ERROR_CLEARED, detail=str(exc))
        except _REMOTE_FAILURES as exc:
            detail = (
                f"clearing {target} on {s.endpoint} from the error folder failed: {_describe(exc)}"
            )
            return ChannelActionResult(ok=False, action=ERROR_CLEARED, detail=detail)
        return ChannelActionResult(ok=True, action=ERROR_CLEARED, target=moved)

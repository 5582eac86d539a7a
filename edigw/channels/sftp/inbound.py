"""The SFTP inbound channel: one flow's remote folder, polled, its files handed over.

``SftpInboundChannel.poll`` lists (``listing.scan``), applies readiness, claims, and fetches
each ready file (size checked against the listing, sha256 computed on the way): small files
are kept in memory (the pipeline archives the bytes), the smallest fetched several at a
time over the one connection (``remote._fetch_pipelined``); large ones stream to a staging
file (``staging``), and small ones beyond the poll's memory budget are written there in the
background (``_StagingWriter``, which shares that budget). ``complete`` applies the
after-action remotely (``after_actions``) and reports failures in its result.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path, PurePosixPath

import paramiko

from edigw.channels.base import (
    KEPT_CHANGED,
    ChannelActionResult,
    ChannelProblem,
    Disposition,
    IncomingFile,
    Listed,
    PollResult,
    ReadinessTracker,
    SeenFiles,
    is_candidate,
)
from edigw.channels.sftp.after_actions import SftpAfterActions
from edigw.channels.sftp.connection import SftpConnections
from edigw.channels.sftp.failures import (
    _CONNECTION_FAILURES,
    _REMOTE_FAILURES,
    _describe,
    _remote_error,
)
from edigw.channels.sftp.listing import scan
from edigw.channels.sftp.remote import _CHUNK, _fetch_pipelined, _join
from edigw.channels.sftp.settings import SftpInboundSettings
from edigw.channels.sftp.staging import _leave_staging, _slug, _staged_names, _use_staging
from edigw.errors import ChannelError
from edigw.filemodes import FileModes, open_private, write_private

_MAX_PENDING = 64 << 20
_PREFETCH_FROM = 64 << 10
#: Files smaller than this are fetched with one read request (paramiko's and every server's
#: request size), several files in flight at once.
_PIPELINED_BELOW = paramiko.SFTPFile.MAX_REQUEST_SIZE
_PIPELINE_WINDOW = 16


class _StagingWriter:
    """Writes small downloads to staging on a background thread, so that the disk (creating
    a file costs 0.1-0.3 ms here) overlaps the network; at most ``_MAX_PENDING`` bytes wait
    in memory. Leaving the ``with`` block waits for every write."""

    def __init__(self, modes: FileModes) -> None:
        self._modes = modes
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edigw-staging")
        self._pending: deque[tuple[int, Future[None]]] = deque()
        self._bytes = 0

    def write(self, path: Path, data: bytes) -> Future[None]:
        while self._pending and self._bytes + len(data) > _MAX_PENDING:
            size, oldest = self._pending.popleft()
            wait([oldest])
            self._bytes -= size
        future = self._pool.submit(write_private, path, data, self._modes)
        self._pending.append((len(data), future))
        self._bytes += len(data)
        return future

    def __enter__(self) -> _StagingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True)


class SftpInboundChannel:
    """One inbound flow's remote folder.

    ``poll`` raises ``ChannelError`` when the endpoint cannot be reached or the folder not
    listed; per-file trouble (download cut, size changed, bad name, too large) comes back
    as ``ChannelProblem``. A file processed and left in place (``after: leave``), or whose
    remote after-action failed, is remembered in ``seen`` and not fetched again unless its
    content changes.
    """

    def __init__(
        self,
        settings: SftpInboundSettings,
        connections: SftpConnections,
        *,
        staging_dir: Path,
        seen: SeenFiles,
    ) -> None:
        self.settings = settings
        self.key = f"sftp:{settings.endpoint}:{settings.path}"
        self._connections = connections
        self._seen = seen
        self._tracker = ReadinessTracker(settings.readiness, max_files=settings.max_files_per_poll)
        self._staging = _use_staging(staging_dir / _slug(self.key), settings.modes)
        self._closed = False
        self._sequence = _staged_names  # staging names (os.urandom costs ~70 µs here)
        root = settings.path.rstrip("/") or "/"
        self._root = root
        self._skip = {
            posixpath.normpath(_join(root, settings.after.to)),
            posixpath.normpath(_join(root, settings.error_folder)),
        }
        self._after = SftpAfterActions(settings, connections, root)

    def _remote(self, name: str) -> str:
        return _join(self._root, name)

    def poll(self, *, now: float) -> PollResult:
        """Ready files downloaded to staging, oldest first, at most ``max_files_per_poll``."""
        s = self.settings
        done_suffix = s.readiness.suffix if s.readiness.mode == "done_file" else None
        files: list[IncomingFile] = []
        problems: list[ChannelProblem] = []
        with self._connections.session(s.endpoint) as sftp:
            try:
                listing, names, scan_problems = scan(sftp, self._root, skip=self._skip, settings=s)
            except _CONNECTION_FAILURES as exc:
                msg = f"cannot list {self._root} on {s.endpoint}"
                raise _remote_error(msg, exc) from exc
            for name, reason in scan_problems:
                if is_candidate(name, include=s.include, exclude=s.exclude):
                    reported = self._tracker.report_once(name, reason)
                    if reported:
                        problems.append(reported)
            matching = [
                f
                for f in listing
                if is_candidate(
                    f.name, include=s.include, exclude=s.exclude, done_suffix=done_suffix
                )
            ]
            # one batched question for the listing; files in progress are not asked about
            in_progress = self._tracker.claimed()
            seen = self._seen.seen_among(
                self.key,
                {
                    self._remote(f.name): (f.size, f.mtime)
                    for f in matching
                    if f.name not in in_progress
                },
            )
            candidates = [f for f in matching if self._remote(f.name) not in seen]
            chosen = self._tracker.take(candidates, now=now, all_names=names)
            wanted: list[Listed] = []
            for listed in chosen:
                if s.max_size is not None and listed.size > s.max_size:
                    reason = f"file is {listed.size} bytes, larger than the limit of {s.max_size}"
                    incoming = self._incoming(listed, None)
                    problems.append(ChannelProblem(listed.name, reason, incoming=incoming))
                else:
                    wanted.append(listed)
            staged = self._fetch(sftp, wanted, problems)
            for incoming, written in staged:  # the writer has finished: collect, in order
                if written is not None and (error := written.exception()) is not None:
                    incoming.local_path.unlink(missing_ok=True)
                    reason = (
                        f"cannot write the staging file {incoming.local_path}: {_describe(error)}"
                    )
                    self._failed(incoming.name, reason, problems)
                    continue
                self._tracker.clear_report(incoming.name)
                files.append(incoming)
        return PollResult(files=files, problems=problems, next_ready=self._tracker.next_ready)

    def _failed(self, name: str, reason: str, problems: list[ChannelProblem]) -> None:
        """Un-claim a file whose download failed; it is watched again from scratch."""
        self._tracker.release(name)
        self._tracker.forget(name)
        reported = self._tracker.report_once(name, reason)
        if reported:
            problems.append(reported)

    def _incoming(
        self, listed: Listed, staged: Path | None, sha256: str = "", content: bytes | None = None
    ) -> IncomingFile:
        return IncomingFile(
            channel=self.key,
            name=listed.name,
            local_path=staged or self._staging / "not-downloaded",
            size=listed.size,
            mtime=listed.mtime,
            remote_path=self._remote(listed.name),
            sha256=sha256,
            content=content,
        )

    def _fetch(
        self, sftp: paramiko.SFTPClient, wanted: Sequence[Listed], problems: list[ChannelProblem]
    ) -> list[tuple[IncomingFile, Future[None] | None]]:
        """Download ``wanted`` in order; failures are reported in ``problems`` and un-claimed.

        Files below ``_PIPELINED_BELOW`` are fetched several at a time; the others one by
        one. Small files stay in memory while this poll holds less than ``_MAX_PENDING``
        bytes of them, the rest go to staging on a background thread (the disk write
        overlaps the next download: the future says how it went).
        """
        endpoint = self.settings.endpoint
        pipelined = [f for f in wanted if f.size < _PIPELINED_BELOW]
        fetched: dict[str, bytes | OSError] = {}
        if pipelined:
            try:
                answers = _fetch_pipelined(
                    sftp,
                    [(self._remote(f.name), f.size) for f in pipelined],
                    window=_PIPELINE_WINDOW,
                )
            except _REMOTE_FAILURES as exc:
                self._connections.connection(endpoint).drop()  # out of step: never reuse it
                first = self._remote(pipelined[0].name)
                msg = f"download of {first} from {endpoint} failed, will fetch again"
                self._failed(pipelined[0].name, str(_remote_error(msg, exc)), problems)
                for rest in wanted:
                    if rest is not pipelined[0]:
                        self._tracker.release(rest.name)
                return []
            fetched = {f.name: answer for f, answer in zip(pipelined, answers, strict=True)}
        staged: list[tuple[IncomingFile, Future[None] | None]] = []
        held = 0
        with _StagingWriter(self.settings.modes) as writer:
            for index, listed in enumerate(wanted):
                try:
                    answer = fetched.get(listed.name)
                    if isinstance(answer, OSError):
                        remote = self._remote(listed.name)
                        msg = f"download of {remote} from {endpoint} failed, will fetch again"
                        raise _remote_error(msg, answer)
                    download = self._download(sftp, listed, writer, data=answer, held=held)
                except ChannelError as exc:
                    self._failed(listed.name, str(exc), problems)
                    if not self._connections.connection(endpoint).alive:
                        for rest in wanted[index + 1 :]:
                            self._tracker.release(rest.name)
                        break
                    continue
                if download is not None:
                    staged.append(download)
                    if download[0].content is not None:
                        held += download[0].size
        return staged

    def _download(
        self,
        sftp: paramiko.SFTPClient,
        listed: Listed,
        writer: _StagingWriter,
        *,
        data: bytes | None,
        held: int,
    ) -> tuple[IncomingFile, Future[None] | None] | None:
        """Fetch one file (unless ``data`` already holds its bytes) with its sha256, check
        its size against the listing; ``None`` when the content was already processed.

        A small file is kept in memory while the poll holds fewer than ``_MAX_PENDING``
        bytes (``held``), else handed to ``writer``; a large one streams straight to disk.
        """
        remote = self._remote(listed.name)
        local = self._staging / f"{next(self._sequence):08d}-{PurePosixPath(listed.name).name}"
        digest = hashlib.sha256()
        size = 0
        try:
            if data is None:
                with sftp.open(remote, "rb") as src:
                    if listed.size < _CHUNK:
                        if listed.size > _PREFETCH_FROM:
                            src.prefetch(listed.size)
                        data = src.read(_CHUNK)
                    else:
                        src.prefetch(listed.size)
                        with os.fdopen(open_private(local, self.settings.modes), "wb") as dst:
                            while chunk := src.read(_CHUNK):
                                dst.write(chunk)
                                digest.update(chunk)
                                size += len(chunk)
                                if len(chunk) < _CHUNK:
                                    break  # a short read is the end of file: spare a round trip
        except _REMOTE_FAILURES as exc:
            local.unlink(missing_ok=True)
            if isinstance(exc, _CONNECTION_FAILURES):
                self._connections.connection(self.settings.endpoint).drop()
            msg = f"download of {remote} from {self.settings.endpoint} failed, will fetch again"
            raise _remote_error(msg, exc) from exc
        if data is not None:
            digest.update(data)
            size = len(data)
        if size != listed.size:
            local.unlink(missing_ok=True)
            msg = f"{remote} changed during download ({size} bytes read, {listed.size} listed); will fetch again once stable"
            raise ChannelError(msg)
        sha256 = digest.hexdigest()
        if self._seen.seen_hash(self.key, remote, sha256):
            # Same content as a file we processed and left: note its new size/mtime, skip it.
            self._seen.remember(self.key, remote, listed.size, listed.mtime, sha256)
            local.unlink(missing_ok=True)
            self._tracker.release(listed.name)
            return None
        if data is None:
            return self._incoming(listed, local, sha256), None
        if held + len(data) <= _MAX_PENDING:
            return self._incoming(listed, None, sha256, content=data), None
        return self._incoming(listed, local, sha256), writer.write(local, data)

    def complete(self, incoming: IncomingFile, disposition: Disposition) -> ChannelActionResult:
        """Apply the after-action remotely (error folder + report for failures).

        Never raises for I/O: a failed remote move/delete comes back with ``ok=False`` and
        the file is remembered so it is not fetched and processed a second time. A source
        that changed after it was read is left in place (``kept-changed``) and fetched again
        once ready.
        """
        s = self.settings
        remote = incoming.remote_path
        done = remote + s.readiness.suffix if s.readiness.mode == "done_file" else None
        action = "error-move" if not disposition.ok else s.after.action
        try:
            if action == "leave":
                return self._leave(incoming)
            with self._connections.session(s.endpoint) as sftp:
                changed = self._after.changed(sftp, incoming)
                if changed is not None:
                    return ChannelActionResult(ok=True, action=KEPT_CHANGED, detail=changed)
                return self._after.act(sftp, action, incoming, disposition, remote, done)
        except ChannelError as exc:
            self._remember(incoming)
            return ChannelActionResult(ok=False, action=action, detail=str(exc))
        except _REMOTE_FAILURES as exc:
            self._remember(incoming)
            detail = f"{action} of {remote} on {s.endpoint} failed: {_describe(exc)}"
            return ChannelActionResult(ok=False, action=action, detail=detail)
        finally:
            self.release(incoming)

    def _leave(self, incoming: IncomingFile) -> ChannelActionResult:
        """Leave the source, remembered as processed unless it changed after it was read.

        When the server cannot be asked, the source is remembered as it was read: a changed
        one then differs from that memory and is fetched again all the same.
        """
        try:
            with self._connections.session(self.settings.endpoint) as sftp:
                changed = self._after.changed(sftp, incoming)
        except (ChannelError, *_REMOTE_FAILURES):
            changed = None
        if changed is not None:
            return ChannelActionResult(ok=True, action=KEPT_CHANGED, detail=changed)
        self._remember(incoming)
        return ChannelActionResult(ok=True, action="left")

    def clear_error(self, name: str, target: str) -> ChannelActionResult:
        """Put a replayed file's error copy where a done file goes; remove its report."""
        return self._after.clear_error(name, target)

    def release(self, incoming: IncomingFile) -> None:
        """Fetch ``incoming`` again once it is ready again (its intake failed, or its
        outcome is committed and it is still, or again, on the server); its staged copy
        goes."""
        if incoming.local_path.parent == self._staging:
            incoming.local_path.unlink(missing_ok=True)
        self._tracker.release(incoming.name)
        self._tracker.forget(incoming.name)

    def _remember(self, incoming: IncomingFile) -> None:
        self._seen.remember(
            self.key, incoming.remote_path, incoming.size, incoming.mtime, incoming.sha256
        )

    notifies = False

    def wakeups(self, event: threading.Event) -> None:
        """SFTP has no change notifications: the pipeline's periodic poll is the only trigger."""

    def watching(self) -> bool:
        return False

    def close(self) -> None:
        """The connection belongs to ``SftpConnections``; drop staged leftovers only (once,
        and not while another channel of this process stages into the same folder)."""
        if not self._closed:
            self._closed = True
            _leave_staging(self._staging)

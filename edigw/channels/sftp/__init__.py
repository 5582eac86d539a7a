"""SFTP: poll partners' remote folders and deliver files to them (paramiko).

- ``SftpConnections`` holds one connection per endpoint, reused across polls and shared by
  the flows using that endpoint (a lock serialises them: paramiko sessions are not
  thread-safe). A broken connection is dropped and re-opened on next use; repeated
  failures back off (``Backoff``) so a down partner costs one quick refusal per poll, not a
  connect timeout each time.
- Host keys are checked strictly against the endpoint's ``known_hosts`` (``known_hosts.py``).
- ``SftpInboundChannel.poll`` lists, applies readiness, claims, and fetches each ready file
  (size checked against the listing, sha256 computed on the way): small files are kept in
  memory (the pipeline archives the bytes), the smallest fetched several at a time over the
  one connection; large ones stream to a staging file. ``complete`` applies the
  after-action remotely and reports failures in its result.
- ``SftpOutboundChannel.deliver`` uploads under a temp name and renames into place.

Every paramiko or socket exception is translated into ``ChannelError``/``HostKeyError``
here and never leaks further.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import posixpath
import secrets
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import paramiko

from edigw.channels.base import (
    KEPT_CHANGED,
    ChannelActionResult,
    ChannelProblem,
    Delivered,
    DeliveredIncompletely,
    Disposition,
    IncomingFile,
    Listed,
    PollResult,
    ReadinessTracker,
    SeenFiles,
    is_candidate,
    name_problem,
    numbered_name,
)
from edigw.channels.known_hosts import (
    fingerprint,
    pin_host_key,
    verify_host_key,
)
from edigw.channels.sftp.after_actions import SftpAfterActions
from edigw.channels.sftp.connection import (
    CONNECT_ATTEMPTS,
    SftpConnection,
    SftpConnections,
    _authenticate,
    connect,
    open_transport,
)
from edigw.channels.sftp.failures import (
    _CONNECTION_FAILURES,
    _REMOTE_FAILURES,
    _describe,
    _remote_error,
)
from edigw.channels.sftp.listing import scan
from edigw.channels.sftp.remote import _CHUNK, _exists, _fetch_pipelined, _join
from edigw.channels.sftp.settings import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_KEEPALIVE,
    DEFAULT_OPERATION_TIMEOUT,
    Backoff,
    SftpEndpointSettings,
    SftpInboundSettings,
    SftpOutboundSettings,
    SftpTimeouts,
    endpoint_settings,
)
from edigw.channels.sftp.staging import _leave_staging, _slug, _staged_names, _use_staging
from edigw.errors import ChannelError, HostKeyError
from edigw.filemodes import FileModes, open_private, write_private

__all__ = [
    "CONNECT_ATTEMPTS",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_KEEPALIVE",
    "DEFAULT_OPERATION_TIMEOUT",
    "Backoff",
    "CheckStep",
    "PresentedKey",
    "SftpConnection",
    "SftpConnections",
    "SftpEndpointSettings",
    "SftpInboundChannel",
    "SftpInboundSettings",
    "SftpOutboundChannel",
    "SftpOutboundSettings",
    "SftpTimeouts",
    "check_endpoint",
    "connect",
    "endpoint_settings",
    "open_transport",
    "presented_key",
    "server_host_key",
    "trust",
]

_MAX_PENDING = 64 << 20
_PREFETCH_FROM = 64 << 10
#: Files smaller than this are fetched with one read request (paramiko's and every server's
#: request size), several files in flight at once.
_PIPELINED_BELOW = paramiko.SFTPFile.MAX_REQUEST_SIZE
_PIPELINE_WINDOW = 16


def server_host_key(settings: SftpEndpointSettings) -> paramiko.PKey:
    """The host key the server presents (for ``edigw sftp trust``); nothing is authenticated."""
    transport = open_transport(settings)
    try:
        return transport.get_remote_server_key()
    finally:
        transport.close()


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


# --------------------------------------------------------------------------- inbound


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


# --------------------------------------------------------------------------- outbound


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
        rename = s.upload.if_exists == "rename"
        n = 0
        candidate = name
        with self._connections.session(s.endpoint) as sftp:
            while (same := self._same(sftp, _join(s.path, candidate), size, sha256)) is not None:
                if same:
                    return candidate
                if not rename:
                    return None
                n += 1
                candidate = numbered_name(name, n)
        return None

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


# --------------------------------------------------------------------------- check


@dataclass(frozen=True, slots=True)
class CheckStep:
    step: str
    ok: bool
    detail: str


def check_endpoint(
    settings: SftpEndpointSettings,
    *,
    folders: Sequence[str] = (),
    write_folders: Sequence[str] = (),
) -> list[CheckStep]:
    """Connect, check the host key, authenticate, list ``folders``, test writing in
    ``write_folders``; one step per line, stopping at the first step that makes the rest
    meaningless (connect, host key, authentication)."""
    steps: list[CheckStep] = []
    try:
        transport = open_transport(settings)
    except ChannelError as exc:
        return [CheckStep("connect", ok=False, detail=str(exc))]
    try:
        key = transport.get_remote_server_key()
        steps.append(
            CheckStep("connect", ok=True, detail=f"{settings.host}:{settings.port} answered")
        )
        try:
            verify_host_key(settings.known_hosts, settings.host, settings.port, key)
        except HostKeyError as exc:
            return [*steps, CheckStep("host key", ok=False, detail=str(exc))]
        steps.append(
            CheckStep("host key", ok=True, detail=f"{key.get_name()} {fingerprint(key)} pinned")
        )
        try:
            _authenticate(transport, settings)
            sftp = paramiko.SFTPClient.from_transport(transport)
        except ChannelError as exc:
            return [*steps, CheckStep("authenticate", ok=False, detail=str(exc))]
        except _REMOTE_FAILURES as exc:
            return [*steps, CheckStep("authenticate", ok=False, detail=_describe(exc))]
        if sftp is None:
            return [*steps, CheckStep("authenticate", ok=False, detail="no SFTP subsystem")]
        steps.append(CheckStep("authenticate", ok=True, detail=f"as {settings.username}"))
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(settings.timeouts.operation)
        for folder in folders:
            try:
                count = len(sftp.listdir_attr(folder))
                steps.append(CheckStep(f"list {folder}", ok=True, detail=f"{count} entries"))
            except _REMOTE_FAILURES as exc:
                steps.append(CheckStep(f"list {folder}", ok=False, detail=_describe(exc)))
        for folder in write_folders:
            probe = _join(folder, f".edigw-check-{secrets.token_hex(4)}.part")
            try:
                sftp.putfo(io.BytesIO(b"edigw write test\n"), probe, confirm=True)
                sftp.remove(probe)
                steps.append(
                    CheckStep(f"write {folder}", ok=True, detail="created and removed a test file")
                )
            except _REMOTE_FAILURES as exc:
                steps.append(CheckStep(f"write {folder}", ok=False, detail=_describe(exc)))
        return steps
    finally:
        transport.close()


# --------------------------------------------------------------------------- trust


@dataclass(frozen=True, slots=True)
class PresentedKey:
    """The host key a server presents and how it compares with the pinned one."""

    key: paramiko.PKey
    fingerprint: str
    status: Literal["pinned", "unknown", "changed"]
    detail: str = ""

    @property
    def description(self) -> str:
        return f"{self.key.get_name()} {self.fingerprint}"


def presented_key(settings: SftpEndpointSettings) -> PresentedKey:
    """Fetch the server's host key and compare it with ``settings.known_hosts``."""
    key = server_host_key(settings)
    shown = fingerprint(key)
    try:
        verify_host_key(settings.known_hosts, settings.host, settings.port, key)
    except HostKeyError as exc:
        status: Literal["unknown", "changed"] = "changed" if "CHANGED" in str(exc) else "unknown"
        return PresentedKey(key=key, fingerprint=shown, status=status, detail=str(exc))
    return PresentedKey(key=key, fingerprint=shown, status="pinned")


def trust(settings: SftpEndpointSettings, presented: PresentedKey) -> Path:
    """Pin ``presented`` in the endpoint's known_hosts file; returns the file."""
    pin_host_key(settings.known_hosts, settings.host, settings.port, presented.key)
    return settings.known_hosts

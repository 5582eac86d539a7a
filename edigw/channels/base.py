"""The channel interface: where inbound files come from and outbound files go to.

Two implementations sit behind it: local drop folders (``local.py``) and SFTP (the ``sftp`` package).
The pipeline drives an inbound channel in three steps::

    result = channel.poll(now=time.time())      # ready files, claimed once, oldest first, capped
    for incoming in result.files:               # local_path is readable: archive it first
        ... journal, map, send ...
        channel.complete(incoming, Disposition(ok=..., reason=..., show_id="F-12"))
        # complete() first checks that the source is still what was read (size, mtime, hash
        # if in doubt): one that changed is left in place (KEPT_CHANGED) and offered again
    for problem in result.problems:             # per-file trouble, journal it (never only log)
        ...

A whole-channel failure (folder missing, SFTP server down, host key refused) raises
``ChannelError`` from ``poll``; trouble with one file is a ``ChannelProblem`` in the result,
reported once per file and reason, so one bad file never hides the others.

Everything that decides *which* files are taken (names, globs, readiness, ordering) is a
pure function here, shared by both channels and tested without I/O.
"""

from __future__ import annotations

import fnmatch
import hashlib
import heapq
import threading
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

from edigw.errors import ChannelError
from edigw.filemodes import DEFAULT_FILE_MODE, FileModes
from edigw.problems import MAX_MESSAGE, bounded

#: Names skipped on every channel, whatever the flow's globs say (plus dotfiles).
ALWAYS_SKIPPED = ("*.tmp", "*.part")
DEFAULT_STABLE_INTERVAL = 2.0
DEFAULT_MIN_AGE = 10.0
DEFAULT_DONE_SUFFIX = ".ok"
DEFAULT_MAX_FILES_PER_POLL = 100
ERROR_REPORT_SUFFIX = ".error.txt"
#: Bytes of a file name most file systems take (NAME_MAX of ext4, XFS, btrfs; SFTP servers').
NAME_MAX = 255
#: ``complete``'s action for a source left in place because it changed after it was read.
KEPT_CHANGED = "kept-changed"
#: The channel action of a failed file's error copy put away after a successful replay.
ERROR_CLEARED = "error-cleared"
#: Characters of the reason in an error report: a few documents' error texts.
ERROR_REPORT_LIMIT = 4 * MAX_MESSAGE


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class Readiness:
    """When a file is complete enough to take.

    - ``stable``: size and mtime unchanged across consecutive looks spanning ``interval``
      seconds (measured with the poller's clock, so a copy that keeps the original mtime is
      still watched while it grows);
    - ``min_age``: the mtime is at least ``seconds`` old *and* size and mtime did not change
      since an earlier look (the clock alone is fooled by mtime-preserving copies);
    - ``done_file``: a file named ``NAME + suffix`` sits beside it.
    """

    mode: Literal["stable", "min_age", "done_file"] = "stable"
    interval: float = DEFAULT_STABLE_INTERVAL
    seconds: float = DEFAULT_MIN_AGE
    suffix: str = DEFAULT_DONE_SUFFIX


@dataclass(frozen=True, slots=True)
class AfterAction:
    """What happens to a source once its outcome is committed: move to ``to``, delete, leave."""

    action: Literal["move", "delete", "leave"] = "move"
    to: str = "done"


@dataclass(frozen=True, slots=True)
class UploadSettings:
    """How an outbound file is put in place: temp name, then rename; policy on an existing name.

    ``if_exists``: ``fail`` (raise), ``replace`` (atomically, after the upload completed) or
    ``rename`` (``NAME.1.ext``, ``NAME.2.ext``, ...). ``done_file`` is a suffix (e.g. ``.ok``):
    an empty ``NAME.ok`` is written after the file is in place.
    """

    temp_prefix: str = "."
    temp_suffix: str = ".part"
    if_exists: Literal["fail", "replace", "rename"] = "fail"
    done_file: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundOptions:
    """What every inbound channel applies the same way, wherever its folder is: which names
    it takes, when a file is ready, what happens to it afterwards, how many per poll, and
    the mode of the files it writes for itself (staged downloads, local error reports)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    readiness: Readiness = field(default_factory=Readiness)
    after: AfterAction = field(default_factory=AfterAction)
    error_folder: str = "error"
    max_size: int | None = None
    max_files_per_poll: int = DEFAULT_MAX_FILES_PER_POLL
    recursive: bool = False
    max_depth: int = 1
    file_mode: int = DEFAULT_FILE_MODE

    @property
    def modes(self) -> FileModes:
        return FileModes(self.file_mode)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class IncomingFile:
    """A claimed, ready inbound file.

    ``name`` is the partner's name relative to the channel root (``sub/x.csv`` when
    recursing); ``local_path`` is the source itself (local) or the staged download (SFTP);
    ``sha256`` is filled when the channel computed it anyway (SFTP downloads), else ``""``.
    Before ``complete``, the pipeline sets ``size`` and ``sha256`` to what it archived, so
    that the channel can tell whether the source is still what was read.
    ``content`` holds the bytes when the channel kept a small download in memory: then
    ``local_path`` is never written, and the pipeline archives ``content`` instead.
    """

    channel: str
    name: str
    local_path: Path
    size: int
    mtime: float
    remote_path: str
    sha256: str = ""
    content: bytes | None = field(default=None, repr=False)

    def read_bytes(self) -> bytes:
        """The file's bytes, from memory or from ``local_path``."""
        return self.content if self.content is not None else self.local_path.read_bytes()


@dataclass(frozen=True, slots=True)
class Disposition:
    """How the pipeline ended with a file: ok, or failed with a reason and the show id."""

    ok: bool
    reason: str = ""
    show_id: str = ""


@dataclass(frozen=True, slots=True)
class ChannelProblem:
    """Trouble with one file, for the journal and ``edigw status``.

    When ``incoming`` is set the file is claimed but must not be processed (e.g. larger
    than ``max_size``): journal it as failed, then call ``complete(incoming,
    Disposition(ok=False, ...))`` so it goes to the error folder with its report.
    """

    name: str
    reason: str
    incoming: IncomingFile | None = None


@dataclass(frozen=True, slots=True)
class PollResult:
    files: list[IncomingFile] = field(default_factory=list)
    problems: list[ChannelProblem] = field(default_factory=list)
    #: the earliest time (``now``'s clock) a file seen but not ready yet may be ready: a look
    #: then takes it, where the next poll interval could come much later (``None``: no such
    #: file, or a readiness no look can foresee, ``done_file``)
    next_ready: float | None = None


@dataclass(frozen=True, slots=True)
class ChannelActionResult:
    """What ``complete`` did: ``action`` is moved/deleted/left/error-moved, or kept-changed
    (the source changed after it was read: left in place, ``detail`` says how); ``ok`` is
    False on failure."""

    ok: bool
    action: str
    detail: str = ""
    target: str = ""


@dataclass(frozen=True, slots=True)
class Delivered:
    """Where an outbound file landed (``name`` differs from the asked one after ``rename``)."""

    name: str
    path: str
    size: int
    done_file: str | None = None


class DeliveredIncompletely(ChannelError):
    """The file is in place under its final name, but a step after that failed (its done
    file, tidying the temp name): it *is* delivered, and sending it again would deliver its
    records twice. Never retried as a delivery; ``delivered`` says where it landed.
    ``done_file_owed``: its done file is not written (``write_done_file`` writes it later)."""

    def __init__(self, message: str, delivered: Delivered, *, done_file_owed: bool = False) -> None:
        super().__init__(message, retriable=False)
        self.delivered = delivered
        self.done_file_owed = done_file_owed


# --------------------------------------------------------------------------- protocols


class SeenFiles(Protocol):
    """Memory of files processed and left in place, surviving restarts (the journal).

    ``seen`` answers from the listing alone (no download); ``seen_hash`` after a download
    whose size/mtime changed, so a touched-but-identical file is not processed again while
    a new content under the same name is.
    """

    def seen(self, channel: str, path: str, size: int, mtime: float) -> bool: ...

    def seen_among(self, channel: str, versions: Mapping[str, tuple[int, float]]) -> set[str]:
        """The paths of ``versions`` (path -> size, mtime) that ``seen`` is true for, asked
        at once (a listing costs a few queries, not one per file)."""
        ...

    def seen_hash(self, channel: str, path: str, sha256: str) -> bool: ...

    def remember(self, channel: str, path: str, size: int, mtime: float, sha256: str) -> None: ...


class InboundChannel(Protocol):
    key: str
    #: Whether the channel can tell of new files (``wakeups``); if not, only polls find them.
    notifies: bool

    def poll(self, *, now: float) -> PollResult: ...

    def complete(self, incoming: IncomingFile, disposition: Disposition) -> ChannelActionResult: ...

    def release(self, incoming: IncomingFile) -> None:
        """Give back a file that ``poll`` handed out but the pipeline could not take in
        (the archive or the journal failed): a later poll looks at it again, from scratch."""
        ...

    def clear_error(self, name: str, target: str) -> ChannelActionResult:
        """A file that failed is done since (a replay): its copy at ``target`` in the error
        folder goes where a done file goes (moved to the done folder, or deleted when the
        flow deletes or leaves its files), and its stale error report is removed. Never
        raises for I/O; ``action`` is ``error-cleared``."""
        ...

    def wakeups(self, event: threading.Event) -> None:
        """Set ``event`` when new files may be there (no-op for channels that only poll).

        Called again when ``watching()`` turns false, it watches anew; raises
        ``ChannelError`` when the folder cannot be watched (polls still find the files)."""
        ...

    def watching(self) -> bool:
        """Whether the wake-ups asked for still come (false once the watcher died)."""
        ...

    def close(self) -> None: ...


class OutboundChannel(Protocol):
    key: str

    def deliver(self, local_file: Path, name: str) -> Delivered: ...

    def holds(self, name: str, *, size: int, sha256: str) -> bool:
        """Whether ``name`` is at the destination with exactly these bytes."""
        ...

    def write_done_file(self, name: str) -> str | None:
        """Write the done file of ``name``, delivered earlier without it; its path, or
        ``None`` when there is none to write (no done files configured, or ``name`` is gone:
        taken by the partner some other way, or removed)."""
        ...

    def close(self) -> None: ...


class MemorySeenFiles:
    """In-memory ``SeenFiles`` with the journal's semantics (the latest version per path wins):
    for unit tests, and as a fallback that lasts one process."""

    def __init__(self) -> None:
        self._files: dict[tuple[str, str], tuple[int, float, str]] = {}
        self._lock = threading.Lock()

    def seen(self, channel: str, path: str, size: int, mtime: float) -> bool:
        with self._lock:
            known = self._files.get((channel, path))
        return known is not None and known[:2] == (size, float(mtime))

    def seen_among(self, channel: str, versions: Mapping[str, tuple[int, float]]) -> set[str]:
        return {
            path
            for path, (size, mtime) in versions.items()
            if self.seen(channel, path, size, mtime)
        }

    def seen_hash(self, channel: str, path: str, sha256: str) -> bool:
        with self._lock:
            known = self._files.get((channel, path))
        return known is not None and bool(sha256) and known[2] == sha256

    def remember(self, channel: str, path: str, size: int, mtime: float, sha256: str) -> None:
        with self._lock:
            self._files[(channel, path)] = (size, float(mtime), sha256)


class RemoteFileJournal(Protocol):
    """The part of ``edigw.journal.store.Journal`` that remembers remote files."""

    def remember_remote_file(
        self,
        *,
        channel: str,
        path: str,
        size: int,
        mtime: float,
        sha256: str,
        file_id: int | None,
        now: datetime,
    ) -> None: ...

    def remote_file_seen(self, *, channel: str, path: str, size: int, mtime: float) -> bool: ...

    def remote_files_seen(
        self, *, channel: str, versions: Mapping[str, tuple[int, float]]
    ) -> set[str]: ...

    def remote_file_seen_with_hash(self, *, channel: str, path: str, sha256: str) -> bool: ...


class JournalSeenFiles:
    """``SeenFiles`` backed by the exchange journal, so the memory survives restarts."""

    def __init__(
        self, journal: RemoteFileJournal, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._journal = journal
        self._clock = clock or (lambda: datetime.now(UTC))

    def seen(self, channel: str, path: str, size: int, mtime: float) -> bool:
        return self._journal.remote_file_seen(channel=channel, path=path, size=size, mtime=mtime)

    def seen_among(self, channel: str, versions: Mapping[str, tuple[int, float]]) -> set[str]:
        return self._journal.remote_files_seen(channel=channel, versions=versions)

    def seen_hash(self, channel: str, path: str, sha256: str) -> bool:
        return bool(sha256) and self._journal.remote_file_seen_with_hash(
            channel=channel, path=path, sha256=sha256
        )

    def remember(self, channel: str, path: str, size: int, mtime: float, sha256: str) -> None:
        self._journal.remember_remote_file(
            channel=channel,
            path=path,
            size=size,
            mtime=mtime,
            sha256=sha256,
            file_id=None,
            now=self._clock(),
        )


# --------------------------------------------------------------------------- pure logic


@dataclass(frozen=True, slots=True)
class Listed:
    """One regular file as a listing shows it (``name`` relative, ``/``-separated)."""

    name: str
    size: int
    mtime: float


@dataclass(frozen=True, slots=True)
class Observation:
    """What we saw of a file: its size/mtime and since when (poller clock) they hold."""

    size: int
    mtime: float
    since: float
    looks: int = 1


def error_report_name(name: str) -> str:
    """The name of ``name``'s error report: ``NAME.error.txt``, unless that is longer than a
    file name may be; then ``NAME`` is cut and a digest of it keeps two such reports apart
    (a partner's 250-byte name must not lose its report to ``File name too long``)."""
    report = name + ERROR_REPORT_SUFFIX
    if len(report.encode("utf-8")) <= NAME_MAX:
        return report
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    tail = f"~{digest}{ERROR_REPORT_SUFFIX}"
    room = NAME_MAX - len(tail.encode())
    head = name.encode("utf-8", "surrogateescape")[:room].decode("utf-8", "ignore")
    return head + tail


def name_problem(name: str) -> str | None:
    """Why a relative name must not be used (escapes the folder, odd bytes), else ``None``."""
    if not name:
        return "empty name"
    if "\x00" in name or any(unicodedata.category(ch) == "Cc" for ch in name):
        return f"name {name!r} contains control characters"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"name {name.encode('utf-8', 'surrogateescape')!r} is not valid UTF-8"
    if name.startswith("/") or "\\" in name:
        return f"name {name!r} is not a plain relative name"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return f"name {name!r} would escape the channel folder"
    return None


def is_candidate(
    name: str,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    done_suffix: str | None = None,
) -> bool:
    """Whether a file is a candidate for the flow (globs match the base name, or the
    relative path when the pattern holds a ``/``); temp, part, dot and done files never are."""
    base = PurePosixPath(name).name
    if any(part.startswith(".") for part in name.split("/")):
        return False
    if any(fnmatch.fnmatchcase(base, pat) for pat in ALWAYS_SKIPPED):
        return False
    if base.endswith(ERROR_REPORT_SUFFIX):
        return False
    if done_suffix and base.endswith(done_suffix):
        return False

    def matches(pat: str) -> bool:
        return fnmatch.fnmatchcase(name if "/" in pat else base, pat)

    if include and not any(matches(p) for p in include):
        return False
    return not any(matches(p) for p in exclude)


def observe(previous: Observation | None, listed: Listed, now: float) -> Observation:
    """The new observation of ``listed``: ``since`` restarts whenever size or mtime change."""
    if previous is None or (previous.size, previous.mtime) != (listed.size, listed.mtime):
        return Observation(size=listed.size, mtime=listed.mtime, since=now)
    if previous.looks >= 2:  # all readiness asks of the looks: kept as is, nothing allocated
        return previous
    return replace(previous, looks=previous.looks + 1)


def is_ready(
    readiness: Readiness,
    observation: Observation,
    *,
    now: float,
    done_present: bool,
) -> bool:
    """Whether a file observed as ``observation`` (already updated for this look) is ready."""
    if readiness.mode == "done_file":
        return done_present
    unchanged_looks = observation.looks >= 2
    if readiness.mode == "stable":
        return unchanged_looks and now - observation.since >= readiness.interval
    return unchanged_looks and now - observation.mtime >= readiness.seconds


def ready_at(readiness: Readiness, observation: Observation, *, now: float) -> float | None:
    """The earliest time a file observed as ``observation`` but not ready may be ready: when
    the look that sees it unchanged long enough can be made (``None`` for ``done_file``,
    which waits for a file no look can foresee)."""
    if readiness.mode == "done_file":
        return None
    if readiness.mode == "stable":
        return max(now, observation.since + readiness.interval)
    return max(now, observation.mtime + readiness.seconds)


def oldest_first(files: Iterable[Listed], cap: int) -> list[Listed]:
    """Oldest first (mtime, then name), capped after sorting so old files are never starved
    (the ``cap`` oldest are picked without sorting a whole backlog)."""
    return heapq.nsmallest(max(cap, 0), files, key=lambda f: (f.mtime, f.name))


def numbered_name(name: str, n: int) -> str:
    """``orders.csv`` → ``orders.1.csv``: a free name beside an existing one."""
    path = PurePosixPath(name)
    suffix = path.suffix
    stem = path.name[: -len(suffix)] if suffix else path.name
    return str(path.with_name(f"{stem}.{n}{suffix}"))


def delivered_name(name: str, *, rename: bool, holds: Callable[[str], bool | None]) -> str | None:
    """The name under which a delivery asked as ``name`` was made: ``name`` itself or, when
    the channel renames (``if_exists: rename``), the numbered names it gives, in their order
    up to the first free one. ``holds(candidate)``: whether that file holds the delivered
    bytes, ``None`` when there is no such file."""
    n = 0
    candidate = name
    while (same := holds(candidate)) is not None:
        if same:
            return candidate
        if not rename:
            return None
        n += 1
        candidate = numbered_name(name, n)
    return None


def change_since_read(
    incoming: IncomingFile, *, size: int, mtime: float, digest: Callable[[], str]
) -> str | None:
    """How the source (now ``size`` bytes, modified at ``mtime``) differs from what was read,
    or ``None`` when it is still those bytes.

    ``incoming`` holds what was read: its size and sha256 (the archived copy) and the mtime
    the listing showed. Another size settles it; the same size with another mtime (a touch,
    or a rewrite) is settled by the hash (``digest`` reads the source); the same size and
    mtime are the same bytes (no hash: this check is on every file's path).
    """
    if size != incoming.size:
        return f"it changed after it was read ({incoming.size} bytes read, {size} bytes now)"
    if mtime == incoming.mtime:
        return None
    if incoming.sha256 and digest() == incoming.sha256:
        return None
    return f"it changed after it was read (same size, {incoming.size} bytes, other content)"


def error_report(name: str, disposition: Disposition, *, when: str) -> str:
    """The ``NAME.error.txt`` text a partner or operator reads beside a failed file.

    The reason may list many failed documents: it is cut at ``ERROR_REPORT_LIMIT``
    characters ("… and N more lines"), the journal keeping everything (``edigw show``).
    """
    lines = [
        f"File: {name}",
        f"Failed at: {when}",
        f"Reason: {bounded(disposition.reason or 'unknown', limit=ERROR_REPORT_LIMIT)}",
    ]
    if disposition.show_id:
        lines.append(f"Reference: {disposition.show_id} (edigw show {disposition.show_id} --all)")
    return "\n".join(lines) + "\n"


class ReadinessTracker:
    """Per-channel memory across polls: observations, claims, problems already reported.

    Only ``take`` claims files, under a lock, so overlapping wake-ups and rescans can never
    hand the same file out twice; ``release`` makes it available again after ``complete``
    (or after a failed download).
    """

    def __init__(self, readiness: Readiness, *, max_files: int) -> None:
        self.readiness = readiness
        self.max_files = max_files
        self._observations: dict[str, Observation] = {}
        self._claimed: set[str] = set()
        self._reported: dict[str, str] = {}
        self.lock = threading.RLock()
        #: after a ``take``: the earliest time a file it saw but left may be ready
        self.next_ready: float | None = None

    def take(
        self, listing: Sequence[Listed], *, now: float, all_names: Collection[str]
    ) -> list[Listed]:
        """Update observations from one complete listing of candidates; claim and return
        the ready ones. ``all_names`` is every name the scan saw (done files, problem files)."""
        with self.lock:
            present = set(all_names)
            for gone in set(self._observations) - present:
                del self._observations[gone]
            for gone in set(self._reported) - present:
                del self._reported[gone]
            suffix = self.readiness.suffix
            ready: list[Listed] = []
            soonest: float | None = None
            for listed in listing:
                obs = observe(self._observations.get(listed.name), listed, now)
                self._observations[listed.name] = obs
                if listed.name in self._claimed:
                    continue
                done = self.readiness.mode == "done_file" and (listed.name + suffix) in present
                if is_ready(self.readiness, obs, now=now, done_present=done):
                    ready.append(listed)
                    continue
                at = ready_at(self.readiness, obs, now=now)
                if at is not None and (soonest is None or at < soonest):
                    soonest = at
            self.next_ready = soonest
            chosen = oldest_first(ready, self.max_files)
            self._claimed.update(f.name for f in chosen)
            return chosen

    def forget(self, name: str) -> None:
        """Drop what we saw of ``name`` (it changed under us: watch it again from scratch)."""
        with self.lock:
            self._observations.pop(name, None)

    def release(self, name: str) -> None:
        with self.lock:
            self._claimed.discard(name)

    def is_claimed(self, name: str) -> bool:
        with self.lock:
            return name in self._claimed

    def claimed(self) -> frozenset[str]:
        """The names handed out and not released yet (files in progress), as of now."""
        with self.lock:
            return frozenset(self._claimed)

    def report_once(self, name: str, reason: str) -> ChannelProblem | None:
        """A problem to report, or ``None`` when this exact one was already reported."""
        with self.lock:
            if self._reported.get(name) == reason:
                return None
            self._reported[name] = reason
            return ChannelProblem(name=name, reason=reason)

    def clear_report(self, name: str) -> None:
        with self.lock:
            self._reported.pop(name, None)

"""Local drop folders: inbound (watchdog wake-ups plus periodic rescans) and outbound.

Inbound files are handed to the pipeline in place (``IncomingFile.local_path`` is the
source); the pipeline archives them before calling ``complete``, which moves, deletes or
leaves the source, or moves a failed one to the error folder with ``NAME.error.txt``.
Symbolic links are followed only when they stay inside the channel folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import stat
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from edigw.channels.base import (
    ERROR_CLEARED,
    KEPT_CHANGED,
    ChannelActionResult,
    ChannelProblem,
    Delivered,
    DeliveredIncompletely,
    Disposition,
    InboundOptions,
    IncomingFile,
    Listed,
    MemorySeenFiles,
    PollResult,
    ReadinessTracker,
    SeenFiles,
    UploadSettings,
    change_since_read,
    delivered_name,
    error_report,
    error_report_name,
    is_candidate,
    name_problem,
    numbered_name,
)
from edigw.channels.seen_memory import SeenAnswers
from edigw.errors import ChannelError
from edigw.filemodes import write_private

log = logging.getLogger(__name__)

_HASH_CHUNK = 1 << 20
#: Names whose checks (usable? a candidate?) are remembered between polls.
NAME_CACHE = 1 << 16


@dataclass(frozen=True, slots=True)
class LocalInboundSettings(InboundOptions):
    """A local inbound flow's channel options (mirrors ``edigw.yaml``; paths absolute)."""

    path: Path


@dataclass(frozen=True, slots=True)
class LocalOutboundSettings:
    path: Path
    upload: UploadSettings = field(default_factory=UploadSettings)


def _utc_now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _free_path(target: Path) -> Path:
    """``target`` itself, or ``NAME.n.ext`` beside it when taken."""
    n = 0
    candidate = target
    while os.path.lexists(candidate):  # a name taken, by a file or by any link (one lstat)
        n += 1
        candidate = target.with_name(numbered_name(target.name, n))
    return candidate


#: What can mean a new file to look at. Not opens, reads, deletions nor each write of a
#: file being written: the gateway's own reads and moves would wake the poller for nothing.
ARRIVAL_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileClosedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirMovedEvent,
]


class _WakeHandler(FileSystemEventHandler):
    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._event.set()


class LocalInboundChannel:
    """One inbound flow's drop folder. Thread-safe: ``poll`` claims each file once."""

    def __init__(self, settings: LocalInboundSettings, *, seen: SeenFiles | None = None) -> None:
        self.settings = settings
        self.root = settings.path.resolve()
        self.key = f"local:{self.root}"
        self._seen: SeenFiles = seen if seen is not None else MemorySeenFiles()
        self._answers = SeenAnswers(self._seen, self.key)
        done_suffix = settings.readiness.suffix if settings.readiness.mode == "done_file" else None
        # pure functions of a name, asked of every file not in progress at every poll
        self._is_candidate = functools.lru_cache(maxsize=NAME_CACHE)(
            functools.partial(
                is_candidate,
                include=settings.include,
                exclude=settings.exclude,
                done_suffix=done_suffix,
            )
        )
        self._name_problem = functools.lru_cache(maxsize=NAME_CACHE)(name_problem)
        self._tracker = ReadinessTracker(settings.readiness, max_files=settings.max_files_per_poll)
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._skip_dirs = {
            p
            for p in (self._under_root(settings.after.to), self._under_root(settings.error_folder))
            if p is not None
        }

    # ------------------------------------------------------------------ paths

    def _folder(self, relative: str) -> Path:
        folder = Path(relative)
        return folder if folder.is_absolute() else self.root / folder

    def _under_root(self, relative: str) -> Path | None:
        folder = self._folder(relative).resolve()
        return folder if folder.is_relative_to(self.root) else None

    # ------------------------------------------------------------------ scanning

    def _scan(
        self, in_progress: Collection[str]
    ) -> tuple[list[Listed], set[str], list[tuple[str, str]]]:
        """Every regular file (relative name, size, mtime) but those ``in_progress``, every
        name seen, and problems.

        A file in progress (handed out, not given back yet) is only named: not examined nor
        even statted, its source is checked when it is completed. So a scan costs the folder's
        listing (in C) plus O(files not in progress) in Python, not O(folder) of each.
        """
        if not self.root.is_dir():
            msg = f"inbound folder {self.root} does not exist or is not a folder"
            raise ChannelError(msg)
        found: list[Listed] = []
        names: set[str] = set()
        problems: list[tuple[str, str]] = []
        depth_limit = self.settings.max_depth if self.settings.recursive else 1
        stack: list[tuple[str, str, int]] = [(str(self.root), "", 1)]
        while stack:
            folder, prefix, depth = stack.pop()
            try:
                entries = os.listdir(folder)
            except OSError as exc:
                problems.append((prefix or ".", f"cannot list folder: {exc.strerror}"))
                continue
            here = {prefix + entry for entry in entries} if prefix else set(entries)
            names |= here
            for name in sorted(here.difference(in_progress)):
                base = name[len(prefix) :]
                if base.startswith("."):
                    continue
                bad = self._name_problem(name)
                if bad:
                    problems.append((name, bad))
                    continue
                full = os.path.join(folder, base)
                try:
                    st = os.lstat(full)
                    if stat.S_ISDIR(st.st_mode):
                        if depth < depth_limit and Path(full).resolve() not in self._skip_dirs:
                            stack.append((full, name + "/", depth + 1))
                        continue
                    if stat.S_ISLNK(st.st_mode):
                        if not Path(full).resolve().is_relative_to(self.root):
                            problems.append(
                                (name, "symbolic link points outside the channel folder")
                            )
                            continue
                        st = os.stat(full)
                except FileNotFoundError:
                    # Gone since the listing (the gateway itself moves finished files away):
                    # nothing to report. Still there, it is a link to nothing.
                    if os.path.lexists(full):
                        problems.append((name, "cannot read: vanished or dangling link"))
                    continue
                except OSError as exc:
                    problems.append((name, f"cannot read: {exc.strerror}"))
                    continue
                if not stat.S_ISREG(st.st_mode):
                    if not stat.S_ISDIR(st.st_mode):
                        problems.append((name, "not a regular file"))
                    continue
                found.append(Listed(name=name, size=st.st_size, mtime=st.st_mtime))
        return found, names, problems

    def poll(self, *, now: float) -> PollResult:
        """Ready files, claimed, oldest first, at most ``max_files_per_poll``; per-file
        problems reported once. Raises ``ChannelError`` when the folder itself is missing."""
        listing, names, scan_problems = self._scan(self._tracker.claimed())
        s = self.settings
        candidates = self._answers.unseen(
            [listed for listed in listing if self._is_candidate(listed.name)], present=names
        )
        problems: list[ChannelProblem] = []
        for name, reason in scan_problems:
            if self._is_candidate(name):
                reported = self._tracker.report_once(name, reason)
                if reported:
                    problems.append(reported)
        chosen = self._tracker.take(candidates, now=now, all_names=names)
        chosen, processed = self._answers.confirm(chosen)
        for listed in processed:  # remembered since it was first asked about (another node)
            self._tracker.release(listed.name)
        files: list[IncomingFile] = []
        for listed in chosen:
            path = self.root / listed.name
            incoming = IncomingFile(
                channel=self.key,
                name=listed.name,
                local_path=path,
                size=listed.size,
                mtime=listed.mtime,
                remote_path=str(path),
            )
            try:  # readable by the gateway? (a bare open and close: two system calls)
                os.close(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
            except FileNotFoundError:
                self._tracker.release(listed.name)  # gone since the listing: not ours yet
                continue
            except OSError as exc:
                self._tracker.release(listed.name)
                reported = self._tracker.report_once(listed.name, f"cannot read: {exc.strerror}")
                if reported:
                    problems.append(reported)
                continue
            if s.max_size is not None and listed.size > s.max_size:
                reason = f"file is {listed.size} bytes, larger than the limit of {s.max_size}"
                problems.append(ChannelProblem(listed.name, reason, incoming=incoming))
                continue
            self._tracker.clear_report(listed.name)
            files.append(incoming)
        return PollResult(files=files, problems=problems, next_ready=self._tracker.next_ready)

    # ------------------------------------------------------------------ after-actions

    def _move(self, source: Path, folder: str, name: str) -> Path:
        """Move ``source`` into ``folder`` under a free name; the folder is made when the
        move finds it missing (not looked for before each move: two system calls a file)."""
        target = _free_path(self._folder(folder) / name)
        try:
            os.replace(source, target)
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        return target

    def complete(self, incoming: IncomingFile, disposition: Disposition) -> ChannelActionResult:
        """Apply the after-action (or the error folder + report); never raises for I/O.

        A source that changed after it was read (a writer that paused longer than the
        readiness interval, then wrote on) is left in place and offered again once ready:
        moving it would carry the rest of its content away unread.
        """
        s = self.settings
        source = self.root / incoming.name
        done = (
            source.with_name(source.name + s.readiness.suffix)
            if s.readiness.mode == "done_file"
            else None
        )
        try:
            changed = self._changed(source, incoming)
            if changed is not None:
                return ChannelActionResult(ok=True, action=KEPT_CHANGED, detail=changed)
            if not disposition.ok:
                target = self._move(source, s.error_folder, incoming.name)
                report = target.with_name(error_report_name(target.name))
                text = error_report(incoming.name, disposition, when=_utc_now_text())
                write_private(report, text.encode("utf-8"), s.modes)
                if done is not None and done.exists():
                    self._move(done, s.error_folder, incoming.name + s.readiness.suffix)
                return ChannelActionResult(ok=True, action="error-moved", target=str(target))
            if s.after.action == "move":
                target = self._move(source, s.after.to, incoming.name)
                if done is not None and done.exists():
                    self._move(done, s.after.to, incoming.name + s.readiness.suffix)
                return ChannelActionResult(ok=True, action="moved", target=str(target))
            if s.after.action == "delete":
                source.unlink()
                if done is not None:
                    done.unlink(missing_ok=True)
                return ChannelActionResult(ok=True, action="deleted")
            digest = incoming.sha256 or sha256_file(source)
            self._remember(incoming.name, incoming.size, incoming.mtime, digest)
            return ChannelActionResult(ok=True, action="left")
        except OSError as exc:
            action = "error-move" if not disposition.ok else s.after.action
            detail = f"{action} of {source} failed: {exc.strerror or exc}"
            self._remember_if_still_there(source, incoming)
            return ChannelActionResult(ok=False, action=action, detail=detail)
        finally:
            self.release(incoming)

    @staticmethod
    def _changed(source: Path, incoming: IncomingFile) -> str | None:
        """How ``source`` differs from what was read (``None``: the same, or gone: the
        after-action then reports what it finds)."""
        try:
            st = source.stat()
        except FileNotFoundError:
            return None
        return change_since_read(
            incoming, size=st.st_size, mtime=st.st_mtime, digest=lambda: sha256_file(source)
        )

    def clear_error(self, name: str, target: str) -> ChannelActionResult:
        """Put a replayed file's error copy where a done file goes; remove its report."""
        s = self.settings
        copy = Path(target)
        report = copy.with_name(error_report_name(copy.name))
        marker = (
            copy.with_name(copy.name + s.readiness.suffix)
            if s.readiness.mode == "done_file"
            else None
        )
        error_folder = self._folder(s.error_folder).resolve()
        if not copy.parent.resolve().is_relative_to(error_folder):
            detail = f"{copy} is not in the flow's error folder {error_folder}; left as it is"
            return ChannelActionResult(ok=False, action=ERROR_CLEARED, detail=detail)
        try:
            moved = ""
            if copy.exists():
                if s.after.action == "move":
                    moved = str(self._move(copy, s.after.to, name))
                    if marker is not None and marker.exists():
                        self._move(marker, s.after.to, name + s.readiness.suffix)
                else:
                    copy.unlink()
            if marker is not None:
                marker.unlink(missing_ok=True)
            report.unlink(missing_ok=True)
        except OSError as exc:
            detail = f"clearing {copy} from the error folder failed: {exc.strerror or exc}"
            return ChannelActionResult(ok=False, action=ERROR_CLEARED, detail=detail)
        return ChannelActionResult(ok=True, action=ERROR_CLEARED, target=moved)

    def release(self, incoming: IncomingFile) -> None:
        """Hand ``incoming`` out again once it is ready again (its intake failed, or its
        outcome is committed and it is still, or again, in the folder)."""
        self._tracker.release(incoming.name)
        self._tracker.forget(incoming.name)

    def _remember_if_still_there(self, source: Path, incoming: IncomingFile) -> None:
        """A source the after-action could not move stays: never hand it out a second time."""
        try:
            st = source.stat()
            digest = incoming.sha256 or sha256_file(source)
        except OSError:
            return
        self._remember(incoming.name, st.st_size, st.st_mtime, digest)

    def _remember(self, name: str, size: int, mtime: float, digest: str) -> None:
        """Remember a file left in place as processed: in the journal, and for the polls."""
        self._seen.remember(self.key, name, size, mtime, digest)
        self._answers.remembered(name, size, mtime)

    # ------------------------------------------------------------------ wake-ups

    notifies = True

    def wakeups(self, event: threading.Event) -> None:
        """Set ``event`` on any change in the folder (the periodic rescan still runs:
        events are lost on network shares and while the gateway is down).

        A watcher that died (the folder was removed or replaced) is replaced; a folder that
        does not exist is not watched until it does (``poll`` reports it missing)."""
        if self.watching():
            return
        self.close()
        if not self.root.is_dir():
            return
        observer = Observer()
        try:
            observer.schedule(
                _WakeHandler(event),
                str(self.root),
                recursive=self.settings.recursive,
                event_filter=ARRIVAL_EVENTS,
            )
            observer.daemon = True
            observer.start()
        except OSError as exc:  # e.g. the system's inotify watch limit is reached
            msg = f"cannot watch {self.root} for new files: {exc.strerror or exc}"
            raise ChannelError(msg) from exc
        self._observer = observer

    def watching(self) -> bool:
        """Whether the folder watcher and its emitter thread still run."""
        observer = self._observer
        if observer is None or not observer.is_alive():
            return False
        return bool(observer.emitters) and all(e.is_alive() for e in observer.emitters)

    def close(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None


def _discard(temp: Path) -> None:
    """Remove a half-written temp file; a failure here must not hide the error being reported."""
    with contextlib.suppress(OSError):
        temp.unlink(missing_ok=True)


class LocalOutboundChannel:
    """Delivers into a local folder: temp name in the same folder, fsync, then rename."""

    def __init__(self, settings: LocalOutboundSettings) -> None:
        self.settings = settings
        self.root = settings.path.resolve()
        self.key = f"local:{self.root}"

    def deliver(self, local_file: Path, name: str) -> Delivered:
        bad = name_problem(name)
        if bad:
            raise ChannelError(bad, retriable=False)
        up = self.settings.upload
        final = self.root / name
        temp = final.with_name(f"{up.temp_prefix}{final.name}{up.temp_suffix}")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. the folder's path is a file
            msg = f"cannot deliver {name}: {final.parent} is not a usable folder: {exc.strerror or exc}"
            raise ChannelError(msg, retriable=False) from exc
        try:
            if up.if_exists == "rename":
                final = _free_path(final)
            elif up.if_exists == "fail" and final.exists():
                msg = f"{final} already exists (if_exists: fail)"
                raise ChannelError(msg, retriable=False)
            size = 0
            placed = None
            with local_file.open("rb") as src, temp.open("wb") as dst:
                while chunk := src.read(_HASH_CHUNK):
                    dst.write(chunk)
                    size += len(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            if up.if_exists == "replace":
                os.replace(temp, final)
            else:
                os.link(temp, final)  # refuses to overwrite a file that appeared meanwhile
            placed = Delivered(name=final.name, path=str(final), size=size)
            temp.unlink(missing_ok=True)
            done_path = self._touch_done_file(final)
        except FileExistsError as exc:
            _discard(temp)
            msg = f"{final} appeared during the delivery (if_exists: {up.if_exists})"
            raise ChannelError(msg, retriable=False) from exc
        except OSError as exc:
            _discard(temp)
            if placed is not None:  # the done file was the last step: it is not there
                msg = f"{final} delivered, but the step after failed: {exc.strerror or exc}"
                owed = up.done_file is not None
                raise DeliveredIncompletely(msg, placed, done_file_owed=owed) from exc
            msg = f"cannot deliver {name} to {self.root}: {exc.strerror or exc}"
            raise ChannelError(msg) from exc
        return Delivered(name=final.name, path=str(final), size=size, done_file=done_path)

    def _touch_done_file(self, final: Path) -> str | None:
        suffix = self.settings.upload.done_file
        if not suffix:
            return None
        done = final.with_name(final.name + suffix)
        done.touch()
        return str(done)

    def write_done_file(self, name: str) -> str | None:
        """Write the done file of ``name``, delivered earlier without one (``None``: no done
        files configured, or ``name`` is no longer in the folder)."""
        final = self.root / name
        if name_problem(name) or not self.settings.upload.done_file or not final.is_file():
            return None
        try:
            return self._touch_done_file(final)
        except OSError as exc:
            msg = f"cannot write the done file of {final}: {exc.strerror or exc}"
            raise ChannelError(msg) from exc

    def holds(self, name: str, *, size: int, sha256: str) -> bool:
        """Whether ``name`` is in the folder with exactly these bytes (a delivery whose
        journalling a killed node never finished: ``edigw.outbound.pending``)."""
        return not name_problem(name) and self._same(self.root / name, size, sha256) is True

    def delivered_as(self, name: str, *, size: int, sha256: str) -> str | None:
        """The name under which a delivery asked as ``name`` holds exactly these bytes, or
        ``None``: ``name`` itself or, with ``if_exists: rename``, the numbered names rename
        gives, looked at in its order up to the first free one (where it would have put it)."""
        if name_problem(name):
            return None
        return delivered_name(
            name,
            rename=self.settings.upload.if_exists == "rename",
            holds=lambda candidate: self._same(self.root / candidate, size, sha256),
        )

    @staticmethod
    def _same(final: Path, size: int, sha256: str) -> bool | None:
        """Whether ``final`` holds these bytes; ``None`` when there is no such file."""
        try:
            return final.stat().st_size == size and sha256_file(final) == sha256
        except FileNotFoundError:
            return None
        except OSError as exc:
            msg = f"cannot read {final} back: {exc.strerror or exc}"
            raise ChannelError(msg) from exc

    def close(self) -> None:
        """Nothing to release."""

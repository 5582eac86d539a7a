"""Local drop folders: inbound (watchdog wake-ups plus periodic rescans) and outbound.

Inbound files are handed to the pipeline in place (``IncomingFile.local_path`` is the
source); the pipeline archives them before calling ``complete``, which moves, deletes or
leaves the source, or moves a failed one to the error folder with ``NAME.error.txt``.
Symbolic links are followed only when they stay inside the channel folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import threading
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
    ERROR_REPORT_SUFFIX,
    ChannelActionResult,
    ChannelProblem,
    Delivered,
    Disposition,
    InboundOptions,
    IncomingFile,
    Listed,
    MemorySeenFiles,
    PollResult,
    ReadinessTracker,
    SeenFiles,
    UploadSettings,
    error_report,
    is_candidate,
    name_problem,
    numbered_name,
)
from edigw.errors import ChannelError

_HASH_CHUNK = 1 << 20


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
    while candidate.exists() or candidate.is_symlink():
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

    def _scan(self) -> tuple[list[Listed], set[str], list[tuple[str, str]]]:
        """Every regular file (relative name, size, mtime), every name seen, and problems."""
        if not self.root.is_dir():
            msg = f"inbound folder {self.root} does not exist or is not a folder"
            raise ChannelError(msg)
        found: list[Listed] = []
        names: set[str] = set()
        problems: list[tuple[str, str]] = []
        depth_limit = self.settings.max_depth if self.settings.recursive else 1
        stack: list[tuple[Path, str, int]] = [(self.root, "", 1)]
        while stack:
            folder, prefix, depth = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError as exc:
                problems.append((prefix or ".", f"cannot list folder: {exc.strerror}"))
                continue
            for entry in entries:
                name = prefix + entry.name
                names.add(name)
                if entry.name.startswith("."):
                    continue
                bad = name_problem(name)
                if bad:
                    problems.append((name, bad))
                    continue
                full = Path(entry.path)
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if depth < depth_limit and full.resolve() not in self._skip_dirs:
                            stack.append((full, name + "/", depth + 1))
                        continue
                    if entry.is_symlink() and not full.resolve().is_relative_to(self.root):
                        problems.append((name, "symbolic link points outside the channel folder"))
                        continue
                    st = entry.stat(follow_symlinks=True)
                except FileNotFoundError:
                    # Gone since the listing (the gateway itself moves finished files away):
                    # nothing to report. Still there, it is a link to nothing.
                    if os.path.lexists(entry.path):
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
        listing, names, scan_problems = self._scan()
        s = self.settings
        done_suffix = s.readiness.suffix if s.readiness.mode == "done_file" else None
        candidates = []
        for listed in listing:
            if not is_candidate(
                listed.name, include=s.include, exclude=s.exclude, done_suffix=done_suffix
            ):
                continue
            if self._seen.seen(self.key, listed.name, listed.size, listed.mtime):
                continue
            candidates.append(listed)
        problems: list[ChannelProblem] = []
        for name, reason in scan_problems:
            if is_candidate(name, include=s.include, exclude=s.exclude, done_suffix=done_suffix):
                reported = self._tracker.report_once(name, reason)
                if reported:
                    problems.append(reported)
        files: list[IncomingFile] = []
        for listed in self._tracker.take(candidates, now=now, all_names=names):
            path = self.root / listed.name
            incoming = IncomingFile(
                channel=self.key,
                name=listed.name,
                local_path=path,
                size=listed.size,
                mtime=listed.mtime,
                remote_path=str(path),
            )
            try:
                with path.open("rb"):
                    pass
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
        return PollResult(files=files, problems=problems)

    # ------------------------------------------------------------------ after-actions

    def _move(self, source: Path, folder: str, name: str) -> Path:
        target = _free_path(self._folder(folder) / name)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        return target

    def complete(self, incoming: IncomingFile, disposition: Disposition) -> ChannelActionResult:
        """Apply the after-action (or the error folder + report); never raises for I/O."""
        s = self.settings
        source = self.root / incoming.name
        done = (
            source.with_name(source.name + s.readiness.suffix)
            if s.readiness.mode == "done_file"
            else None
        )
        try:
            if not disposition.ok:
                target = self._move(source, s.error_folder, incoming.name)
                report = target.with_name(target.name + ERROR_REPORT_SUFFIX)
                report.write_text(
                    error_report(incoming.name, disposition, when=_utc_now_text()),
                    encoding="utf-8",
                )
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
            self._seen.remember(self.key, incoming.name, incoming.size, incoming.mtime, digest)
            return ChannelActionResult(ok=True, action="left")
        except OSError as exc:
            action = "error-move" if not disposition.ok else s.after.action
            detail = f"{action} of {source} failed: {exc.strerror or exc}"
            self._remember_if_still_there(source, incoming)
            return ChannelActionResult(ok=False, action=action, detail=detail)
        finally:
            self.release(incoming)

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
        self._seen.remember(self.key, incoming.name, st.st_size, st.st_mtime, digest)

    # ------------------------------------------------------------------ wake-ups

    def wakeups(self, event: threading.Event) -> None:
        """Set ``event`` on any change in the folder (the periodic rescan still runs:
        events are lost on network shares and while the gateway is down)."""
        if self._observer is not None:
            return
        observer = Observer()
        observer.schedule(
            _WakeHandler(event),
            str(self.root),
            recursive=self.settings.recursive,
            event_filter=ARRIVAL_EVENTS,
        )
        observer.daemon = True
        observer.start()
        self._observer = observer

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
                temp.unlink()
            done_path = None
            if up.done_file:
                done = final.with_name(final.name + up.done_file)
                done.touch()
                done_path = str(done)
        except FileExistsError as exc:
            _discard(temp)
            msg = f"{final} appeared during the delivery (if_exists: {up.if_exists})"
            raise ChannelError(msg, retriable=False) from exc
        except OSError as exc:
            _discard(temp)
            msg = f"cannot deliver {name} to {self.root}: {exc.strerror or exc}"
            raise ChannelError(msg) from exc
        return Delivered(name=final.name, path=str(final), size=size, done_file=done_path)

    def close(self) -> None:
        """Nothing to release."""

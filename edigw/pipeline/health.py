"""What the running gateway knows about its own health, as plain data.

Two kinds of facts, both kept by the supervisor (``edigw.pipeline.supervisor``):

* **loops**: each poller, watcher, sender, exporter, mover and publisher, with its state
  (``running``, ``restarting`` after a crash, ``stopped``, ``failed`` when it crashed too
  often), its restarts and its last error;
* **conditions**: trouble that belongs to no file — an SFTP server down, a host key that
  changed, an archive or journal that cannot be written, a thread that died. Whoever sees
  the trouble sets a named condition; whoever sees it gone clears it. A condition is logged
  when it appears or changes and when it clears, not on every poll that still sees it.

Readers (``edigw status``, health endpoints, metrics, alerts) take a :class:`HealthSnapshot`:
an immutable copy made under a short lock, so they never sit on the data path. The running
gateway also publishes it as ``data_dir/health.json`` every few seconds for other processes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from edigw.filemodes import DEFAULT_MODES, FileModes, write_private

log = logging.getLogger("edigw.health")

HEALTH_FILE = "health.json"
#: Seconds between two publications of ``health.json`` (and ``usage.json``).
PUBLISH_EVERY = 5.0
#: A published snapshot older than this comes from a gateway that no longer runs.
STALE_AFTER = 3 * PUBLISH_EVERY
#: A condition whose message keeps changing is logged again at most this often (seconds).
REMIND_EVERY = 60.0

#: Conditions named so are refused edits (``edigw.pipeline.reload``): the reloader tells
#: people itself (a ``reload_failed`` alert per new or changed refusal), not as a condition.
RELOAD_CONDITION_PREFIX = "reload "

LoopState = Literal["running", "restarting", "stopped", "failed"]
GatewayState = Literal["starting", "running", "stopping", "stopped", "failed"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LoopHealth:
    """One supervised loop as the supervisor last saw it.

    ``since`` is when it entered ``state``; ``last_error`` is one line (``ValueError: ...``)
    from its last crash, kept after it recovered so that a reader sees what happened.
    """

    name: str
    kind: str
    flow: str | None
    state: LoopState
    since: datetime
    restarts: int = 0
    last_error: str | None = None
    last_crash_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    """A named piece of trouble that belongs to no file, and since when it holds."""

    name: str
    message: str
    since: datetime
    flow: str | None = None


class Conditions:
    """The set of current conditions; thread-safe, cheap, and logged only on change."""

    def __init__(self, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._current: dict[str, Condition] = {}
        self._logged: dict[str, datetime] = {}

    def set(self, name: str, message: str, *, flow: str | None = None, quiet: bool = False) -> bool:
        """Record (or update) condition ``name``; True when it is new or its message changed.

        ``since`` stays the time it first appeared, however often it is set again. It is
        logged when it appears; a changed message is logged at most once a minute (an SFTP
        error counting down to its next attempt changes at every poll). ``quiet``: not
        logged (another process that reported it has logged it).
        """
        now = self._clock()
        with self._lock:
            old = self._current.get(name)
            if old is not None and old.message == message and old.flow == flow:
                return False
            self._current[name] = Condition(name, message, old.since if old else now, flow)
            last = self._logged.get(name)
            loud = old is None or last is None or (now - last).total_seconds() >= REMIND_EVERY
            if loud:
                self._logged[name] = now
        if loud and not quiet:
            log.warning("%s: %s", name, message)
        return True

    def clear(self, name: str, *, quiet: bool = False) -> bool:
        """Forget condition ``name``; True when it was set (``quiet``: see :meth:`set`)."""
        with self._lock:
            old = self._current.pop(name, None)
            self._logged.pop(name, None)
        if old is None:
            return False
        lasted = (self._clock() - old.since).total_seconds()
        if not quiet:
            log.info("%s: recovered after %.0f s", name, lasted)
        return True

    def get(self, name: str) -> Condition | None:
        with self._lock:
            return self._current.get(name)

    def snapshot(self) -> tuple[Condition, ...]:
        with self._lock:
            return tuple(sorted(self._current.values(), key=lambda c: (c.since, c.name)))


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """The gateway's health at one moment: its state, every loop, every condition."""

    at: datetime
    node: str
    state: GatewayState
    loops: tuple[LoopHealth, ...] = ()
    conditions: tuple[Condition, ...] = ()
    #: Why the gateway gave up (a loop that kept crashing), when it did.
    failure: str | None = None

    @property
    def healthy(self) -> bool:
        """Running, every loop running, no condition."""
        return (
            self.state == "running"
            and all(loop.state == "running" for loop in self.loops)
            and not self.conditions
        )

    def flow_problems(self) -> dict[str, list[str]]:
        """Per flow, why it is unhealthy (a loop not running, a condition); healthy flows
        are absent."""
        found: dict[str, list[str]] = {}
        for loop in self.loops:
            if loop.flow and loop.state != "running":
                why = f"{loop.name} {loop.state}"
                if loop.last_error:
                    why += f": {loop.last_error}"
                found.setdefault(loop.flow, []).append(why)
        for condition in self.conditions:
            if condition.flow:
                found.setdefault(condition.flow, []).append(condition.message)
        return found

    def problems(self) -> list[str]:
        """One line per thing that is wrong, for people (``edigw status``)."""
        lines = []
        if self.failure:
            lines.append(f"gave up: {self.failure}")
        for loop in self.loops:
            if loop.state in ("restarting", "failed"):
                line = f"loop {loop.name}: {loop.state} since {loop.since:%Y-%m-%d %H:%M:%S}"
                line += f" UTC, {loop.restarts} restarts"
                if loop.last_error:
                    line += f", last error: {loop.last_error}"
                lines.append(line)
        for c in self.conditions:
            lines.append(f"{c.name}: {c.message} (since {c.since:%Y-%m-%d %H:%M:%S} UTC)")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "node": self.node,
            "state": self.state,
            "healthy": self.healthy,
            "failure": self.failure,
            "loops": [
                {
                    "name": loop.name,
                    "kind": loop.kind,
                    "flow": loop.flow,
                    "state": loop.state,
                    "since": loop.since.isoformat(),
                    "restarts": loop.restarts,
                    "last_error": loop.last_error,
                    "last_crash_at": _iso(loop.last_crash_at),
                }
                for loop in self.loops
            ],
            "conditions": [
                {"name": c.name, "message": c.message, "since": c.since.isoformat(), "flow": c.flow}
                for c in self.conditions
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HealthSnapshot:
        """The inverse of :meth:`to_dict`; ``KeyError``/``ValueError`` on a damaged file."""
        return cls(
            at=datetime.fromisoformat(data["at"]),
            node=str(data["node"]),
            state=cast(GatewayState, data["state"]),
            failure=data.get("failure"),
            loops=tuple(
                LoopHealth(
                    name=item["name"],
                    kind=item["kind"],
                    flow=item.get("flow"),
                    state=cast(LoopState, item["state"]),
                    since=datetime.fromisoformat(item["since"]),
                    restarts=int(item.get("restarts", 0)),
                    last_error=item.get("last_error"),
                    last_crash_at=_from_iso(item.get("last_crash_at")),
                )
                for item in data.get("loops", [])
            ),
            conditions=tuple(
                Condition(
                    name=item["name"],
                    message=item["message"],
                    since=datetime.fromisoformat(item["since"]),
                    flow=item.get("flow"),
                )
                for item in data.get("conditions", [])
            ),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _from_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --------------------------------------------------------------------------- published


def write_json_atomically(
    target: Path, data: dict[str, Any], modes: FileModes = DEFAULT_MODES
) -> None:
    """Replace ``target`` with ``data`` so that a reader sees the old or the new file, whole;
    created with the file mode of ``modes`` (``security.file_mode``)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    write_private(tmp, json.dumps(data, indent=1).encode("utf-8"), modes)
    tmp.replace(target)


def write_health(
    snapshot: HealthSnapshot, data_dir: Path, modes: FileModes = DEFAULT_MODES
) -> None:
    """Publish ``snapshot`` as ``data_dir/health.json`` (raises ``OSError``)."""
    write_json_atomically(data_dir / HEALTH_FILE, snapshot.to_dict(), modes)


@dataclass(frozen=True, slots=True)
class PublishedHealth:
    """What another process finds in ``health.json``: the snapshot, and whether it is news.

    ``stale`` means the gateway that wrote it stopped publishing without saying so (it was
    killed, or hangs); a gateway that stopped on request says ``state: stopped``.
    """

    snapshot: HealthSnapshot | None
    stale: bool = False
    age: float = 0.0
    note: str = ""

    @property
    def summary(self) -> str:
        """One line: running and healthy, unhealthy, stopped, stale, or never ran."""
        snap = self.snapshot
        if snap is None:
            return self.note
        when = f"{snap.at:%Y-%m-%d %H:%M:%S} UTC"
        if snap.state == "failed":
            return f"failed at {when}: {snap.failure or 'a loop kept crashing'}"
        if snap.state == "stopped":
            return f"not running (stopped at {when})"
        if self.stale:
            return f"unknown: last report {when}, {self.age:.0f} s ago (gateway killed or hung?)"
        if snap.healthy:
            return f"healthy ({len(snap.loops)} loops running, {snap.node})"
        return f"{snap.state}, unhealthy ({snap.node})"

    @property
    def current(self) -> bool:
        """Whether the report describes a gateway running now (not stopped, failed, stale)."""
        snap = self.snapshot
        return snap is not None and not self.stale and snap.state not in ("stopped", "failed")

    def problems(self) -> list[str]:
        """What is wrong with the running gateway, one line each; none when the report is
        not current (old news is not shown as current trouble)."""
        if self.snapshot is None or not self.current:
            return []
        return self.snapshot.problems()

    def by_flow(self, *, exports: Collection[str] = ()) -> dict[str, str]:
        """Health for ``gateway_status(health=...)``: ``""`` → :attr:`summary`; each flow the
        running gateway's loops name → ``ok`` or short labels of what is wrong (``poller
        restarting``, ``channel trouble``: :meth:`problems` says it in full); each export in
        ``exports`` → the exporter's state. Flows are left out (unknown) unless the report
        is current."""
        found = {"": self.summary}
        snap = self.snapshot
        if snap is None or not self.current:
            return found
        labels: dict[str, list[str]] = {}
        for loop in snap.loops:
            if loop.flow:
                trouble = labels.setdefault(loop.flow, [])
                if loop.state != "running":
                    trouble.append(f"{loop.kind} {loop.state}")
        for condition in snap.conditions:
            if condition.flow:
                what = condition.name.removesuffix(condition.flow).strip() or "condition"
                labels.setdefault(condition.flow, []).append(f"{what} trouble")
        exporters = [loop for loop in snap.loops if loop.kind == "exporter"]
        for export in exports:
            trouble = labels.setdefault(export, [])
            trouble += [f"exporter {loop.state}" for loop in exporters if loop.state != "running"]
            if not exporters:
                trouble.append("exporter not running")
        found.update({flow: ", ".join(trouble) or "ok" for flow, trouble in labels.items()})
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "stale": self.stale,
            "age_seconds": round(self.age, 1),
            "snapshot": self.snapshot.to_dict() if self.snapshot else None,
        }


def read_health(data_dir: Path, *, now: datetime) -> PublishedHealth:
    """The health the running gateway published in ``data_dir``, judged at ``now``."""
    path = data_dir / HEALTH_FILE
    try:
        snapshot = HealthSnapshot.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return PublishedHealth(None, note="unknown (no gateway has run here yet)")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return PublishedHealth(None, note=f"unknown ({path} cannot be read: {exc})")
    age = max(0.0, (now - snapshot.at).total_seconds())
    stale = snapshot.state not in ("stopped", "failed") and age > STALE_AFTER
    return PublishedHealth(snapshot, stale=stale, age=age)


__all__ = [
    "HEALTH_FILE",
    "PUBLISH_EVERY",
    "RELOAD_CONDITION_PREFIX",
    "STALE_AFTER",
    "Condition",
    "Conditions",
    "GatewayState",
    "HealthSnapshot",
    "LoopHealth",
    "LoopState",
    "PublishedHealth",
    "read_health",
    "write_health",
    "write_json_atomically",
]

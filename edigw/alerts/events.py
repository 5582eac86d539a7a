"""What an alert is: one thing a person should hear about, as plain data.

An alert names its flow, the partner file, the reason (cut to ``MAX_REASON`` characters: a
mail is not the place for a thousand field errors) and the ``edigw show`` command that
tells the rest. The constructors below are the only way the gateway makes one, so every
alert of a kind reads the same; :func:`reload_failed` is there for the reloader.

Whoever notices something calls :meth:`AlertSink.notify`, which never blocks and never
raises: telling people must not slow or break the work it reports on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from edigw.errors import EdigwError

#: Characters of a reason kept in an alert; the journal keeps the whole of it.
MAX_REASON = 400
#: Lines of a multi-line reason kept in an alert.
MAX_REASON_LINES = 4

AlertKind = Literal[
    "file_failed",
    "retry_waiting",
    "loop_crashed",
    "condition",
    "gateway_stopping",
    "reload_failed",
    "budget_exhausted",
]
Severity = Literal["warning", "critical"]


class AlertDeliveryError(EdigwError):
    """An alert channel (webhook, SMTP server) did not take a message; it is tried again."""


def bounded(reason: str, *, limit: int = MAX_REASON, lines: int = MAX_REASON_LINES) -> str:
    """``reason`` within ``lines`` lines and ``limit`` characters, marked where it was cut."""
    kept = [line.rstrip() for line in reason.strip().splitlines() if line.strip()]
    text = "\n".join(kept[:lines])
    cut = len(kept) > lines
    if len(text) > limit:
        text, cut = text[: limit - 1].rstrip(), True
    return f"{text}…" if cut else text


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Alert:
    """One thing to tell people.

    ``ref`` is the journal reference (``F-12``, ``D-40``) when there is one: it makes the
    ``edigw show`` command. ``key`` identifies an alert for deduplication: the same kind,
    flow, reference and reason again is the same news.
    """

    kind: AlertKind
    title: str
    reason: str
    at: datetime
    flow: str | None = None
    file: str | None = None
    ref: str | None = None
    severity: Severity = "warning"

    @property
    def show(self) -> str | None:
        """The command that tells the whole story, or ``None``."""
        return f"edigw show {self.ref}" if self.ref else None

    @property
    def key(self) -> tuple[str, str | None, str | None, str]:
        return (self.kind, self.flow, self.ref, self.reason)

    def to_dict(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "flow": self.flow,
            "file": self.file,
            "ref": self.ref,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "show": self.show,
        }


class AlertSink(Protocol):
    """Where alerts go; ``notify`` returns at once and never raises."""

    def notify(self, alert: Alert) -> None: ...


class NoAlerts:
    """The sink of a gateway with no alert channel configured: alerts are dropped."""

    def notify(self, alert: Alert) -> None:
        return None


# --------------------------------------------------------------------------- constructors


def file_failed(*, ref: str, flow: str, file: str, state: str, reason: str, at: datetime) -> Alert:
    """A file failed finally (``failed``), or some of its documents did (``partially_failed``)."""
    what = "failed" if state == "failed" else "partly failed"
    return Alert(
        kind="file_failed",
        title=f"{ref} {file} {what} in {flow}",
        reason=bounded(reason),
        at=at,
        flow=flow,
        file=file,
        ref=ref,
    )


def retry_waiting(
    *, ref: str, file_ref: str, flow: str, file: str, waited: str, reason: str, at: datetime
) -> Alert:
    """A document has waited in retry longer than ``alerts.retry_wait_after``."""
    return Alert(
        kind="retry_waiting",
        title=f"{ref} of {file_ref} {file} waits in retry for {waited} in {flow}",
        reason=bounded(reason or "no reason recorded"),
        at=at,
        flow=flow,
        file=file,
        ref=ref,
    )


def loop_crashed(*, loop: str, flow: str | None, error: str, restarts: int, at: datetime) -> Alert:
    """A supervised loop crashed; the supervisor restarts it after a pause."""
    return Alert(
        kind="loop_crashed",
        title=f"loop {loop} crashed and restarts (restart {restarts + 1})",
        reason=bounded(error),
        at=at,
        flow=flow,
    )


def condition_raised(*, name: str, message: str, flow: str | None, at: datetime) -> Alert:
    """Trouble that belongs to no file appeared: an SFTP server down, a journal unwritable."""
    return Alert(kind="condition", title=name, reason=bounded(message), at=at, flow=flow)


def gateway_stopping(*, reason: str, at: datetime) -> Alert:
    """The process is about to stop because a loop kept crashing (exit status for systemd)."""
    return Alert(
        kind="gateway_stopping",
        title="edigw is stopping: a loop kept crashing",
        reason=bounded(reason),
        at=at,
        severity="critical",
    )


def reload_failed(*, what: str, reason: str, at: datetime, flow: str | None = None) -> Alert:
    """An edited mapping, lookup table, template or ``edigw.yaml`` could not be loaded; the
    previous version keeps running. ``what`` names the file (``mappings/orders.yaml``)."""
    return Alert(
        kind="reload_failed",
        title=f"reload of {what} failed; the previous version keeps running",
        reason=bounded(reason),
        at=at,
        flow=flow,
        file=what,
    )


def budget_exhausted(*, limit: int, lasted: str, at: datetime) -> Alert:
    """The Ecolix call budget has stayed used up for longer than ``alerts.budget_exhausted_after``."""
    return Alert(
        kind="budget_exhausted",
        title=f"Ecolix call budget used up for {lasted}",
        reason=(
            f"all {limit} calls per minute (ecolix.calls_per_minute) are used; documents wait "
            "for the budget: see `edigw status`"
        ),
        at=at,
    )

"""Grouping and deduplication of alerts: a bad hour is one digest, not five hundred mails.

The rule, in time windows of ``window`` seconds (``alerts.window``, default 60):

* the first alert after a quiet period goes out **at once**, alone, and opens a window;
* every other alert that arrives while the window is open is held; an alert identical to
  one already sent or held in the window (same kind, flow, reference and reason) is counted
  as a duplicate and dropped;
* when the window closes, what was held goes out as **one digest** (one alert held: a plain
  alert) and a new window opens at once, so a storm yields one message per window;
  a window that closes with nothing held ends the busy period: the next alert is immediate.

So 100 files failing within a minute make exactly two messages: the first file's alert at
once, then one digest of the 99 others (the first ``LISTED`` of them listed) when the
minute is over. :meth:`Grouper.flush` with ``force`` sends what is held before a stop.

Pure logic over a caller's clock (``now`` in seconds, monotonic): no thread, no I/O.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from edigw.alerts.events import Alert, AlertKind

DEFAULT_WINDOW = 60.0
#: Alerts listed one by one in a digest; the others are counted.
LISTED = 10

_KIND_WORDS: dict[AlertKind, tuple[str, str]] = {
    "file_failed": ("file failed", "files failed"),
    "retry_waiting": ("document waits in retry", "documents wait in retry"),
    "loop_crashed": ("loop crash", "loop crashes"),
    "condition": ("problem", "problems"),
    "gateway_stopping": ("stop", "stops"),
    "reload_failed": ("reload failed", "reloads failed"),
    "budget_exhausted": ("call budget exhausted", "call budget exhausted"),
}


@dataclass(frozen=True, slots=True)
class Message:
    """What one delivery carries: one alert, or a digest of several."""

    alerts: tuple[Alert, ...]
    #: Identical alerts dropped in the window this message closes.
    duplicates: int = 0

    @property
    def digest(self) -> bool:
        return len(self.alerts) > 1

    @property
    def critical(self) -> bool:
        return any(alert.severity == "critical" for alert in self.alerts)

    @property
    def listed(self) -> tuple[Alert, ...]:
        return self.alerts[:LISTED]

    @property
    def more(self) -> int:
        """Alerts of a digest that are counted, not listed."""
        return max(0, len(self.alerts) - LISTED)

    @property
    def subject(self) -> str:
        """One line: the alert's title, or what the digest holds by kind and flow."""
        if not self.digest:
            return self.alerts[0].title
        return "; ".join(summary_lines(self.alerts))

    def lines(self) -> list[str]:
        """The body as plain-text lines, below the subject (mail, Slack, Teams render them
        their own way): a single alert's reason and command; a digest's alerts, listed."""
        out: list[str] = []
        for alert in self.listed:
            if self.digest:  # a single alert's title is the subject already
                out.append(f"- {alert.title}")
            indent = "  " if self.digest else ""
            out += [f"{indent}{line}" for line in alert.reason.splitlines()]
            if alert.show:
                out.append(f"{indent}look closer: {alert.show}")
        if self.more:
            out.append(
                f"… and {self.more} more: see `edigw files --state failed` and `edigw status`"
            )
        if self.duplicates:
            out.append(f"({self.duplicates} identical repeats left out)")
        return out

    def text(self) -> str:
        return "\n".join(self.lines())


def summary_lines(alerts: tuple[Alert, ...]) -> list[str]:
    """``100 files failed in webshop/orders``, one per kind and flow, largest first."""
    counts = Counter((alert.kind, alert.flow) for alert in alerts)
    lines = []
    for (kind, flow), count in sorted(counts.items(), key=lambda item: (-item[1], str(item[0]))):
        one, many = _KIND_WORDS[kind]
        where = f" in {flow}" if flow else ""
        lines.append(f"{count} {one if count == 1 else many}{where}")
    return lines


class Grouper:
    """The window rule of the module docstring; the caller brings the clock.

    ``offer`` takes an alert and answers what to send now; ``flush`` answers what to send
    when the window is over (or at once, ``force``); ``due`` says when to call ``flush``.
    """

    def __init__(self, window: float = DEFAULT_WINDOW) -> None:
        if window <= 0:
            msg = "the alert window must be positive"
            raise ValueError(msg)
        self.window = window
        self._closes: float | None = None
        self._held: list[Alert] = []
        self._seen: set[tuple[str, str | None, str | None, str]] = set()
        self._duplicates = 0

    @property
    def due(self) -> float | None:
        """When the open window closes (``flush`` then), or ``None`` in a quiet period."""
        return self._closes

    @property
    def held(self) -> int:
        return len(self._held)

    def offer(self, alert: Alert, now: float) -> list[Message]:
        """Messages to send now: a digest whose window had closed, then this alert when it
        starts a busy period; nothing when it is held or a duplicate."""
        out = self.flush(now)
        if alert.key in self._seen:
            self._duplicates += 1
            return out
        self._seen.add(alert.key)
        if self._closes is None:
            self._closes = now + self.window
            out.append(Message((alert,)))
        else:
            self._held.append(alert)
        return out

    def flush(self, now: float, *, force: bool = False) -> list[Message]:
        """The digest of the window if it has closed by ``now`` (or ``force``); empty
        otherwise. After a digest a new window opens; after an empty one, quiet."""
        if self._closes is None or (now < self._closes and not force):
            return []
        held, duplicates = tuple(self._held), self._duplicates
        self._held, self._seen, self._duplicates = [], set(), 0
        if not held:
            self._closes = None
            return []
        self._closes = now + self.window
        self._seen = {alert.key for alert in held}
        return [Message(held, duplicates=duplicates)]

"""When an export flow runs next: a cron expression or a fixed interval. Pure functions.

Cron expressions are read in the flow's time zone (``0 6 * * *`` is 06:00 in Paris, summer
and winter alike); intervals are plain seconds after the previous run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from edigw.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Schedule:
    """Either ``every`` seconds or a ``cron`` expression (exactly one)."""

    every: float | None = None
    cron: str | None = None

    @classmethod
    def of(cls, value: Any) -> Schedule:
        """Accept a :class:`Schedule`, a mapping or any object with ``every``/``cron``."""
        if isinstance(value, Schedule):
            return value
        if isinstance(value, Mapping):
            every, cron = value.get("every"), value.get("cron")
        else:
            every, cron = getattr(value, "every", None), getattr(value, "cron", None)
        schedule = cls(every=every, cron=cron)
        schedule.check()
        return schedule

    def check(self) -> None:
        if (self.every is None) == (self.cron is None):
            msg = "schedule: give exactly one of 'every' (seconds) or 'cron'"
            raise ConfigError(msg)
        if self.every is not None and self.every <= 0:
            msg = f"schedule: 'every' must be a positive number of seconds, got {self.every}"
            raise ConfigError(msg)
        if self.cron is None:
            return
        from croniter import croniter  # 1 MB with dateutil: imported by cron schedules only

        if not croniter.is_valid(self.cron):
            msg = f"schedule: {self.cron!r} is not a valid cron expression"
            raise ConfigError(msg)


def next_run(schedule: Any, after: datetime, *, timezone: str | None = None) -> datetime:
    """The first run time strictly after ``after`` (an aware date-time).

    The result is in ``after``'s time zone; cron fields are read in ``timezone`` (the flow's)
    when given, else in ``after``'s zone.
    """
    if after.tzinfo is None:
        msg = "next_run needs an aware date-time"
        raise ValueError(msg)
    plan = Schedule.of(schedule)
    if plan.every is not None:
        return after + timedelta(seconds=plan.every)
    assert plan.cron is not None
    from croniter import CroniterBadCronError, CroniterBadDateError, croniter  # see check

    local = after.astimezone(ZoneInfo(timezone)) if timezone else after
    try:
        nxt = croniter(plan.cron, local).get_next(datetime)
    except (CroniterBadCronError, CroniterBadDateError) as exc:
        msg = f"schedule: {plan.cron!r}: {exc}"
        raise ConfigError(msg) from exc
    if not isinstance(nxt, datetime):  # pragma: no cover - croniter returns what it is asked
        msg = "croniter returned no date-time"
        raise TypeError(msg)
    return nxt.astimezone(after.tzinfo)

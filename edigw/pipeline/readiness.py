"""Is the running gateway ready to do its job? The answer behind ``/readyz``.

Ready means all three:

* the **journal** answers a trivial read (asked at each check: it is cheap);
* the gateway **runs and every loop runs** (the supervisor's snapshot: none restarting
  after a crash, none failed, no stop under way);
* **Ecolix answers**. Found out frugally, by the ``ecolix check`` loop, since each call
  counts against the call budget: the calls the gateway makes anyway tell (an answer of
  any kind below 500 — a 429 is Ecolix answering); only when none was made during
  ``every`` seconds does the loop make one cheap read of its own (one article). So at most
  one call per ``every`` seconds, none while documents flow. Ecolix not answering is a
  condition (``ecolix``), so ``edigw status`` and the health report show it too.

A check never calls Ecolix itself, so ``/readyz`` answers at once whatever Ecolix does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from edigw.ecolix.client import EcolixClient
from edigw.ecolix.usage import UsageSnapshot
from edigw.errors import EcolixCallCancelled, EcolixError, EdigwError
from edigw.journal.store import Journal
from edigw.pipeline.health import Conditions, HealthSnapshot

#: The name of the condition set while Ecolix does not answer.
ECOLIX_CONDITION = "ecolix"
#: The read the check makes when the gateway made no call of its own (one item asked).
PROBE_OPERATION = "articles.list"


@dataclass(frozen=True, slots=True)
class Readiness:
    """The verdict and, per check (``journal``, ``loops``, ``ecolix``), ``ok`` or why not."""

    checks: Mapping[str, str]

    @property
    def ready(self) -> bool:
        return all(why == "ok" for why in self.checks.values())

    def not_ready(self) -> dict[str, str]:
        """The checks that failed, with why."""
        return {name: why for name, why in self.checks.items() if why != "ok"}

    def to_dict(self) -> dict[str, object]:
        return {"ready": self.ready, "checks": dict(self.checks)}


def _answered(usage: UsageSnapshot) -> tuple[int, int]:
    """(answers below 500, requests that got no answer or a server error), so far."""
    answered = sum(n for status, n in usage.by_status.items() if 0 < status < 500)
    failed = sum(n for status, n in usage.by_status.items() if status == 0 or status >= 500)
    return answered, failed


class EcolixCheck:
    """Whether Ecolix answers, kept up to date by :meth:`run` (a supervised loop)."""

    def __init__(
        self,
        client: EcolixClient,
        conditions: Conditions,
        *,
        every: float,
        usage: Callable[[], UsageSnapshot] | None = None,
    ) -> None:
        self._client = client
        self._conditions = conditions
        self.every = every
        #: The gateway's calls so far (``usage``: with those of its sending process).
        self._usage = usage if usage is not None else lambda: client.usage
        self._lock = threading.Lock()
        self._verdict: str | None = None  # None: not found out yet
        self._seen = _answered(self._usage())
        #: Calls this check made itself (the rest of the budget went to the pipeline).
        self.probes = 0

    @property
    def verdict(self) -> str:
        """``ok``, or why Ecolix does not count as answering."""
        with self._lock:
            return self._verdict if self._verdict is not None else "not checked yet"

    def check_once(self) -> str:
        """Find out, by the calls made since the last look or else by one read; returns
        and records the verdict (and sets or clears the ``ecolix`` condition)."""
        answered, failed = _answered(self._usage())
        seen_answered, seen_failed = self._seen
        if answered > seen_answered:
            verdict = "ok"
        elif failed > seen_failed:
            verdict = (
                f"Ecolix did not answer the gateway's last {failed - seen_failed} calls "
                "(network error, timeout or server error)"
            )
        else:
            verdict = self._probe()
        self._seen = _answered(self._usage())
        with self._lock:
            self._verdict = verdict
        if verdict == "ok":
            self._conditions.clear(ECOLIX_CONDITION)
        else:
            self._conditions.set(ECOLIX_CONDITION, verdict)
        return verdict

    def _probe(self) -> str:
        self.probes += 1
        try:
            next(iter(self._client.iter_list(PROBE_OPERATION, page_size=1)), None)
        except EcolixCallCancelled:
            raise  # the gateway is stopping: no verdict
        except EcolixError as exc:
            status = exc.status
            if status is not None and 0 < status < 500:
                return f"Ecolix refuses the gateway's calls: {exc}"
            return f"Ecolix does not answer: {exc}"
        return "ok"

    def run(self, stop: threading.Event) -> None:
        """Check now, then every ``every`` seconds, until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.check_once()
            except EdigwError as exc:  # a cancelled call (stopping), an odd answer
                if stop.is_set():
                    return
                self._conditions.set(ECOLIX_CONDITION, f"Ecolix cannot be checked: {exc}")
            stop.wait(self.every)


def readiness(
    *,
    journal: Journal,
    health: Callable[[], HealthSnapshot],
    ecolix: EcolixCheck,
) -> Readiness:
    """Check the journal (one trivial read), the loops (the snapshot) and Ecolix (the
    last verdict of the check loop)."""
    try:
        journal.ping()
    except EdigwError as exc:
        journal_ok = f"the journal cannot be read: {exc}"
    else:
        journal_ok = "ok"
    return Readiness(
        checks={"journal": journal_ok, "loops": loops_verdict(health()), "ecolix": ecolix.verdict}
    )


def loops_verdict(snapshot: HealthSnapshot) -> str:
    """``ok`` when the gateway runs and every loop runs; else which do not, worded as
    ``edigw status`` words them."""
    if snapshot.state != "running":
        why = f"the gateway is {snapshot.state}"
        return f"{why}: {snapshot.failure}" if snapshot.failure else why
    down = [
        f"loop {loop.name}: {loop.state}"
        + (f", last error: {loop.last_error}" if loop.last_error else "")
        for loop in snapshot.loops
        if loop.state != "running"
    ]
    return "; ".join(down) or "ok"


__all__ = ["ECOLIX_CONDITION", "EcolixCheck", "Readiness", "loops_verdict", "readiness"]

"""How one Ecolix call is retried within itself: exponential backoff with jitter (tenacity),
at least the server's ``Retry-After``, bounded in attempts and in total waiting; only what a
short wait can fix (429, 502, 503, 504, a request that never arrived). Past that, the
document goes back to the pipeline, which parks it in retry-wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tenacity

from edigw.errors import EcolixRetriableError

RETRIED_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one call tries before giving the document back to the pipeline.

    Wait before retry n (n = 1, 2, ...) is ``first_delay * 2**(n-1)`` plus up to ``jitter``
    seconds, capped at ``max_delay``, and at least the server's ``Retry-After``. The call
    gives up after ``attempts`` requests, or as soon as the waits would add up to more than
    ``max_total_wait`` (a long ``Retry-After`` is the pipeline's to wait, not a worker's).
    """

    attempts: int = 4
    first_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.5
    max_total_wait: float = 30.0


def retrying(policy: RetryPolicy, sleep: Callable[[float], None]) -> tenacity.Retrying:
    """The retry loop of one call under ``policy``, waiting with ``sleep``; the last error is
    raised as it is."""
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts)
        | _StopWhenWaitsExceed(policy.max_total_wait),
        wait=_wait_backoff_or_retry_after(policy),
        retry=tenacity.retry_if_exception(_retry_here),
        sleep=sleep,
        reraise=True,
    )


def _retry_here(exc: BaseException) -> bool:
    """Retry within the call only what a short wait can fix; a 500 waits for the pipeline.

    (A ``retry_after`` longer than the policy allows is stopped by ``_StopWhenWaitsExceed``.)
    """
    if not isinstance(exc, EcolixRetriableError):
        return False
    return exc.problem is None or exc.problem.status in RETRIED_STATUSES


def _wait_backoff_or_retry_after(policy: RetryPolicy) -> Callable[[tenacity.RetryCallState], float]:
    backoff = tenacity.wait_exponential_jitter(
        multiplier=policy.first_delay, max=policy.max_delay, jitter=policy.jitter
    )

    def wait(state: tenacity.RetryCallState) -> float:
        seconds = backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, EcolixRetriableError) and exc.retry_after is not None:
            seconds = max(seconds, exc.retry_after)
        return seconds

    return wait


class _StopWhenWaitsExceed(tenacity.stop.stop_base):
    """Stop before a sleep that would take the call's total waiting past the policy's cap.

    Counted on the planned sleeps (``idle_for``), not the wall clock, so it behaves the same
    with an injected ``sleep``.
    """

    def __init__(self, max_total_wait: float) -> None:
        self.max_total_wait = max_total_wait

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return retry_state.idle_for + retry_state.upcoming_sleep > self.max_total_wait

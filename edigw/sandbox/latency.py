"""Network latency for the sandbox: every answer arrives as late as a remote Ecolix's would.

On loopback the sandbox answers in about a millisecond, which hides what a real ERP costs:
tens of milliseconds a call, during which a sender that waits for each answer does nothing.
``edigw sandbox --latency 50ms±10ms`` puts that cost back, so that benchmarks and tests see
whether the gateway keeps enough calls in flight.

The delay is an ASGI middleware around the app: half of it before the request reaches the
sandbox (the request travelling), half before the answer leaves (the answer travelling), as a
round trip would, so that the rate limiter stamps a request when a remote server would. It
waits with ``asyncio.sleep``, never ``time.sleep``: requests in flight wait side by side and
the server's one event loop stays free. The jitter is drawn uniformly in ``±jitter`` from a
seeded generator, so two runs with the same seed delay their n-th answers alike.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edigw.errors import ConfigError

DEFAULT_LATENCY_SEED = 0

_AMOUNT = r"(\d+(?:\.\d+)?|\.\d+)\s*(ms|s)"
_LATENCY = re.compile(rf"^\s*{_AMOUNT}\s*(?:(?:±|\+-|\+/-)\s*{_AMOUNT}\s*)?$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0}


@dataclass(frozen=True, slots=True)
class Latency:
    """A delay per answer: ``seconds`` on average, each drawn in ``seconds ± jitter``."""

    seconds: float
    jitter: float = 0.0

    def delays(self, seed: int = DEFAULT_LATENCY_SEED) -> Iterator[float]:
        """The delay of each answer in turn; the same seed gives the same sequence."""
        rng = random.Random(seed)
        while True:
            if self.jitter:
                yield max(0.0, self.seconds + rng.uniform(-self.jitter, self.jitter))
            else:
                yield self.seconds

    def __str__(self) -> str:
        text = _milliseconds(self.seconds)
        return f"{text}±{_milliseconds(self.jitter)}" if self.jitter else text


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:g}ms"


def parse_latency(text: str) -> Latency:
    """``50ms``, ``0.05s``, ``50ms±10ms`` or ``50ms+-10ms`` → a :class:`Latency`."""
    found = _LATENCY.match(text)
    if found is None:
        msg = (
            f"{text!r} is not a latency: write a duration with its unit (ms or s), "
            "optionally ± a jitter: 50ms, 0.05s, 50ms±10ms or 50ms+-10ms"
        )
        raise ConfigError(msg)
    amount, unit, jitter_amount, jitter_unit = found.groups()
    seconds = float(amount) * _UNIT_SECONDS[unit.lower()]
    jitter = float(jitter_amount) * _UNIT_SECONDS[jitter_unit.lower()] if jitter_amount else 0.0
    if jitter > seconds:
        msg = (
            f"{text!r}: the jitter ({_milliseconds(jitter)}) cannot be larger than the "
            f"latency ({_milliseconds(seconds)}); an answer cannot come back before it was asked"
        )
        raise ConfigError(msg)
    return Latency(seconds, jitter)


class LatencyMiddleware:
    """Delays every HTTP answer of ``app`` by the next of ``latency.delays(seed)``."""

    def __init__(self, app: ASGIApp, latency: Latency, *, seed: int = DEFAULT_LATENCY_SEED) -> None:
        self.app = app
        self.latency = latency
        self._delays = latency.delays(seed)  # drawn on the event loop only: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        delay = next(self._delays)
        inbound = delay / 2
        await asyncio.sleep(inbound)
        answered = False

        async def send_late(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                await asyncio.sleep(delay - inbound)
            await send(message)

        await self.app(scope, receive, send_late)

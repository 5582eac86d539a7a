"""Ecolix client figures against the sandbox on loopback (the sandbox in its own process).

1. Unthrottled: calls/s for a read (``customers.get``) and a write (``customers.upsert``, a
   fresh idempotency key each time), with 1 and 4 threads sharing one client, next to a bare
   ``httpx.Client`` making the same requests (the client's own cost is the difference).
2. Under an agreement of N calls/min: 4 threads ask for as many calls as they can for longer
   than two minutes, against a sandbox that enforces the same N per rolling minute. A
   recording transport notes when each request really left and when its answer came back,
   so the figures are what the server saw: calls per rolling 60-second window (min / mean /
   max), the fullest window the server could have counted anywhere (every request counted
   in any window its flight overlaps), and the 429 answers. Goals: 0 x 429, no window above
   the limit, the mean window within 2% of it.

Run: python benchmarks/ecolix_client.py [--limit 600] [--duration 130]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' sandbox launcher

from edigw.ecolix.client import EcolixClient
from edigw.ecolix.limiter import RollingWindowLimiter
from tests.fixtures.sandbox import HIGH_RATE_LIMIT, SandboxProcess, seeded_database

WINDOW = 60.0
READ_CODE = "BENCH-READ"


def launch(folder: Path, name: str, rate_limit: str) -> SandboxProcess:
    """A seeded sandbox in its own process, so that it does not share our GIL."""
    db_path = folder / f"{name}.sqlite"
    seeded_database(db_path, None, folder)
    return SandboxProcess(db_path, rate_limit=rate_limit).start()


def customer(code: str) -> dict[str, Any]:
    return {
        "code": code,
        "name": "Bench SARL",
        "billing_address": {
            "line1": "1 rue du Bench",
            "postal_code": "75001",
            "city": "Paris",
            "country": "FR",
        },
    }


class RecordingTransport(httpx.HTTPTransport):
    """Notes (sent, answered) for every request: the server stamps it in between."""

    def __init__(self) -> None:
        super().__init__(verify=True)
        self.flights: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sent = time.perf_counter()
        response = super().handle_request(request)
        answered = time.perf_counter()
        with self._lock:
            self.flights.append((sent, answered))
        return response


class Stopped(Exception):
    """Raised by the limiter's sleep once the run is over, to release waiting threads."""


def hammer(call: Callable[[int], object], *, threads: int, seconds: float) -> tuple[int, float]:
    """Run ``call(n)`` from ``threads`` threads for ``seconds``: (calls, elapsed)."""
    counter = itertools.count()
    deadline = time.perf_counter() + seconds
    done = [0] * threads

    def worker(slot: int) -> None:
        try:
            while time.perf_counter() < deadline:
                call(next(counter))
                done[slot] += 1
        except Stopped:
            pass

    began = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(done), time.perf_counter() - began


def rate(call: Callable[[int], object], threads: int, seconds: float) -> float:
    calls, elapsed = hammer(call, threads=threads, seconds=seconds)
    return calls / elapsed


def unthrottled(
    server: SandboxProcess, seconds: float, rounds: int
) -> list[tuple[str, int, float, float]]:
    """Rows (case, threads, edigw client calls/s, bare httpx calls/s): medians of rounds
    that alternate client and bare, so that load from elsewhere hits both alike."""
    rows = []
    headers = {**server.auth, "Content-Type": "application/json"}
    with (
        EcolixClient(server.base_url, server.token) as client,
        httpx.Client(base_url=server.base_url, headers=headers) as bare,
    ):
        client.upsert_customer(customer(READ_CODE), idempotency_key="bench-read")
        unique = itertools.count()

        def client_get(_n: int) -> None:
            client.get_customer(READ_CODE)

        def bare_get(_n: int) -> None:
            bare.get(f"/customers/{READ_CODE}").raise_for_status()

        def client_put(_n: int) -> None:
            code = f"BENCH-{next(unique)}"
            client.upsert_customer(customer(code), idempotency_key=code)

        def bare_put(_n: int) -> None:
            code = f"BENCH-{next(unique)}"
            bare.put(
                f"/customers/{code}",
                content=json.dumps(customer(code)).encode(),
                headers={"Idempotency-Key": code},
            ).raise_for_status()

        cases = [
            ("customers.get (read)", client_get, bare_get),
            ("customers.upsert (write)", client_put, bare_put),
        ]
        for threads in (1, 4):
            for name, ours, theirs in cases:
                ours_rates, bare_rates = [], []
                for _ in range(rounds):
                    ours_rates.append(rate(ours, threads, seconds))
                    bare_rates.append(rate(theirs, threads, seconds))
                rows.append(
                    (name, threads, statistics.median(ours_rates), statistics.median(bare_rates))
                )
    return rows


def overhead(rounds: int, calls: int = 5000) -> tuple[float, float]:
    """Microseconds per call with no network (``httpx.MockTransport``): (client, bare httpx).

    What the client adds on top of httpx (contract lookup, limiter slot, usage count,
    tenacity, error mapping), measured where loopback and the sandbox cannot blur it.
    """

    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=customer(READ_CODE))

    base = "http://ecolix.invalid/api/v1"
    with (
        EcolixClient(base, "t", transport=httpx.MockTransport(answer)) as client,
        httpx.Client(base_url=base, transport=httpx.MockTransport(answer)) as bare,
    ):
        cases: list[Callable[[], object]] = [
            lambda: client.get_customer(READ_CODE),
            lambda: bare.get(f"/customers/{READ_CODE}").json(),
        ]
        timings: list[list[float]] = [[], []]
        for _ in range(rounds):
            for case, timing in zip(cases, timings, strict=True):
                began = time.perf_counter()
                for _ in range(calls):
                    case()
                timing.append((time.perf_counter() - began) / calls * 1e6)
    return statistics.median(timings[0]), statistics.median(timings[1])


def window_counts(flights: list[tuple[float, float]], demand_end: float) -> dict[str, float]:
    """Requests per rolling window, while the threads were asking for more than the limit."""
    starts = sorted(sent for sent, _ in flights)
    ends = sorted(answered for _, answered in flights)
    counts = []
    a = starts[0]
    while a + WINDOW <= demand_end:
        counts.append(bisect.bisect_left(starts, a + WINDOW) - bisect.bisect_left(starts, a))
        a += 0.5
    # The server stamps each request somewhere in its flight: the worst window [a, a + 60)
    # holds every request in flight at some moment of it; such a window starts at an answer.
    fullest = max(
        bisect.bisect_left(starts, a + WINDOW) - bisect.bisect_left(ends, a) for a in ends
    )
    return {
        "windows": len(counts),
        "min": min(counts),
        "mean": statistics.fmean(counts),
        "max": max(counts),
        "fullest": fullest,
    }


def throttled(server: SandboxProcess, limit: int, seconds: float) -> dict[str, float]:
    transport = RecordingTransport()
    over = threading.Event()

    def sleep(delay: float) -> None:
        if over.wait(delay):
            raise Stopped

    limiter = RollingWindowLimiter(limit, sleep=sleep)
    with EcolixClient(
        server.base_url, server.token, limiter=limiter, calls_per_minute=limit, transport=transport
    ) as client:
        client.upsert_customer(customer(READ_CODE), idempotency_key="bench-read")
        timer = threading.Timer(seconds, over.set)
        timer.start()
        demand_end = time.perf_counter() + seconds
        hammer(lambda _n: client.get_customer(READ_CODE), threads=4, seconds=seconds)
        timer.join()
        usage = client.usage
    return {
        "requests": usage.calls,
        "throttled": usage.throttled,
        **window_counts(transport.flights, demand_end),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--limit", type=int, default=600, help="agreed calls per minute")
    parser.add_argument("--duration", type=float, default=130.0, help="seconds of throttled run")
    parser.add_argument(
        "--round-seconds", type=float, default=1.0, help="seconds per unthrottled round"
    )
    parser.add_argument("--rounds", type=int, default=3, help="unthrottled rounds per case")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="edigw-bench-client-"))

    free = launch(folder, "free", HIGH_RATE_LIMIT)
    try:
        rows = unthrottled(free, args.round_seconds, args.rounds)
    finally:
        free.stop()
    print("Unthrottled, one shared client, sandbox on loopback:")
    print("| operation | threads | edigw client calls/s | bare httpx calls/s | client / bare |")
    print("|---|---:|---:|---:|---:|")
    for name, threads, ours, theirs in rows:
        print(f"| {name} | {threads} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.0%} |")

    ours, theirs = overhead(args.rounds)
    print()
    print("Client cost per call without network (MockTransport), median of rounds:")
    print("| edigw client µs/call | bare httpx µs/call | added by the client |")
    print("|---:|---:|---:|")
    print(f"| {ours:.0f} | {theirs:.0f} | {ours - theirs:.0f} µs |")

    limited = launch(folder, "limited", f"{args.limit}/minute")
    try:
        result = throttled(limited, args.limit, args.duration)
    finally:
        limited.stop()
    print()
    print(
        f"Agreement {args.limit} calls/min, the sandbox enforcing the same, 4 threads, {args.duration:.0f} s:"
    )
    print("| measure | value |")
    print("|---|---:|")
    print(f"| requests sent | {result['requests']:.0f} |")
    print(f"| 429 answers | {result['throttled']:.0f} |")
    print(
        f"| requests sent per rolling 60 s window, min / mean / max ({result['windows']:.0f} windows, every 0.5 s) | "
        f"{result['min']:.0f} / {result['mean']:.1f} / {result['max']:.0f} |"
    )
    print(f"| fullest 60 s window the server could have counted | {result['fullest']:.0f} |")
    print(f"| mean window / limit | {result['mean'] / args.limit:.1%} |")


if __name__ == "__main__":
    main()

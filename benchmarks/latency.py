"""Under real latency: documents/s against a slow Ecolix, and the call budget used in full.

    python benchmarks/latency.py [throughput|budget|all] [--latency 50ms] [--quick]

``throughput``: the sandbox answers every call 50 ms late (``edigw sandbox --latency``) and
has no rate limit; 500 web-shop order files of 2 orders are dropped at once. Prints
documents/s: with one call at a time per sender, 4 senders cannot pass 4 / 0.05 = 80/s.
``--files 1 --orders-per-file 2000``: one big file instead, whose orders (distinct keys) are
sent concurrently; ``--ordered`` gives the flow ``ordered: true`` (one document of a file at
a time, in file order), what every flow did before heads per business key.

``budget``: the same latency, and an agreement of 600 calls a minute on both sides (the
sandbox answers 429 above it; the gateway's ``calls_per_minute`` is 600); 1,500 files, 3,000
documents. Prints the time from the start until the last source moved, against the floor the
agreement sets, and the 429 answers the gateway received (counted by its Ecolix client on
every answer: ``usage.throttled``). Two floors are printed: the issue's, documents / rate
(5 minutes for 3,000 at 600/min), and the rolling window's, which lets the first minute's
600 calls go at once, so that call n can go at ``(n - 1) // 600`` minutes: 4 minutes and the
time of the last 600 calls. Then where the time above the rolling floor went
(``budget_trace``): start-up, the time the first window's calls took to send, how late each
later call started after its slot came free, each window's spread, and the tail.

The gateway runs in threads of this process (as ``edigw run`` builds it), the sandbox in its
own process. Figures are printed with the machine's load, never asserted.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from budget_trace import TracedLedger, budget_breakdown
from harness import (
    GatewayRun,
    gateway_run,
    goal,
    load_line,
    order_workspace,
    poll_line,
    run_line,
    say,
    senders_arg,
    start_sandbox,
)

from edigw.ecolix.limiter import LocalLedger
from edigw.pipeline.assembly import Parts
from edigw.pipeline.concurrency import Senders
from edigw.pipeline.senders import DEFAULT_SENDERS

ORDERS_PER_FILE = 2
UNLIMITED_AGREEMENT = 100_000


def drop_and_run(
    folder: Path,
    *,
    files: int,
    latency: str,
    rate_limit: str,
    calls_per_minute: int,
    senders: Senders,
    orders_per_file: int = ORDERS_PER_FILE,
    ordered: bool = False,
    trace: TracedLedger | None = None,
) -> GatewayRun:
    sandbox = start_sandbox(folder / "sandbox", rate_limit=rate_limit, latency=latency)
    try:
        ws = order_workspace(
            folder,
            base_url=sandbox.base_url,
            token=sandbox.token,
            files=files,
            orders=orders_per_file,
            prefix="L",
            calls_per_minute=calls_per_minute,
            ordered=ordered,
        )
        inbox = ws.inbox("webshop", "orders")
        say(f"{files} files dropped; before the run: {load_line()}")
        return gateway_run(
            ws,
            sandbox,
            [inbox],
            docs=files * orders_per_file,
            senders=senders,
            watch_polls=True,
            progress=lambda t: say(f"  ... {t:.0f} s, {load_line()}"),
            prepare=None if trace is None else lambda parts: _trace(parts, trace),
        )
    finally:
        sandbox.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _trace(parts: Parts, trace: TracedLedger) -> None:
    """Stamp every slot the gateway's client takes and gives back (``budget_trace``)."""
    trace.inner = parts.client.limiter.ledger
    parts.client.limiter.ledger = trace


def throughput(
    work: Path,
    *,
    files: int,
    latency: str,
    senders: Senders,
    orders_per_file: int = ORDERS_PER_FILE,
    ordered: bool = False,
) -> None:
    say(
        f"throughput: {files} files x {orders_per_file} orders, every answer {latency} late, "
        f"no rate limit, {senders} senders{', ordered: true' if ordered else ''}"
    )
    run = drop_and_run(
        work / "throughput",
        files=files,
        latency=latency,
        rate_limit="1000000/minute",
        calls_per_minute=UNLIMITED_AGREEMENT,
        senders=senders,
        orders_per_file=orders_per_file,
        ordered=ordered,
    )
    say(run_line(f"at {latency}", run))
    say(run.in_flight)
    say(poll_line(run))
    say(
        f"{run.docs / run.wall:.0f} documents/s at {latency} a call "
        f"{goal('at least 150 at 50 ms', full=(files, orders_per_file, latency) == (500, 2, '50ms'))}"
    )


def budget(work: Path, *, files: int, latency: str, per_minute: int, senders: Senders) -> None:
    docs = files * ORDERS_PER_FILE
    say(
        f"budget: {files} files x {ORDERS_PER_FILE} orders = {docs} documents, every answer "
        f"{latency} late, an agreement of {per_minute} calls a minute (sandbox and gateway), "
        f"{senders} senders"
    )
    trace = TracedLedger(inner=LocalLedger())
    run = drop_and_run(
        work / "budget",
        files=files,
        latency=latency,
        rate_limit=f"{per_minute}/minute",
        calls_per_minute=per_minute,
        senders=senders,
        trace=trace,
    )
    say(run_line(f"at {per_minute}/min", run))
    say(run.in_flight)
    say(poll_line(run))
    floor = 60.0 * docs / per_minute
    rolling_floor = 60.0 * ((docs - 1) // per_minute)
    status_429 = run.usage.by_status.get(429, 0)
    say(
        f"{docs} documents in {run.wall:.1f} s: {100 * (run.wall / floor - 1):+.1f}% against the "
        f"floor of documents / rate ({floor:.0f} s) "
        f"{goal('within 2%, 0 x 429', full=(docs, per_minute) == (3000, 600))}, "
        f"{run.wall - rolling_floor:+.1f} s after the rolling window's first possible start of "
        f"the last call ({rolling_floor:.0f} s); {status_429} x 429 (client counted "
        f"{run.usage.throttled} throttled; goal 0), {run.usage.retries} retries, "
        f"{run.usage.waited_seconds:.0f} s waited for the budget, {run.usage.calls} calls"
    )
    for line in budget_breakdown(
        trace, t0=run.started, wall=run.wall, calls=per_minute, period=60.0
    ):
        say(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["throughput", "budget", "all"], default="all")
    parser.add_argument("--latency", default="50ms", help="Each answer's delay (default 50ms).")
    parser.add_argument("--files", type=int, default=500, help="throughput: files dropped.")
    parser.add_argument(
        "--budget-files", type=int, default=1500, help="budget: files dropped (2 orders each)."
    )
    parser.add_argument("--per-minute", type=int, default=600, help="budget: the agreement.")
    parser.add_argument("--senders", type=senders_arg, default=DEFAULT_SENDERS)
    parser.add_argument(
        "--orders-per-file",
        type=int,
        default=ORDERS_PER_FILE,
        help="throughput: orders in each file (one big file: --files 1 --orders-per-file 2000).",
    )
    parser.add_argument(
        "--ordered",
        action="store_true",
        help="throughput: the flow says ordered: true (one document of a file at a time).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="throughput: 100 files; budget: 120 files at 120 calls a minute (about 2 minutes).",
    )
    args = parser.parse_args()
    if args.quick:
        args.files, args.budget_files, args.per_minute = 100, 120, 120
    work = Path(tempfile.mkdtemp(prefix="edigw-latency-"))
    try:
        if args.mode in ("throughput", "all"):
            throughput(
                work,
                files=args.files,
                latency=args.latency,
                senders=args.senders,
                orders_per_file=args.orders_per_file,
                ordered=args.ordered,
            )
        if args.mode in ("budget", "all"):
            budget(
                work,
                files=args.budget_files,
                latency=args.latency,
                per_minute=args.per_minute,
                senders=args.senders,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"after the runs: {load_line()}")


if __name__ == "__main__":
    main()

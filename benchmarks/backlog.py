"""Backlogs: does a big drop go as fast as a small one, and do the shipped defaults keep up?

    python benchmarks/backlog.py scale [--small 500] [--large 20000] [--quick]
    python benchmarks/backlog.py defaults [--files 2000] [--quick]

``scale``: the same kind of files (web-shop order CSV, 2 orders each) dropped at once into one
inbox, a small drop and then a large one, with the benchmark settings (ready at once, a look
every 50 ms, up to 1,000 files a look). Prints files/s for each, the large/small ratio, and
the share of the wall time the poller spent polling: in the channel's scan (listing the folder
and asking the journal, once a poll, about the files new since the last) and in whole polls
(the scan plus archiving and journalling what it took). The poller is timed by wrapping its
methods from here.

``defaults``: a backlog (2,000 files) with the flow options as shipped, that is the defaults
of ``edigw.yaml`` that the starter configuration also writes out (readiness stable 2 s, a look
every 5 s, 100 files a look), against the benchmark settings: files/s of each and the ratio.
The Ecolix agreement is unlimited in both, so that the call budget (``latency.py``) is not
what is measured.

The gateway runs in threads of this process (as ``edigw run`` builds it), the sandbox in its
own process. Figures are printed with the machine's load, never asserted.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from harness import (
    BENCH_FLOW,
    ROOT,
    GatewayRun,
    gateway_run,
    goal,
    load_line,
    poll_line,
    run_line,
    say,
    senders_arg,
    start_sandbox,
)

from edigw.config import (
    DEFAULT_MAX_FILES_PER_POLL,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_STABLE_INTERVAL,
)
from edigw.pipeline.concurrency import Senders
from edigw.pipeline.senders import DEFAULT_SENDERS
from tests.fixtures.gateway import inbound_flow, write_workspace
from tests.support.orderfiles import write_order_files

ORDERS_PER_FILE = 2
SHIPPED_OPTIONS = ("readiness", "poll_interval", "max_files_per_poll")


def one_drop(
    folder: Path, *, files: int, flow_options: dict[str, Any], senders: Senders, watch_polls: bool
) -> GatewayRun:
    """``files`` order files dropped at once, then the gateway started on them."""
    sandbox = start_sandbox(folder / "sandbox")
    try:
        flow = inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders", **flow_options)
        if not flow_options:  # the shipped defaults: none of the options the fixture sets
            for option in SHIPPED_OPTIONS:
                flow.pop(option, None)
        ws = write_workspace(
            folder / "gw",
            base_url=sandbox.base_url,
            token=sandbox.token,
            flows={"webshop": {"orders": flow}},
        )
        inbox = ws.inbox("webshop", "orders")
        write_order_files(inbox, files=files, orders_per_file=ORDERS_PER_FILE, prefix="K")
        say(f"{files} files dropped; before the run: {load_line()}")
        return gateway_run(
            ws,
            sandbox,
            [inbox],
            docs=files * ORDERS_PER_FILE,
            senders=senders,
            watch_polls=watch_polls,
            progress=lambda t: say(f"  ... {t:.0f} s, {load_line()}"),
        )
    finally:
        sandbox.stop()
        shutil.rmtree(folder, ignore_errors=True)


def scale(work: Path, *, small: int, large: int, senders: Senders) -> None:
    say(
        f"scale: {small} then {large} web-shop order files ({ORDERS_PER_FILE} orders each) "
        f"dropped at once; benchmark settings {BENCH_FLOW}; {senders} senders"
    )
    runs = {}
    for files in (small, large):
        run = one_drop(
            work / f"scale-{files}",
            files=files,
            flow_options=BENCH_FLOW,
            senders=senders,
            watch_polls=True,
        )
        runs[files] = run
        say(run_line(f"{files} files", run))
        say(poll_line(run))
    say("")
    say(
        "| files in one drop | files/s | share of wall time in the channel's scan | in whole polls |"
    )
    say("|---|---|---|---|")
    for files, run in runs.items():
        p = run.polls
        assert p is not None
        say(
            f"| {files:,} | {files / run.wall:.0f} | {100 * p.scan_seconds / run.wall:.1f}% "
            f"| {100 * p.poll_seconds / run.wall:.1f}% |"
        )
    ratio = (large / runs[large].wall) / (small / runs[small].wall)
    say(
        f"{large:,} files ran at {100 * ratio:.0f}% of the files/s of {small:,} "
        f"{goal('at least 90%', full=(small, large) == (500, 20_000))}"
    )


def shipped_flow_options() -> dict[str, Any]:
    """The flow options as shipped: nothing set, so the defaults of ``edigw.yaml`` apply.
    Checked against what the starter configuration writes out, so that a change to either is
    seen here."""
    starter = yaml.safe_load((ROOT / "edigw" / "starter.yaml").read_text(encoding="utf-8"))
    written = starter["partners"]["webshop"]["flows"]["customers"]
    said = (
        f"readiness {written['readiness']}, poll_interval {written['poll_interval']}, "
        f"max_files_per_poll {written['max_files_per_poll']}"
    )
    say(
        f"shipped defaults: readiness stable {DEFAULT_STABLE_INTERVAL:g} s, poll_interval "
        f"{DEFAULT_POLL_INTERVAL:g} s, max_files_per_poll {DEFAULT_MAX_FILES_PER_POLL} "
        f"(the starter configuration writes: {said})"
    )
    return {}


def defaults(work: Path, *, files: int, senders: Senders) -> None:
    shipped = shipped_flow_options()
    say(f"defaults: a backlog of {files} order files, shipped defaults then benchmark settings")
    with_defaults = one_drop(
        work / "shipped",
        files=files,
        flow_options=shipped,
        senders=senders,
        watch_polls=True,
    )
    say(run_line("shipped defaults", with_defaults))
    say(poll_line(with_defaults))
    bench = one_drop(
        work / "bench", files=files, flow_options=BENCH_FLOW, senders=senders, watch_polls=True
    )
    say(run_line(f"benchmark settings {BENCH_FLOW}", bench))
    say(poll_line(bench))
    shipped_rate, bench_rate = files / with_defaults.wall, files / bench.wall
    say("")
    say("| flow settings | wall | files/s | machine busy (CPUs) |")
    say("|---|---|---|---|")
    for label, run in (("shipped defaults", with_defaults), ("benchmark settings", bench)):
        say(
            f"| {label} | {run.wall:.1f} s | {files / run.wall:.1f} | "
            f"{run.machine.busy / run.wall:.2f} |"
        )
    say(
        f"the shipped defaults ran at {100 * shipped_rate / bench_rate:.0f}% of the throughput "
        f"of the benchmark settings {goal('at least 80%', full=files == 2000)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["scale", "defaults"])
    parser.add_argument("--small", type=int, default=500, help="scale: the small drop.")
    parser.add_argument("--large", type=int, default=20_000, help="scale: the large drop.")
    parser.add_argument("--files", type=int, default=2000, help="defaults: the backlog.")
    parser.add_argument("--senders", type=senders_arg, default=DEFAULT_SENDERS)
    parser.add_argument(
        "--quick", action="store_true", help="scale: 200 vs 2,000 files; defaults: 300 files."
    )
    args = parser.parse_args()
    if args.quick:
        args.small, args.large, args.files = 200, 2000, 300
    work = Path(tempfile.mkdtemp(prefix="edigw-backlog-"))
    try:
        if args.mode == "scale":
            scale(work, small=args.small, large=args.large, senders=args.senders)
        else:
            defaults(work, files=args.files, senders=args.senders)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"after the runs: {load_line()}")


if __name__ == "__main__":
    main()

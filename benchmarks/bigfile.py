"""One big file: peak memory of the gateway taking it through, and of ``mapping test`` on it.

    python benchmarks/bigfile.py [--orders 40000] [--quick]

Writes one web-shop order CSV (the shipped ``ecommerce-orders-csv`` format, one row per order
line, 1 to 9 lines an order, 5 on average: 40,000 orders are about 200,000 lines and 35 MB),
then measures two commands, each in its own process, as a user runs them:

1. ``edigw mapping test`` on the file (output thrown away): peak RSS and time.
2. ``edigw run`` (its default senders and processes, the sandbox in its own process, no rate
   limit, no latency): the gateway is started on an empty inbox and, once running, the file
   is moved in. Prints its RSS when idle, its peak RSS over the whole run (with two processes,
   the sum of the intake and sending processes' peaks, each given: a bound of what the two
   held at once), the time from the drop until the source
   was moved to ``done/``, documents/s, and the orders the sandbox holds afterwards.

Peak RSS is the kernel's high-water mark for the process (``VmHWM`` of the running gateway;
``ru_maxrss`` of ``mapping test``, run from a small wrapper so that the benchmark's own size,
copied at fork, does not count), exact whatever the sampling; a 0.2 s RSS sampler is printed
beside the gateway's as a cross-check.
Figures are printed with the machine's load, never asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from harness import (
    BENCH_FLOW,
    ROOT,
    MachineCpu,
    RssSampler,
    high_water_rss,
    load_line,
    peak_rss_run,
    process_cpu,
    quiet_note,
    say,
    start_sandbox,
)

from edigw.journal.store import Journal
from tests.fixtures.gateway import MAPPINGS, inbound_flow, write_workspace
from tests.support.orderfiles import HEADER, OrderFactory

MAPPING = MAPPINGS / "ecommerce-orders-csv.yaml"
MAX_LINES = 9  # 1..9 lines an order: 5 on average
TIMEOUT = 3 * 3600.0
MB = 1024 * 1024


def write_big_file(path: Path, orders: int) -> int:
    """``orders`` orders into ``path``, written as they are made; returns the line count."""
    factory = OrderFactory.from_seed()
    rng = random.Random(15)
    lines = 0
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        f.write(HEADER + "\r\n")
        for n in range(orders):
            rows = factory.order_rows(f"BIG-{n:06d}", rng, max_lines=MAX_LINES)
            f.write("\r\n".join(rows) + "\r\n")
            lines += len(rows)
    return lines


def env() -> dict[str, str]:
    """This tree first on the path, in the children too."""
    found = os.environ.copy()
    found["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), found.get("PYTHONPATH")]))
    return found


def mapping_test(path: Path, log: Path) -> tuple[float, float, int]:
    """``edigw mapping test`` on ``path``: (peak RSS in MB, seconds, exit code)."""
    command = [sys.executable, "-m", "edigw.cli", "mapping", "test", str(MAPPING), str(path)]
    return peak_rss_run(command, env=env(), log=log)


def wait_for(
    condition: Callable[[], bool], what: str, timeout: float, process: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise SystemExit(f"the gateway exited ({process.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def file_parsed(journal_url: str) -> bool:
    """Whether the gateway journalled the whole file (``parsed`` or further)."""
    journal = Journal.open(journal_url, create=False)
    try:
        return any(row.state != "received" for row in journal.files(limit=10))
    finally:
        journal.close()


def two_processes(log: Path) -> bool:
    """Whether ``edigw run`` said it runs its senders in a process of their own."""
    return "in a process of their own" in log.read_text(errors="replace")


def gateway(work: Path, big: Path, orders: int, *, until_parsed: float | None = None) -> float:
    """``edigw run`` taking ``big`` in; prints what it did and returns its peak RSS in MB.

    With ``until_parsed``, stops that many seconds after the file is journalled instead of
    waiting for every document to be sent (a busy machine sends 40,000 slowly): the peak
    then covers the intake and the start of the sending."""
    sandbox = start_sandbox(work / "sandbox")
    try:
        ws = write_workspace(
            work / "gw",
            base_url=sandbox.base_url,
            token=sandbox.token,
            flows={
                "webshop": {
                    "orders": inbound_flow(
                        "ecommerce-orders-csv.yaml", "webshop", "orders", **BENCH_FLOW
                    )
                }
            },
        )
        inbox = ws.inbox("webshop", "orders")
        before = sandbox.counts().get("order", 0)
        log = work / "gateway.log"
        children_env = {**env(), **ws.environ}
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "edigw.cli", "run", "-c", str(ws.config_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=children_env,
                cwd=ws.root,
            )
        try:
            wait_for(
                lambda: "edigw running" in log.read_text(errors="replace"),
                "the gateway to start",
                120,
                process,
            )
            if two_processes(log):
                wait_for(
                    lambda: "sending process" in log.read_text(errors="replace"),
                    "the sending process to start",
                    120,
                    process,
                )
            time.sleep(1.0)  # let start-up settle before reading the idle RSS
            pids = [process.pid, *(c.pid for c in psutil.Process(process.pid).children())]
            each = [psutil.Process(pid).memory_info().rss for pid in pids]
            idle = sum(each)
            parts = " + ".join(
                f"{psutil.Process(pid).name()} {rss / MB:.0f}"
                for pid, rss in zip(pids, each, strict=True)
            )
            say(
                f"gateway running ({len(pids)} process{'es' if len(pids) > 1 else ''}), idle RSS {idle / MB:.0f} MB "
                f"({parts}); before the drop: {load_line()}"
            )
            sandbox_cpu0 = process_cpu(sandbox.pid or 0)
            gateway_cpu0 = sum(process_cpu(pid) for pid in pids)
            with RssSampler(process.pid) as sampler, MachineCpu() as machine:
                t0 = time.perf_counter()
                os.replace(big, inbox / big.name)  # one rename: the whole file appears at once
                if until_parsed is None:
                    wait_for(
                        lambda: not (inbox / big.name).exists(),
                        "the file to be done",
                        TIMEOUT,
                        process,
                    )
                else:
                    url = ws.load().journal_url
                    wait_for(lambda: file_parsed(url), "the file to be parsed", TIMEOUT, process)
                    say(f"file journalled {time.perf_counter() - t0:.1f} s after the drop")
                    time.sleep(until_parsed)
                wall = time.perf_counter() - t0
            sandbox_cpu = process_cpu(sandbox.pid or 0) - sandbox_cpu0
            cpu = sum(process_cpu(pid) for pid in pids) - gateway_cpu0
            peaks = [high_water_rss(pid) or 0.0 for pid in pids]
            peak = sum(peaks) if pids else None
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        created = sandbox.counts().get("order", 0) - before
    finally:
        sandbox.stop()
    journal = Journal.open(ws.load().journal_url)
    try:
        states = [row.state for row in journal.files(limit=10)]
    finally:
        journal.close()
    what = (
        "from the drop to the source moved"
        if until_parsed is None
        else f"from the drop to {until_parsed:.0f} s after the file was journalled"
    )
    rate = f", {orders / wall:.0f} documents/s" if until_parsed is None else ""
    say(
        f"edigw run: {wall:.1f} s {what}{rate}; peak RSS {peak or 0:.0f} MB"
        f"{' (' + ' + '.join(f'{p:.0f}' for p in peaks) + ', each process)' if len(peaks) > 1 else ''}"
        f" (sampled peak of the intake process {sampler.peak / MB:.0f} MB); gateway CPU {1000 * cpu / orders:.2f} ms/doc, sandbox "
        f"CPU {1000 * sandbox_cpu / orders:.2f} ms/doc; machine busy {machine.busy / wall:.2f} "
        f"CPUs ({machine.others(cpu, sandbox_cpu) / wall:.2f} by other processes); file "
        f"{', '.join(states)}; {created} orders created in the sandbox; exit code "
        f"{process.returncode}{quiet_note(machine.others(cpu, sandbox_cpu) / wall)}"
    )
    return peak if peak is not None else sampler.peak / MB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=40_000)
    parser.add_argument("--quick", action="store_true", help="2,000 orders: a quick check.")
    parser.add_argument(
        "--skip-gateway", action="store_true", help="Only mapping test (no sandbox, no gateway)."
    )
    parser.add_argument(
        "--until-parsed",
        type=float,
        metavar="SECONDS",
        help="Stop the gateway SECONDS after the file is journalled instead of once it is done "
        "(the peak then covers the intake and the start of the sending).",
    )
    args = parser.parse_args()
    if args.quick:
        args.orders = 2000
    work = Path(tempfile.mkdtemp(prefix="edigw-bigfile-"))
    try:
        big = work / "orders-big.csv"
        lines = write_big_file(big, args.orders)
        say(
            f"one file: {args.orders:,} orders, {lines:,} lines + header, "
            f"{big.stat().st_size / 1e6:.1f} MB ({MAPPING.name})"
        )
        small = work / "orders-one.csv"
        write_big_file(small, 1)
        floor, _, _ = mapping_test(small, work / "mapping-test-one.log")
        say(
            f"edigw mapping test on a one-order file (imports and start-up): peak RSS {floor:.0f} MB"
        )
        say(f"mapping test, before it: {load_line()}")
        rss, wall, code = mapping_test(big, work / "mapping-test.log")
        say(
            f"edigw mapping test: peak RSS {rss:.0f} MB, {wall:.1f} s "
            f"({args.orders / wall:.0f} documents/s), exit code {code}"
        )
        peak = (
            None
            if args.skip_gateway
            else gateway(work, big, args.orders, until_parsed=args.until_parsed)
        )
        say("")
        say("| command | peak RSS | issue 15 goal (40,000 orders) |")
        say("|---|---|---|")
        say(f"| edigw mapping test | {rss:.0f} MB | at most 100 MB |")
        if peak is not None:
            say(f"| edigw run (the gateway) | {peak:.0f} MB | at most 120 MB |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"after the runs: {load_line()}")


if __name__ == "__main__":
    main()

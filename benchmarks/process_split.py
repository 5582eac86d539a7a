"""Taking files in and sending in two processes, against one (a design question, issue 15).

    python benchmarks/process_split.py [--files 500] [--quick] [--rounds 2]
        [--senders auto] [--split-senders 4]

An experiment backing a design proposal, not a product mode: edigw has no such arrangement and
this script builds it from the gateway's parts for the measurement only. It asks what the
gateway's CPU per document and wall time would gain if the intake (poll, archive, map, journal)
ran in one process and the sending to Ecolix in another, both on one SQLite journal, instead of
today's single process where the poller and the senders share one GIL.

The batch is ``pipeline.py``'s: web-shop CSV files of 2 orders (500, ``--quick`` 50) dropped at
once, the flow settings of ``pipeline_run``, the sandbox in its own process without a rate limit.
Every run has a fresh workspace and a fresh sandbox database (an order number can be created
only once). Two arrangements, interleaved over ``--rounds`` (single, split, single, split):

- single: ``Gateway(parts, senders=--senders)`` as ``edigw run`` builds it, in this process;
- split: ``Gateway(parts, senders=0)`` in this process (pollers, mover, ...), and a child
  process (this script again, on the workspace's ``edigw.yaml``) running ``--split-senders``
  threads that loop on ``send_due`` (5 ms of sleep when nothing is due).

A run is timed from ``gateway.start()`` (the child is started and warmed up before) until every
document is done in the journal, read every 25 ms by a separate read-only ``sqlite3``
connection: the same end for both arrangements. Not the inbox emptied, as in ``pipeline.py``:
in the split arrangement the sources are not moved to ``done/``, since this process's mover
only learns of files finished in the child through its journal round, enabled with several
nodes only. CPU per document: this process's (``os.times`` over the run), the child's (its own
``os.times`` over the run, reported on its stdout), their total, and the sandbox's (``psutil``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx
from harness import load_line, order_workspace, senders_arg
from pipeline import TOKEN, sandbox_cpu, start_sandbox

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edigw.config import GatewayConfig  # noqa: E402
from edigw.pipeline.assembly import open_parts  # noqa: E402
from edigw.pipeline.concurrency import Senders  # noqa: E402
from edigw.pipeline.runtime import Gateway  # noqa: E402
from edigw.pipeline.senders import DEFAULT_SENDERS, send_due  # noqa: E402
from edigw.pipeline.signals import Signals, utc_now  # noqa: E402
from tests.fixtures.gateway import Workspace  # noqa: E402

ORDERS_PER_FILE = 2
TIMEOUT = 600.0  # seconds a run may take before it is given up (a WARNING says so)
IDLE_SLEEP = 0.005  # a child's sender with nothing due sleeps this long


def load_workspace(root: Path) -> GatewayConfig:
    """The configuration of the workspace ``workspace`` wrote in ``root`` (the child's)."""
    return Workspace(root, root / "edigw.yaml", {"ECOLIX_TOKEN": TOKEN}).load()


def sender_child(root: Path, senders: int) -> None:
    """The split arrangement's sending process: ``senders`` threads looping on ``send_due``.

    Prints ``ready`` once its threads run, then reads ``go`` (the run starts) and ``stop`` (every
    document is done) on stdin, and prints its CPU seconds between the two as JSON."""
    with open_parts(load_workspace(root), with_channels=False) as parts:
        signals, stop = Signals(), threading.Event()

        def loop() -> None:
            while not stop.is_set():
                if send_due(parts, signals, clock=utc_now) is None:
                    time.sleep(IDLE_SLEEP)

        threads = [threading.Thread(target=loop, name=f"sender {n}") for n in range(senders)]
        for t in threads:
            t.start()
        try:
            print("ready", flush=True)
            sys.stdin.readline()
            cpu0 = os.times()
            sys.stdin.readline()
            cpu1 = os.times()
        finally:
            stop.set()
            for t in threads:
                t.join()
    cpu = cpu1.user - cpu0.user + cpu1.system - cpu0.system
    print(json.dumps({"cpu": cpu}), flush=True)


def done_documents(journal: Path) -> Callable[[], int]:
    """Documents in state done, read by a plain read-only connection of its own."""
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, check_same_thread=False)
    return lambda: int(
        conn.execute("SELECT count(*) FROM documents WHERE state = 'done'").fetchone()[0]
    )


def orders_created(base_url: str) -> int:
    """Orders the sandbox holds (its admin counts)."""
    root = base_url.removesuffix("/api/v1")
    response = httpx.get(
        f"{root}/_sandbox/counts", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    response.raise_for_status()
    return int(response.json().get("order", 0))


def start_child(root: Path, senders: int) -> subprocess.Popen[str]:
    """The sending process, started and warmed up (its ``ready`` line read)."""
    command = [sys.executable, __file__, "--sender-child", str(root), "--split-senders"]
    child = subprocess.Popen(
        [*command, str(senders)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    if _line(child) != "ready":
        child.kill()
        raise SystemExit("the sender process did not start")
    return child


def _line(child: subprocess.Popen[str]) -> str:
    stdout: IO[str] | None = child.stdout
    return stdout.readline().strip() if stdout is not None else ""


def _tell(child: subprocess.Popen[str], word: str) -> None:
    if child.stdin is not None:
        child.stdin.write(f"{word}\n")
        child.stdin.flush()


def one_run(*, split: bool, files: int, senders: Senders, split_senders: int) -> dict[str, float]:
    """One timed run of an arrangement, on its own workspace and sandbox, removed after."""
    folder = Path(tempfile.mkdtemp(prefix="edigw-split-"))
    sandbox, base_url = start_sandbox(folder)
    child: subprocess.Popen[str] | None = None
    expected = files * ORDERS_PER_FILE
    try:
        ws = order_workspace(
            folder, base_url=base_url, token=TOKEN, files=files, orders=ORDERS_PER_FILE, prefix="B"
        )
        config = ws.load()
        orders0 = orders_created(base_url)
        with open_parts(config) as parts:
            gateway = Gateway(parts, senders=0 if split else senders)
            done = done_documents(Path(config.journal_url.removeprefix("sqlite:///")))
            if split:
                child = start_child(ws.root, split_senders)
            sandbox0 = sandbox_cpu(sandbox)
            cpu0, t0 = os.times(), time.perf_counter()
            if child is not None:
                _tell(child, "go")
            gateway.start()
            try:
                while (finished := done()) < expected and time.perf_counter() - t0 < TIMEOUT:
                    if child is not None and child.poll() is not None:
                        raise SystemExit("the sender process ended during the run")
                    time.sleep(0.025)
                wall, cpu1 = time.perf_counter() - t0, os.times()
                sandbox1 = sandbox_cpu(sandbox)
                child_cpu = 0.0
                if child is not None:
                    _tell(child, "stop")
                    child_cpu = float(json.loads(_line(child))["cpu"])
                    child.wait(30)
            finally:
                gateway.stop()
                gateway.join(30)
        created = orders_created(base_url) - orders0
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        sandbox.terminate()
        sandbox.wait()
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "wall": wall,
        "gateway": cpu1.user - cpu0.user + cpu1.system - cpu0.system,
        "child": child_cpu,
        "sandbox": sandbox1 - sandbox0,
        "docs": expected,
        "done": finished,
        "created": created,
    }


def run_line(label: str, run: dict[str, float]) -> str:
    """What one run achieved, per document."""
    docs = run["docs"]

    def ms(seconds: float) -> str:
        return f"{1000 * seconds / docs:.2f} ms"

    own = run["gateway"] + run["child"]
    processes = (
        f"intake process {ms(run['gateway'])} + sender process {ms(run['child'])} = {ms(own)}"
        if label == "split"
        else f"gateway process {ms(own)}"
    )
    return (
        f"{label}: wall {run['wall']:.2f} s, {docs / run['wall']:.0f} documents/s; CPU per "
        f"document: {processes}; sandbox {ms(run['sandbox'])}; with the sandbox "
        f"{ms(own + run['sandbox'])}"
    )


def check_line(run: dict[str, float]) -> str | None:
    """A WARNING when a run did not do its whole work."""
    if run["done"] >= run["docs"] and run["created"] >= run["docs"]:
        return None
    return (
        f"WARNING: {int(run['done'])} of {int(run['docs'])} documents done in the journal, "
        f"{int(run['created'])} orders created in the sandbox (timeout {TIMEOUT:.0f} s)"
    )


def print_medians(runs: dict[str, list[dict[str, float]]]) -> None:
    """Medians of each arrangement, and split / single."""

    def median(label: str, measure: Callable[[dict[str, float]], float]) -> float:
        return statistics.median(measure(run) for run in runs[label])

    measures: list[tuple[str, Callable[[dict[str, float]], float], str]] = [
        ("wall", lambda r: r["wall"], "s"),
        (
            "CPU per document, edigw (all processes)",
            lambda r: _per_doc(r, "gateway", "child"),
            "ms",
        ),
        ("CPU per document, with the sandbox", lambda r: _per_doc(r, *_ALL), "ms"),
    ]
    print("| median | single | split | split / single |")
    print("|---|---|---|---|")
    for name, measure, unit in measures:
        single, split = median("single", measure), median("split", measure)
        print(f"| {name} | {single:.2f} {unit} | {split:.2f} {unit} | {split / single:.2f} |")


_ALL = ("gateway", "child", "sandbox")


def _per_doc(run: dict[str, float], *keys: str) -> float:
    return 1000 * sum(run[k] for k in keys) / run["docs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="50 files: a quick check.")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--senders", type=senders_arg, default=DEFAULT_SENDERS, help="the single process's"
    )
    parser.add_argument(
        "--split-senders", type=int, default=4, help="sender threads of the sending process"
    )
    parser.add_argument("--sender-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sender_child is not None:
        sender_child(args.sender_child, args.split_senders)
        return
    if args.quick:
        args.files = 50
    print(
        f"process split: {args.files} CSV files, {args.files * ORDERS_PER_FILE} orders; single: "
        f"one process, {args.senders} senders; split: intake process + sender process of "
        f"{args.split_senders} threads; SQLite journal, sandbox in its own process, "
        f"{os.cpu_count()} cores"
    )
    print(
        "the end of a run is every document done in the journal; in the split arrangement the "
        "sources stay in the inbox (its mover learns of no file finished in the other process)"
    )
    runs: dict[str, list[dict[str, float]]] = {"single": [], "split": []}
    for _ in range(args.rounds):
        for label in runs:
            print(f"before the run: {load_line()}", flush=True)
            run = one_run(
                split=label == "split",
                files=args.files,
                senders=args.senders,
                split_senders=args.split_senders,
            )
            runs[label].append(run)
            print(run_line(label, run), flush=True)
            if (warning := check_line(run)) is not None:
                print(warning, flush=True)
    print(f"after the runs: {load_line()}")
    print_medians(runs)


if __name__ == "__main__":
    main()

"""Throughput of 1, 2 and 3 `edigw run` nodes on one PostgreSQL journal, side by side (issue 14).

    python benchmarks/nodes.py [--rounds 2] [--files 240] [--latency 50ms] [--senders 4]
                               [--no-sqlite] [--quick]

The work is I/O bound: the sandbox answers every call ``--latency`` late (``edigw sandbox
--latency``) and has no rate limit, and every node's ``calls_per_minute`` is 100,000, so what a
node can do is bounded by its senders (``--senders``, 4 by default, one call in flight each:
4 / 0.05 s = 80 documents/s) and nodes should add throughput. Six inbound order flows, each with an inbox the nodes share (as
``tests/support/nodes.py`` sets them up for the failover tests), so that leadership spreads.

Each round is 1, 2 or 3 nodes, in the order 1, 2, 3, 1, 2, 3, ... (``--rounds`` times each), on
a fresh PostgreSQL schema (``EDIGW_TEST_POSTGRES_URL``, default the local ``test`` database;
dropped after the round) and a freshly seeded sandbox. The nodes start, the flows spread between
them, then ``--files`` files of 2 orders are moved into the six inboxes at once; the round's time
runs from that drop until every file is final in the journal. Prints the machine's load before
each round, documents/s, the CPU the nodes, the sandbox and the rest of the machine used, then a
summary of the ratios against one node; and, unless ``--no-sqlite``, the same batch on one node
with a SQLite journal, for the PostgreSQL/SQLite ratio. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from harness import MachineCpu, load_line, process_cpu, say, start_sandbox
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from edigw.journal import Journal
from tests.fixtures.databases import POSTGRES_URL, postgres_schema_url
from tests.fixtures.sandbox import SandboxProcess
from tests.support.nodes import FINAL, Cluster, Node, flow_names, leases, order_inbox_flow
from tests.support.orderfiles import write_order_files

FLOWS = [f"orders{n}" for n in range(6)]
ORDERS_PER_FILE = 2
TAKEOVER = 5.0  # seconds: leases renewed every second, so the flows spread within seconds
TIMEOUT = 900.0
PG_PORT = make_url(POSTGRES_URL).port or 5432


@dataclass(frozen=True, slots=True)
class Round:
    """One batch through ``nodes`` nodes: from the drop until every file was final."""

    nodes: int
    journal: str  # "postgresql" or "sqlite"
    docs: int
    wall: float
    nodes_cpu: float  # CPU-seconds of every node process during the round
    sandbox_cpu: float
    postgres_cpu: float  # the PostgreSQL backends serving the nodes' connections
    others_cpu: float  # the rest of the machine (other processes)
    states: Counter[str]

    @property
    def rate(self) -> float:
        return self.docs / self.wall


def flows_config(inboxes: Path) -> dict[str, dict[str, object]]:
    """Six order flows, each on its shared inbox; a file is ready when seen (it is moved in)."""
    flows: dict[str, dict[str, object]] = {}
    for name in FLOWS:
        (inboxes / name).mkdir(parents=True)
        flows[name] = {
            **order_inbox_flow(inboxes / name),
            "readiness": {"mode": "min_age", "seconds": 0},
            "max_files_per_poll": 1000,
        }
    return flows


def stage(folder: Path, files: int) -> dict[str, list[Path]]:
    """The batch written beside the inboxes, split over the flows, ready to be moved in."""
    staged: dict[str, list[Path]] = {}
    for n, name in enumerate(FLOWS):
        share = files // len(FLOWS) + (1 if n < files % len(FLOWS) else 0)
        write_order_files(
            folder / name, files=share, orders_per_file=ORDERS_PER_FILE, prefix=f"N{n}x", seed=n
        )
        staged[name] = sorted((folder / name).glob("*.csv"))
    return staged


class StateWatch:
    """The files' states in the journal, asked every 0.1 s while a round runs.

    One connection and one grouped count: the watch runs on the same two cores as the nodes,
    so it must cost next to nothing (opening a journal and listing its files each time took
    a third of a CPU, taken from the nodes).
    """

    def __init__(self, url: str) -> None:
        self._engine = create_engine(url, poolclass=NullPool)
        self._conn = self._engine.connect()

    def states(self) -> Counter[str]:
        rows = self._conn.execute(text("SELECT state, count(*) FROM files GROUP BY state"))
        counts = Counter({state: int(n) for state, n in rows})
        self._conn.rollback()  # no snapshot held between looks
        return counts

    def close(self) -> None:
        self._conn.close()
        self._engine.dispose()


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def spread(url: str, started: list[Node]) -> Callable[[], bool]:
    """True once every flow is led and each node leads its share (at most ceil(6 / nodes))."""
    share = -(-len(FLOWS) // len(started))
    names = {node.name for node in started}

    def check() -> bool:
        held = Counter(leases(url, flow_names(FLOWS)).values())
        return (
            sum(held.values()) == len(FLOWS) and set(held) == names and max(held.values()) <= share
        )

    return check


def backends(admin: psycopg.Connection[Any] | None, pids: list[int]) -> dict[int, float]:
    """CPU-seconds so far of each PostgreSQL backend serving one of the nodes ``pids``: their
    connections matched to ``pg_stat_activity`` by client port (the server is local)."""
    if admin is None:
        return {}
    ports = {
        c.laddr.port
        for pid in pids
        for c in psutil.Process(pid).net_connections("tcp")
        if c.raddr and c.raddr.port == PG_PORT
    }
    rows = admin.execute("SELECT pid, client_port FROM pg_stat_activity").fetchall()
    cpu: dict[int, float] = {}
    for backend, port in rows:
        if port in ports:
            with contextlib.suppress(psutil.NoSuchProcess):
                cpu[backend] = process_cpu(backend)
    return cpu


def run_round(
    work: Path,
    sandbox: SandboxProcess,
    url: str,
    *,
    nodes: int,
    files: int,
    senders: str,
    admin: psycopg.Connection[Any] | None = None,
) -> Round:
    """Start ``nodes`` nodes on ``url``, drop ``files`` files once the flows are spread, time
    them until all are final, stop the nodes."""
    cluster = Cluster(
        work,
        sandbox,
        url,
        flows_config(work / "inbox"),
        run_args=("--senders", senders),
        takeover=TAKEOVER,
    )
    staged = stage(work / "staged", files)
    started = [cluster.start(f"node-{n}") for n in range(nodes)]
    try:
        for node in started:
            wait_for(node.running, timeout=60, what=f"{node.root.name} running")
        if make_url(url).get_backend_name() == "postgresql":  # SQLite: one node, no leases
            wait_for(spread(url, started), timeout=60, what="the flows spread over the nodes")
        pids = [node.process.pid for node in started]
        before = [process_cpu(pid) for pid in pids]
        sandbox_pid = sandbox.pid or 0
        sandbox_before = process_cpu(sandbox_pid)
        pg_before = backends(admin, pids)
        with closing(StateWatch(url)) as watch, MachineCpu() as machine:
            t0 = time.perf_counter()
            for name, paths in staged.items():
                for path in paths:
                    os.replace(path, work / "inbox" / name / path.name)

            def all_final() -> bool:
                states = watch.states()
                return sum(states.values()) >= files and set(states) <= FINAL

            wait_for(all_final, timeout=TIMEOUT, what="every file final in the journal")
            wall = time.perf_counter() - t0
            nodes_cpu = sum(process_cpu(pid) - b for pid, b in zip(pids, before, strict=True))
            sandbox_cpu = process_cpu(sandbox_pid) - sandbox_before
            pg_after = backends(admin, pids)
            postgres_cpu = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
            states = watch.states()
    finally:
        for node in started:
            if node.alive():
                node.process.terminate()
        for node in started:
            try:
                node.process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a node slow to stop is killed
                node.kill()
    return Round(
        nodes=nodes,
        journal=make_url(url).get_backend_name(),
        docs=files * ORDERS_PER_FILE,
        wall=wall,
        nodes_cpu=nodes_cpu,
        sandbox_cpu=sandbox_cpu,
        postgres_cpu=postgres_cpu,
        others_cpu=machine.others(nodes_cpu, sandbox_cpu, postgres_cpu),
        states=states,
    )


def _conninfo() -> str:
    return make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def one_round(
    work: Path, *, nodes: int, files: int, latency: str, senders: str, sqlite: bool = False
) -> Round:
    """A round on a fresh sandbox and a fresh journal (a PostgreSQL schema, or a SQLite file)."""
    work.mkdir(parents=True)
    sandbox = start_sandbox(work / "sandbox", latency=latency)
    try:
        if sqlite:
            url = f"sqlite:///{work / 'journal.sqlite'}"
            Journal.open(url).close()
            return run_round(work, sandbox, url, nodes=nodes, files=files, senders=senders)
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        url = postgres_schema_url(schema)
        with psycopg.connect(_conninfo(), autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE SCHEMA "{schema}"')
            try:
                Journal.open(url).close()
                return run_round(
                    work, sandbox, url, nodes=nodes, files=files, senders=senders, admin=admin
                )
            finally:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        sandbox.stop()
        shutil.rmtree(work, ignore_errors=True)


def round_line(r: Round) -> str:
    busy = (r.nodes_cpu + r.sandbox_cpu + r.postgres_cpu + r.others_cpu) / r.wall
    not_done = {state: n for state, n in r.states.items() if state != "done"}
    return (
        f"  {r.nodes} node(s), {r.journal:<10} {r.docs} documents in {r.wall:6.2f} s = "
        f"{r.rate:6.1f} documents/s; CPU-s: nodes {r.nodes_cpu:.1f} "
        f"({1000 * r.nodes_cpu / r.docs:.1f} ms/document), sandbox {r.sandbox_cpu:.1f}, "
        f"PostgreSQL {r.postgres_cpu:.1f} ({1000 * r.postgres_cpu / r.docs:.1f} ms/document), "
        f"rest of machine {r.others_cpu:.1f}; machine busy {busy:.2f} of {os.cpu_count()} CPUs"
        + (f"; NOT DONE: {not_done}" if not_done else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="Rounds of each node count.")
    parser.add_argument(
        "--files", type=int, default=240, help="Files of 2 orders dropped per round."
    )
    parser.add_argument("--latency", default="50ms", help="Each sandbox answer's delay.")
    parser.add_argument("--max-nodes", type=int, default=3)
    parser.add_argument(
        "--senders",
        default="4",
        help="Each node's `edigw run --senders` (default 4, so that one node is bound by its "
        "senders and the latency, not by the CPU; `auto` sizes them to the latency).",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="Skip the SQLite round.")
    parser.add_argument("--quick", action="store_true", help="1 round of 1 and 2 nodes, 24 files.")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.files, args.max_nodes = 1, 24, 2
    counts = list(range(1, args.max_nodes + 1))
    say(
        f"{args.files} files x {ORDERS_PER_FILE} orders per round over {len(FLOWS)} flows, "
        f"every answer {args.latency} late, no rate limit, --senders {args.senders} a node; "
        f"nodes {counts} interleaved, {args.rounds} round(s) each"
    )
    work = Path(tempfile.mkdtemp(prefix="edigw-nodes-"))
    rounds: list[Round] = []
    try:
        for n in range(args.rounds):
            for nodes in counts:
                say(f"round {n + 1}, {nodes} node(s): before it, {load_line()}")
                rounds.append(
                    one_round(
                        work / f"r{n}-{nodes}",
                        nodes=nodes,
                        files=args.files,
                        latency=args.latency,
                        senders=args.senders,
                    )
                )
                say(round_line(rounds[-1]))
        sqlite: Round | None = None
        if not args.no_sqlite:
            say(f"one node on a SQLite journal: before it, {load_line()}")
            sqlite = one_round(
                work / "sqlite",
                nodes=1,
                files=args.files,
                latency=args.latency,
                senders=args.senders,
                sqlite=True,
            )
            say(round_line(sqlite))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"summary ({load_line()}):")
    rate = {
        nodes: statistics.median(r.rate for r in rounds if r.nodes == nodes) for nodes in counts
    }
    for nodes in counts:
        each = ", ".join(f"{r.rate:.1f}" for r in rounds if r.nodes == nodes)
        say(
            f"  {nodes} node(s): median {rate[nodes]:6.1f} documents/s ({each}); "
            f"{rate[nodes] / rate[1]:.2f}x one node"
            + ("  (goal for 2 nodes: >= 1.8x)" if nodes == 2 else "")
        )
    if sqlite is not None:
        say(
            f"  one node, PostgreSQL against SQLite: {rate[1]:.1f} / {sqlite.rate:.1f} documents/s "
            f"= {rate[1] / sqlite.rate:.2f}"
        )


if __name__ == "__main__":
    main()

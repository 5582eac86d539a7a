"""Throughput of the whole inbound pipeline against the sandbox, and what each part costs.

    python benchmarks/pipeline.py [--files 500] [--orders-per-file 2] [--senders 4]
        [--journal postgresql+psycopg://postgres@127.0.0.1:5432/test] [--statements]
    python benchmarks/pipeline.py --with-bots /tmp/bots-peer [--files 500] [--rounds 3]

Prints: documents/s end to end (local drop folder → archive → journal → mapping → HTTP to
the sandbox → journal → source moved), the gateway's own CPU time per document, the share of
it spent reading and mapping the files (the CPU time of the threads while inside the intake's
``mapped_documents``, issue 15's "mapping is never the bottleneck": at most 10%), and the
journal's write cost per document on SQLite (no HTTP). The sandbox runs in its own process
without a rate limit, as Ecolix would; both share this machine's two cores.

``--journal URL`` runs the gateway on that journal instead of a SQLite file in the workspace:
a PostgreSQL URL gets a fresh schema, dropped afterwards. Either way the run prints the
journal's statements per document (every statement the gateway's engines send, counted by a
``before_cursor_execute`` event, and the commits and rollbacks of transactions the driver had
open); ``--statements`` also lists the most frequent ones.

With ``--with-bots DIR`` it measures edigw against the peer instead, side by side on one
batch, interleaved (``benchmarks/peer.py``): Bots is installed in DIR when it is not there yet.
No figure of the peer is ever written down here; it is measured in the same run or not shown.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import peer
import psutil
import psycopg
from harness import gate_line, load_line, senders_arg
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edigw.pipeline.inbound as inbound  # noqa: E402
from edigw.journal.rows import NewDocument  # noqa: E402
from edigw.journal.store import Journal  # noqa: E402
from edigw.pipeline.assembly import open_parts  # noqa: E402
from edigw.pipeline.runtime import DEFAULT_SENDERS, Gateway, Senders  # noqa: E402
from tests.fixtures.gateway import inbound_flow, write_workspace  # noqa: E402
from tests.support.orderfiles import write_order_files  # noqa: E402

TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edigw.cli",
            "sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            str(folder / "sandbox.sqlite"),
            "--token",
            TOKEN,
            "--rate-limit",
            "1000000/minute",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}/api/v1"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base_url}/openapi.yaml", timeout=1)
            return process, base_url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the sandbox did not start")


class MappingClock:
    """CPU seconds spent inside the intake's reading and mapping of files, all threads summed.

    Each step of the ``mapped_documents`` generator is timed with the CPU clock of the thread
    running it (``time.thread_time``), so waits for the GIL or the disk do not count.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def installed(self) -> Iterator[None]:
        real = inbound.mapped_documents

        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            documents = real(*args, **kwargs)
            while True:
                t0 = time.thread_time()
                try:
                    doc = next(documents)
                except StopIteration:
                    self._add(time.thread_time() - t0)
                    return
                self._add(time.thread_time() - t0)
                yield doc

        inbound.mapped_documents = timed  # type: ignore[assignment]
        try:
            yield
        finally:
            inbound.mapped_documents = real  # type: ignore[assignment]

    def _add(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds


class StatementCounter:
    """Statements, commits and rollbacks sent by every SQLAlchemy engine of this process
    (the journal's, and the archive's when it is kept in PostgreSQL) while installed."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.commits = 0
        self.rollbacks = 0
        self._lock = threading.Lock()

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        key = " ".join(statement.split())[:90]
        with self._lock:
            self.statements[key] += 1

    def _commit(self, conn: Any) -> None:
        if _in_transaction(conn):
            with self._lock:
                self.commits += 1

    def _rollback(self, conn: Any) -> None:
        if _in_transaction(conn):
            with self._lock:
                self.rollbacks += 1

    @contextmanager
    def installed(self) -> Iterator[None]:
        hooks = [
            ("before_cursor_execute", self._statement),
            ("commit", self._commit),
            ("rollback", self._rollback),
        ]
        for name, hook in hooks:
            event.listen(Engine, name, hook)
        try:
            yield
        finally:
            for name, hook in hooks:
                event.remove(Engine, name, hook)


def _in_transaction(conn: Any) -> bool:
    """Whether the driver has a transaction open, so that ending it is a real statement (not
    the no-op end SQLAlchemy gives a connection in autocommit)."""
    driver = conn.connection.dbapi_connection
    if isinstance(driver, psycopg.Connection):
        return bool(driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)
    return bool(getattr(driver, "in_transaction", True))


@contextmanager
def journal_url(url: str | None) -> Iterator[str | None]:
    """``url`` as given, with a fresh schema when it is PostgreSQL (dropped on exit); ``None``
    (the workspace's SQLite file) by default."""
    if url is None or make_url(url).get_backend_name() != "postgresql":
        yield url
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            given = make_url(url)
            options = f"{given.query.get('options', '')} -csearch_path={schema}".strip()
            yield str(
                given.update_query_dict({"options": options}).render_as_string(hide_password=False)
            )
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def inbox_empty(inbox: Path) -> bool:
    """Every source was moved away (to ``done/``), which the gateway does once a file is final.

    A directory scan, so that watching for the end costs the gateway (same process, same
    GIL) next to nothing; the journal is checked once at the end.
    """
    with os.scandir(inbox) as entries:
        return not any(entry.is_file() for entry in entries)


def pipeline_run(
    folder: Path,
    sandbox: subprocess.Popen[bytes],
    base_url: str,
    *,
    files: int,
    orders: int,
    senders: Senders,
    journal: str | None = None,
    counter: StatementCounter | None = None,
) -> dict[str, float]:
    ws = write_workspace(
        folder / "gw",
        base_url=base_url,
        token=TOKEN,
        flows={
            "webshop": {
                "orders": inbound_flow(
                    "ecommerce-orders-csv.yaml",
                    "webshop",
                    "orders",
                    readiness={"mode": "min_age", "seconds": 0},
                    poll_interval=0.05,
                    max_files_per_poll=1000,
                )
            }
        },
        journal=journal,
    )
    write_order_files(
        ws.inbox("webshop", "orders"), files=files, orders_per_file=orders, prefix="B"
    )
    config = ws.load()
    inbox = ws.inbox("webshop", "orders")
    sandbox_cpu0 = sandbox_cpu(sandbox)
    mapping = MappingClock()
    counter = counter or StatementCounter()
    with mapping.installed(), open_parts(config) as parts:
        gateway = Gateway(parts, senders=senders)
        with counter.installed():
            cpu0, t0 = os.times(), time.perf_counter()
            gateway.start()
            while not inbox_empty(inbox):
                time.sleep(0.025)
            wall, cpu1 = time.perf_counter() - t0, os.times()
        print(gate_line(gateway.signals.in_flight), flush=True)
        gateway.stop()
        gateway.join(30)
        rows = parts.journal.files(limit=100_000)
        failed = sum(r.state != "done" for r in rows)
        calls = parts.client.usage.calls
    return {
        "wall": wall,
        "user": cpu1.user - cpu0.user,
        "system": cpu1.system - cpu0.system,
        "sandbox": sandbox_cpu(sandbox) - sandbox_cpu0,
        "mapping": mapping.seconds,
        "docs": files * orders,
        "failed": failed,
        "calls": calls,
        "statements": sum(counter.statements.values()),
        "commits": counter.commits,
        "rollbacks": counter.rollbacks,
    }


def sandbox_cpu(process: subprocess.Popen[bytes]) -> float:
    """CPU seconds (user + system) the sandbox process has used so far."""
    times = psutil.Process(process.pid).cpu_times()
    return float(times.user + times.system)


def journal_cost(folder: Path, docs: int = 2000) -> float:
    """Seconds per document for the journal writes the gateway makes, in the same calls: the
    file recorded as being read (before its bytes are read), then its documents."""
    journal = Journal.open(f"sqlite:///{folder / 'journal-bench.sqlite'}")
    now = datetime.now(UTC)
    reader = "bench:1:1"
    t0 = time.perf_counter()
    for i in range(docs // 2):
        file_id = journal.add_file(
            partner="p",
            flow="f",
            channel="c",
            original_name=f"{i}.csv",
            source_path=f"/in/{i}.csv",
            size=10,
            sha256=f"{i:064d}",
            archive_path="",
            now=now,
            reader=reader,
        )
        journal.add_documents(
            file_id,
            [
                NewDocument(
                    seq=n,
                    business_key=f"K{i}-{n}",
                    operation="orders.create",
                    payload={"n": n},
                    idempotency_key=f"k-{i}-{n}",
                )
                for n in (1, 2)
            ],
            now=now,
            reader=reader,
        )
        complete = False
        for _ in (1, 2):
            doc = journal.claim_for_sending(
                now=now, node="bench", lease_seconds=60, file_id=file_id
            )
            assert doc is not None
            complete = journal.mark_done(
                doc.id, now=now, status=201, object_id="X", response={"number": "X"}
            )
        assert complete
        journal.finish_file_if_complete(file_id, now=now)
        journal.record_channel_action(file_id, action="moved", ok=True, error=None, now=now)
    per_doc = (time.perf_counter() - t0) / docs
    journal.close()
    return per_doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--orders-per-file", type=int, default=2)
    parser.add_argument("--senders", type=senders_arg, default=DEFAULT_SENDERS)
    parser.add_argument("--quick", action="store_true", help="50 files: a quick check.")
    parser.add_argument(
        "--journal",
        metavar="URL",
        help="the gateway's journal (default: a SQLite file in the workspace); a PostgreSQL "
        "URL gets a fresh schema, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument(
        "--statements", action="store_true", help="list the most frequent journal statements"
    )
    peer.add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.files = 50
    if args.with_bots is not None:
        if args.orders_per_file != 2:
            parser.error("the peer's batch has 2 orders a file: --orders-per-file does not apply")
        peer.run_from(args)
        return
    print(f"before the run: {load_line()}", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="edigw-bench-"))
    sandbox, base_url = start_sandbox(folder)
    counter = StatementCounter()
    try:
        with journal_url(args.journal) as url:
            run = pipeline_run(
                folder,
                sandbox,
                base_url,
                files=args.files,
                orders=args.orders_per_file,
                senders=args.senders,
                journal=url,
                counter=counter,
            )
    finally:
        sandbox.terminate()
        sandbox.wait()
    per_doc_journal = journal_cost(folder)
    shutil.rmtree(folder, ignore_errors=True)
    docs = run["docs"]
    backend = "SQLite" if args.journal is None else make_url(args.journal).get_backend_name()
    print(
        f"pipeline: {args.files} CSV files, {int(docs)} orders, {args.senders} senders, "
        f"{backend} journal, sandbox in its own process, {os.cpu_count()} cores"
    )
    print("| measure | value |")
    print("|---|---|")
    print(
        f"| end to end, wall | {run['wall']:.2f} s ({docs / run['wall']:.0f} documents/s, {args.files / run['wall']:.0f} files/s) |"
    )
    gateway_cpu = run["user"] + run["system"]
    print(
        f"| gateway CPU time per document | {1000 * gateway_cpu / docs:.2f} ms "
        f"({1000 * run['user'] / docs:.2f} user + {1000 * run['system'] / docs:.2f} system) |"
    )
    print(
        f"| reading and mapping the files, CPU per document | "
        f"{1000 * run['mapping'] / docs:.2f} ms: {100 * run['mapping'] / gateway_cpu:.1f}% of "
        f"the gateway's CPU (goal: at most 10%) |"
    )
    print(
        f"| sandbox CPU time per document (the other process) | {1000 * run['sandbox'] / docs:.2f} ms |"
    )
    print(
        f"| journal cost per document, alone (SQLite: file being read, its documents, "
        f"claim+sent, done, file finished, source moved) | {1000 * per_doc_journal:.2f} ms |"
    )
    print(
        f"| journal statements per document (commits, rollbacks) | "
        f"{run['statements'] / docs:.1f} ({run['commits'] / docs:.1f}, "
        f"{run['rollbacks'] / docs:.1f}) |"
    )
    print(f"| Ecolix calls | {int(run['calls'])} |")
    print(f"| files not done | {int(run['failed'])} |")
    print(f"after the run: {load_line()}")
    if args.statements:
        print("most frequent statements, per document:")
        for statement, n in counter.statements.most_common(25):
            print(f"  {n / docs:6.2f}  {statement}")
    print("edigw against Bots: python benchmarks/pipeline.py --with-bots DIR (docs/benchmarks.md)")


if __name__ == "__main__":
    main()

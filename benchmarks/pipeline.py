"""Throughput of the whole inbound pipeline against the sandbox, and what each part costs.

    python benchmarks/pipeline.py [--files 500] [--orders-per-file 2] [--senders 4]
        [--journal postgresql+psycopg://postgres@127.0.0.1:5432/test] [--statements] [--stages]
    python benchmarks/pipeline.py --with-bots /tmp/bots-peer [--files 500] [--rounds 3]

Prints: documents/s end to end (local drop folder → archive → journal → mapping → HTTP to
the sandbox → journal → source moved), the gateway's own CPU time per document, the share of
it spent reading and mapping the files (the CPU time of the threads while inside the intake's
``mapped_documents``, issue 15's "mapping is never the bottleneck": at most 10%), and the
journal's write cost per document on SQLite (no HTTP). The sandbox runs in its own process
without a rate limit, as Ecolix would; both share this machine's two cores.

``--journal URL`` runs the gateway on that journal instead of a SQLite file in the workspace:
a PostgreSQL URL gets a fresh schema, dropped afterwards. ``--statements`` counts the
journal's statements per document (every statement the gateway's engines send, counted by a
``before_cursor_execute`` event, and the commits and rollbacks of transactions the driver had
open) and lists the most frequent ones; the count costs the gateway about 5% of its CPU, so
a run without it is the one to time.

``--stages`` also prints where the gateway's CPU went during the run, in two tables: by thread
role (``ThreadClock``: each Python thread's CPU clock at the start and at the end, its role
its name without a trailing number, e.g. ``sender``), and by stage (``StageClock``: the CPU
clock of the calling thread inside the journal's, the archive's and the Ecolix client's methods
of ``STAGES``, wrapped for the run only like the mapping; the rest of the gateway's CPU is
"everything else"). The wrappers cost a little CPU themselves (docs/benchmarks.md).

With ``--with-bots DIR`` it measures edigw against the peer instead, side by side on one
batch, interleaved (``benchmarks/peer.py``): Bots is installed in DIR when it is not there yet.
No figure of the peer is ever written down here; it is measured in the same run or not shown.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import peer
import psutil
import psycopg
from harness import (
    gate_line,
    load_line,
    new_gateway,
    order_workspace,
    postgres_cpu,
    senders_arg,
    sending_cpu,
)
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edigw.pipeline.file_documents as file_documents  # noqa: E402
import edigw.pipeline.inbound as inbound  # noqa: E402
from edigw.ecolix.client import EcolixClient  # noqa: E402
from edigw.journal.archive_folder import FolderArchive  # noqa: E402
from edigw.journal.rows import NewDocument  # noqa: E402
from edigw.journal.store import Journal  # noqa: E402
from edigw.pipeline.assembly import open_parts  # noqa: E402
from edigw.pipeline.concurrency import Senders  # noqa: E402
from edigw.pipeline.senders import DEFAULT_SENDERS  # noqa: E402

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
    running it (``time.thread_time``), so waits for the GIL or the disk do not count. It is
    defined in ``file_documents`` and replaced in ``inbound``, whose intake calls it by the
    name it imported from there.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    @contextmanager
    def installed(self) -> Iterator[None]:
        real = file_documents.mapped_documents

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


#: The methods ``--stages`` times: class attributes, so that every caller goes through the
#: wrapper (patching a module's function would miss the modules that imported it by name).
STAGES: tuple[tuple[type, str], ...] = (
    *(
        (Journal, name)
        for name in (
            "files_with_content",
            "add_file",
            "add_documents",
            "claim_for_sending",
            "mark_done",
            "mark_done_finishing",
            "finish_file_if_complete",
            "file",
            "record_channel_action",
            "next_retry_at",
            "source_disposed",
        )
    ),
    (FolderArchive, "store"),
    (FolderArchive, "make_durable"),
    (EcolixClient, "write"),
)


class StageClock:
    """CPU seconds and calls inside each method of ``STAGES``, all threads summed.

    Each call is timed with the CPU clock of its thread (``time.thread_time``), so waits for
    the GIL, the disk or Ecolix's answer do not count. The time is each call's own: a wrapped
    call made inside another (a journal method calling ``file``) is counted in its own row and
    taken out of its caller's, so that the rows do not overlap and can be summed. The mapping
    (``MappingClock``) does not overlap them either: the intake maps a batch of documents, then
    journals it, and reading the archived copy calls none of them.
    """

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._local = threading.local()

    @contextmanager
    def installed(self) -> Iterator[None]:
        saved = [(owner, name, owner.__dict__.get(name)) for owner, name in STAGES]
        for owner, name, _ in saved:
            label = f"{owner.__name__}.{name}"
            setattr(owner, name, self._timed(getattr(owner, name), label))
        try:
            yield
        finally:
            for owner, name, own in saved:
                if own is None:  # inherited from a mixin: the class had none of its own
                    delattr(owner, name)
                else:
                    setattr(owner, name, own)

    def _timed(self, real: Callable[..., Any], label: str) -> Callable[..., Any]:
        @functools.wraps(real)
        def timed(*args: Any, **kwargs: Any) -> Any:
            # per thread: for each wrapped call open, the time spent in wrapped calls inside it
            nested: list[float] = self._local.__dict__.setdefault("nested", [])
            nested.append(0.0)
            t0 = time.thread_time()
            try:
                return real(*args, **kwargs)
            finally:
                spent = time.thread_time() - t0
                own = spent - nested.pop()
                if nested:
                    nested[-1] += spent
                with self._lock:
                    self.seconds[label] += own
                    self.calls[label] += 1

        return timed


class ThreadClock:
    """CPU seconds of this process's threads over the run, by role.

    Each Python thread's CPU clock (the one ``time.thread_time`` reads in the thread itself,
    here read from outside with ``pthread_getcpuclockid``) at the start and at the end; a thread
    started during the run counts from 0. Not ``psutil``'s per-thread user and system times:
    they are whole clock ticks (10 ms), and with some 40 threads the truncation lost a third of
    a 50-file run. A thread that ended during the run, or that Python did not start, is in no
    row: its time is in the rest of the gateway's CPU.
    """

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.threads: Counter[str] = Counter()
        self._start: dict[int | None, float] = {}

    def start(self) -> None:
        self._start = {t.native_id: cpu for t, cpu in _thread_clocks()}

    def stop(self) -> None:
        for t, cpu in _thread_clocks():
            role = thread_role(t.name)
            self.seconds[role] += cpu - self._start.get(t.native_id, 0.0)
            self.threads[role] += 1


def _thread_clocks() -> list[tuple[threading.Thread, float]]:
    """Each running Python thread with the CPU seconds it has used so far."""
    clocks = []
    for t in threading.enumerate():
        try:
            clocks.append((t, time.clock_gettime(time.pthread_getcpuclockid(t.ident or 0))))
        except OSError:  # it ended meanwhile
            continue
    return clocks


def thread_role(name: str) -> str:
    """A thread's name without its number: the senders ``sender 1``, ``sender 2``, ... are
    one role, ``sender``; Python's default ``Thread-3 (run)`` becomes ``Thread (run)``."""
    return re.sub(r"^Thread-\d+", "Thread", re.sub(r"[ _-]?\d+$", "", name))


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
    stages: StageClock | None = None,
    threads: ThreadClock | None = None,
    processes: int = 1,
) -> dict[str, float]:
    """One timed run; ``stages`` and ``threads``, when given, are installed and read for the
    run (``--stages``). ``processes=2``: the senders in a sending process, started before
    the timing like the rest of the gateway, whose CPU during the run counts in the gateway's
    (its statements are not counted: another process)."""
    ws = order_workspace(
        folder,
        base_url=base_url,
        token=TOKEN,
        files=files,
        orders=orders,
        prefix="B",
        journal=journal,
    )
    config = ws.load()
    inbox = ws.inbox("webshop", "orders")
    sandbox_cpu0 = sandbox_cpu(sandbox)
    mapping = MappingClock()
    with mapping.installed(), open_parts(config) as parts:
        gateway = new_gateway(parts, senders=senders, processes=processes)
        with (
            counter.installed() if counter is not None else nullcontext(),
            stages.installed() if stages is not None else nullcontext(),
        ):
            if threads is not None:
                threads.start()
            sending0 = sending_cpu(gateway)
            server0 = postgres_cpu() if journal is not None else None
            cpu0, t0 = os.times(), time.perf_counter()
            gateway.start()
            while not inbox_empty(inbox):
                time.sleep(0.025)
            wall, cpu1 = time.perf_counter() - t0, os.times()
            sending = sending_cpu(gateway)
            server1 = postgres_cpu() if server0 is not None else None
            if threads is not None:
                threads.stop()
        print(gate_line(gateway.signals.in_flight), flush=True)
        gateway.stop()
        gateway.join(30)
        rows = parts.journal.files(limit=100_000)
        failed = sum(r.state != "done" for r in rows)
        calls = gateway.usage().calls
    return {
        "wall": wall,
        "user": cpu1.user - cpu0.user + sending[0] - sending0[0],
        "system": cpu1.system - cpu0.system + sending[1] - sending0[1],
        "sending_process": sum(sending) - sum(sending0),
        "sandbox": sandbox_cpu(sandbox) - sandbox_cpu0,
        "postgres": -1.0 if server0 is None or server1 is None else server1 - server0,
        "mapping": mapping.seconds,
        "docs": files * orders,
        "failed": failed,
        "calls": calls,
        "statements": sum(counter.statements.values()) if counter is not None else -1,
        "commits": counter.commits if counter is not None else -1,
        "rollbacks": counter.rollbacks if counter is not None else -1,
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


def print_stages(run: dict[str, float], stages: StageClock, threads: ThreadClock) -> None:
    """The two ``--stages`` tables: the gateway's CPU during the run by thread role, then by
    stage; each ends with what its rows do not account for."""
    docs = run["docs"]
    gateway_cpu = run["user"] + run["system"]

    def cpu(seconds: float) -> str:
        return f"{1000 * seconds / docs:.3f} ms | {100 * seconds / gateway_cpu:.1f}%"

    print("| thread role | threads | CPU per document | share of the gateway's CPU |")
    print("|---|---|---|---|")
    for role, seconds in sorted(threads.seconds.items(), key=lambda row: -row[1]):
        print(f"| {role} | {threads.threads[role]} | {cpu(seconds)} |")
    print(
        f"| the rest: threads that ended during the run, or not started by Python | | "
        f"{cpu(gateway_cpu - sum(threads.seconds.values()))} |"
    )
    print("| stage (its own CPU, all threads) | CPU per document | share | calls per document |")
    print("|---|---|---|---|")
    rows = [*stages.seconds.items(), ("reading and mapping the files", run["mapping"])]
    for label, seconds in sorted(rows, key=lambda row: -row[1]):
        calls = f"{stages.calls[label] / docs:.2f}" if label in stages.calls else ""
        print(f"| {label} | {cpu(seconds)} | {calls} |")
    rest = gateway_cpu - sum(seconds for _, seconds in rows)
    print(f"| everything else | {cpu(rest)} | |")


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
    parser.add_argument(
        "--stages",
        action="store_true",
        help="where the gateway's CPU went: by thread role and by stage (journal, archive, ...)",
    )
    peer.add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.files = 50
    if args.with_bots is not None:
        if args.orders_per_file != 2:
            parser.error("the peer's batch has 2 orders a file: --orders-per-file does not apply")
        if args.stages:
            parser.error("--stages measures edigw alone: not with --with-bots")
        peer.run_from(args)
        return
    if len(args.processes) != 1:
        parser.error("--processes: one arrangement at a time without --with-bots")
    if args.processes != (1,) and args.stages:
        parser.error("--stages measures one process: not with --processes 2")
    [processes] = args.processes
    print(f"before the run: {load_line()}", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="edigw-bench-"))
    sandbox, base_url = start_sandbox(folder)
    counter = StatementCounter() if args.statements else None
    stages, threads = (StageClock(), ThreadClock()) if args.stages else (None, None)
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
                stages=stages,
                threads=threads,
                processes=processes,
            )
    finally:
        sandbox.terminate()
        sandbox.wait()
    per_doc_journal = journal_cost(folder)
    shutil.rmtree(folder, ignore_errors=True)
    docs = run["docs"]
    backend = "SQLite" if args.journal is None else make_url(args.journal).get_backend_name()
    print(
        f"pipeline: {args.files} CSV files, {int(docs)} orders, {args.senders} senders"
        f"{' in a process of their own' if processes == 2 else ''}, {backend} journal, sandbox "
        f"in its own process, {os.cpu_count()} cores"
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
    if processes == 2:
        intake = gateway_cpu - run["sending_process"]
        print(
            f"| CPU of each process over the wall time: intake; sending | "
            f"{intake / run['wall']:.0%} ({intake:.2f} s); "
            f"{run['sending_process'] / run['wall']:.0%} ({run['sending_process']:.2f} s) |"
        )
    print(
        f"| reading and mapping the files, CPU per document | "
        f"{1000 * run['mapping'] / docs:.2f} ms: {100 * run['mapping'] / gateway_cpu:.1f}% of "
        f"the gateway's CPU (goal: at most 10%) |"
    )
    print(
        f"| sandbox CPU time per document (the other process) | {1000 * run['sandbox'] / docs:.2f} ms |"
    )
    if run["postgres"] >= 0:
        print(
            f"| PostgreSQL server CPU time per document (all its processes) | "
            f"{1000 * run['postgres'] / docs:.2f} ms |"
        )
    print(
        f"| journal cost per document, alone (SQLite: file being read, its documents, "
        f"claim+sent, done, file finished, source moved) | {1000 * per_doc_journal:.2f} ms |"
    )
    if counter is not None:
        print(
            f"| journal statements per document (commits, rollbacks)"
            f"{', the intake process only' if processes == 2 else ''} | "
            f"{run['statements'] / docs:.1f} ({run['commits'] / docs:.1f}, "
            f"{run['rollbacks'] / docs:.1f}) |"
        )
    else:
        print("| journal statements per document | not counted (--statements: costs ~5% CPU) |")
    print(f"| Ecolix calls | {int(run['calls'])} |")
    print(f"| files not done | {int(run['failed'])} |")
    print(f"after the run: {load_line()}")
    if stages is not None and threads is not None:
        print_stages(run, stages, threads)
    if counter is not None:
        print("most frequent statements, per document:")
        for statement, n in counter.statements.most_common(25):
            print(f"  {n / docs:6.2f}  {statement}")
    print("edigw against Bots: python benchmarks/pipeline.py --with-bots DIR (docs/benchmarks.md)")


if __name__ == "__main__":
    main()

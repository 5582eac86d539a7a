"""The journal's write cost per document, on SQLite (WAL) and PostgreSQL.

Replays what the pipeline does for a batch shaped like the issue's reference (500 small files
of 2 orders each): per file ``add_file`` with its documents (one transaction), then per
document ``mark_done_finishing`` (done, the file finished after its last document, and the
sender's next document claimed with its attempt recorded: one transaction on SQLite), all
single-threaded so the figure is the journal's own cost.
Every call is a committed transaction, as in production. SQLite by default: WAL with
``synchronous=NORMAL`` and fsync'd barrier commits (here the done that finishes a file); "all
FULL": an fsync per commit. PostgreSQL with its defaults (``synchronous_commit=on``). Each
database with files in strict order, then with unordered files (a flow's default), whose
done takes another path.

Also measured: the same send with several threads sharing one journal (as ``edigw run``'s
senders do), and claim + done inside one file of 10,000 pending documents, to show that
handing a file's head on does not grow with the size of the file.

Run: python benchmarks/journal.py [--files 500] [--docs-per-file 2] [--backlog 10000]
     [--threads 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from edigw.journal import Journal, NewDocument, NextClaim

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Figures:
    backend: str
    docs: int
    ingest_s: float
    send_s: float
    threaded_send_s: float
    backlog_ms: float

    @property
    def per_doc_ms(self) -> float:
        return (self.ingest_s + self.send_s) / self.docs * 1000


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{Path(folder) / 'journal.sqlite'}"


@contextmanager
def postgres_url() -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    conninfo = make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield str(
                make_url(POSTGRES_URL)
                .update_query_dict({"options": f"-csearch_path={schema}"})
                .render_as_string(False)
            )
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def new_docs(file_no: int, count: int) -> list[NewDocument]:
    return [
        NewDocument(
            seq=seq,
            business_key=f"CMD-{file_no}-{seq}",
            operation="orders.create",
            payload={
                "customer": "C0001",
                "external_reference": f"WEB-{file_no}-{seq}",
                "lines": [{"article": "ART-001", "quantity": "2", "unit_price": "12.50"}],
                "payment": {"method": "card", "amount": "30.00", "transaction_id": "tx"},
            },
            idempotency_key=f"{uuid.uuid4().hex}",
        )
        for seq in range(1, count + 1)
    ]


def add_file(
    journal: Journal, n: int, documents: list[NewDocument] | None = None, *, ordered: bool = True
) -> int:
    return journal.add_file(
        partner="webshop",
        flow="orders",
        channel="local:inbox/webshop/orders",
        original_name=f"orders-{n:04d}.csv",
        source_path=f"/srv/inbox/orders-{n:04d}.csv",
        size=420,
        sha256=f"{n:064x}",
        archive_path=f"/data/archive/{n:064x}",
        now=T0,
        documents=documents,
        ordered=ordered,
    )


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def send_all(journal: Journal, node: str) -> None:
    """What a sender does per document, minus the HTTP call: the first document claimed on
    its own, each next one with the last one's done."""
    doc = journal.claim_for_sending(now=T0, node=node, lease_seconds=60)
    while doc is not None:
        doc = journal.mark_done_finishing(
            doc.id,
            now=T0,
            status=201,
            object_id="CMD-1",
            response={"number": "1"},
            file_id=doc.file_id,
            claim_next=NextClaim(node, 60),
        ).claimed


def measure(
    backend: str,
    url: str,
    files: int,
    per_file: int,
    backlog: int,
    threads: int,
    *,
    ordered: bool,
    **options: str,
) -> Figures:
    journal = Journal.open(url, **options)  # type: ignore[arg-type]
    try:

        def ingest(first: int) -> None:
            for n in range(first, first + files):
                add_file(journal, n, new_docs(n, per_file), ordered=ordered)

        ingest_s = timed(lambda: ingest(0))
        send_s = timed(lambda: send_all(journal, "bench"))

        # The same batch again, sent by several threads sharing the journal.
        ingest(files)
        workers = [
            threading.Thread(target=send_all, args=(journal, f"bench-{n}")) for n in range(threads)
        ]

        def run_threads() -> None:
            for w in workers:
                w.start()
            for w in workers:
                w.join()

        threaded_send_s = timed(run_threads)

        # One big file: handing its head on must stay cheap however long the backlog is.
        big = add_file(journal, 2 * files + 1, ordered=ordered)
        journal.add_documents(big, new_docs(2 * files + 1, backlog), now=T0)
        samples = []
        for _ in range(100):
            start = time.perf_counter()
            doc = journal.claim_for_sending(now=T0, node="bench", lease_seconds=60)
            assert doc is not None
            journal.mark_done(
                doc.id, now=T0, status=201, object_id="x", response=None, file_id=doc.file_id
            )
            samples.append(time.perf_counter() - start)
    finally:
        journal.close()
    return Figures(
        backend,
        files * per_file,
        ingest_s,
        send_s,
        threaded_send_s,
        statistics.median(samples) * 1000,
    )


#: (name, database, Journal.open's options, files in strict order). Unordered files are
#: what a flow takes in by default (``ordered: false``); on PostgreSQL their done takes
#: another path (the file's question rides on the next claim).
BACKENDS: list[tuple[str, Callable[[], Any], dict[str, str], bool]] = [
    ("SQLite (default)", sqlite_url, {}, True),
    ("SQLite, all FULL", sqlite_url, {"synchronous": "full"}, True),
    ("PostgreSQL", postgres_url, {}, True),
    ("SQLite, unordered", sqlite_url, {}, False),
    ("PostgreSQL, unordered", postgres_url, {}, False),
]


def median_figures(runs: list[Figures]) -> Figures:
    def med(name: str) -> float:
        return statistics.median(getattr(r, name) for r in runs)

    return Figures(
        runs[0].backend,
        runs[0].docs,
        med("ingest_s"),
        med("send_s"),
        med("threaded_send_s"),
        med("backlog_ms"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500, help="files in the batch")
    parser.add_argument("--docs-per-file", type=int, default=2, help="documents per file")
    parser.add_argument("--backlog", type=int, default=10000, help="documents in the big file")
    parser.add_argument("--threads", type=int, default=4, help="sender threads, threaded run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    args = parser.parse_args()

    shape = (args.files, args.docs_per_file, args.backlog, args.threads)
    runs: dict[str, list[Figures]] = {name: [] for name, _, _, _ in BACKENDS}
    for _ in range(args.rounds):  # interleaved, so that load from other processes hits all
        for name, make_url_, options, ordered in BACKENDS:
            with make_url_() as url:
                runs[name].append(measure(name, url, *shape, ordered=ordered, **options))
    results = [median_figures(r) for r in runs.values()]

    docs = args.files * args.docs_per_file
    print(
        f"journal write cost: {args.files} files x {args.docs_per_file} documents = {docs} "
        f"documents; medians of {args.rounds} interleaved rounds; ms per document"
    )
    backlog = f"claim+done, {args.backlog}-doc file"
    header = (
        f"{'backend':<22} {'ingest':>8} {'send':>8} {'total':>8} {'docs/s':>7} "
        f"{'send, ' + str(args.threads) + ' threads':>16} {backlog:>28}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.backend:<22} {r.ingest_s / r.docs * 1000:>8.2f} {r.send_s / r.docs * 1000:>8.2f} "
            f"{r.per_doc_ms:>8.2f} {r.docs / (r.ingest_s + r.send_s):>7.0f} "
            f"{r.threaded_send_s / r.docs * 1000:>16.2f} {r.backlog_ms:>28.2f}"
        )
    print("ingest = add_file with its documents; send = mark_done_finishing claiming the next")
    print("(the file finished with its last document), each its own committed transaction;")
    print("docs/s single-threaded.")


if __name__ == "__main__":
    main()

"""The journal's write cost per document, on SQLite (WAL) and PostgreSQL.

Replays what the pipeline does for a batch shaped like the issue's reference (500 small files
of 2 orders each): per file ``add_file`` + ``add_documents`` (one transaction), then per
document ``claim_due_documents`` (limit 1) + ``mark_sent`` + ``mark_done`` +
``finish_file_if_complete``, all single-threaded so the figure is the journal's own cost.
Every call is a committed transaction, as in production: SQLite runs ``synchronous=FULL``
(an fsync per commit), PostgreSQL its defaults (``synchronous_commit=on``).

Also measured: claims in a backlog (one file of 20,000 pending documents) to show that the
cost of a claim does not grow with the size of a file.

Run: python benchmarks/journal.py [--files 500] [--docs-per-file 2] [--backlog 20000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from edigw.journal import Journal, NewDocument

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Figures:
    backend: str
    docs: int
    ingest_s: float
    send_s: float
    claim_first_ms: float
    claim_backlog_ms: float

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


def add_file(journal: Journal, n: int) -> int:
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
    )


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def measure(backend: str, url: str, files: int, per_file: int, backlog: int) -> Figures:
    journal = Journal.open(url)
    try:
        clock = [T0]

        def ingest() -> None:
            for n in range(files):
                journal.add_documents(add_file(journal, n), new_docs(n, per_file), now=T0)

        def send() -> None:
            while docs := journal.claim_due_documents(
                now=T0, node="bench", lease_seconds=60, limit=1
            ):
                doc = docs[0]
                journal.mark_sent(doc.id, now=clock[0])
                journal.mark_done(
                    doc.id, now=clock[0], status=201, object_id="CMD-1", response={"number": "1"}
                )
                journal.finish_file_if_complete(doc.file_id, now=clock[0])

        ingest_s = timed(ingest)
        send_s = timed(send)

        # One big file: claiming its head must stay cheap however long the backlog is.
        big = add_file(journal, files + 1)
        journal.add_documents(big, new_docs(files + 1, backlog), now=T0)
        samples = []
        for _ in range(50):
            start = time.perf_counter()
            [doc] = journal.claim_due_documents(now=T0, node="bench", lease_seconds=60, limit=1)
            samples.append(time.perf_counter() - start)
            journal.mark_done(doc.id, now=T0, status=201, object_id="x", response=None)
        first = samples[0] * 1000
        steady = statistics.median(samples[1:]) * 1000
        clock[0] = T0 + timedelta(seconds=1)
    finally:
        journal.close()
    return Figures(backend, files * per_file, ingest_s, send_s, first, steady)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500, help="files in the batch")
    parser.add_argument("--docs-per-file", type=int, default=2, help="documents per file")
    parser.add_argument("--backlog", type=int, default=20000, help="documents in the big file")
    args = parser.parse_args()

    results = []
    with sqlite_url() as url:
        results.append(
            measure("SQLite (WAL, FULL)", url, args.files, args.docs_per_file, args.backlog)
        )
    with postgres_url() as url:
        results.append(measure("PostgreSQL 15", url, args.files, args.docs_per_file, args.backlog))

    docs = args.files * args.docs_per_file
    print(
        f"journal write cost, {args.files} files x {args.docs_per_file} documents = {docs} documents"
    )
    print(
        f"{'backend':<20} {'ingest ms/doc':>14} {'send ms/doc':>12} {'total ms/doc':>13} "
        f"{'docs/s':>8} {'claim in ' + str(args.backlog) + '-doc file':>24}"
    )
    for r in results:
        print(
            f"{r.backend:<20} {r.ingest_s / r.docs * 1000:>14.2f} {r.send_s / r.docs * 1000:>12.2f} "
            f"{r.per_doc_ms:>13.2f} {r.docs / (r.ingest_s + r.send_s):>8.0f} "
            f"{r.claim_backlog_ms:>21.2f} ms"
        )
    print("ingest = add_file + add_documents (per file, divided by its documents);")
    print(
        "send = claim + mark_sent + mark_done + finish_file_if_complete, one committed transaction each."
    )


if __name__ == "__main__":
    main()

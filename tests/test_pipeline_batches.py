"""A big file's documents are journalled in batches as they are mapped: the journal holds the
first ones while the reader is still reading, none is due before the whole file is
journalled, a reading cut short midway starts again from the beginning under the same keys,
a file the reader gives up on midway fails whole, and the memory the intake needs does not
grow with the number of documents."""

from __future__ import annotations

import gc
import random
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edigw.errors import DataProblem, MalformedFileError
from edigw.formats.limits import ReaderLimits
from edigw.journal import Archive, FileRow, FolderArchive, Journal
from edigw.mapping import load_mapping
from edigw.model import Location, MappedDocument
from edigw.pipeline.batches import BATCH_SIZE
from edigw.pipeline.inbound import FlowContext, Ingested, Intake, IntakeError, ingest
from edigw.processes import process_identity
from tests.fixtures.gateway import MAPPINGS
from tests.support.orderfiles import HEADER, OrderFactory

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
ME = process_identity("gw1")
DEAD = "gw1:999999999:1"
ORDERS = load_mapping(MAPPINGS / "ecommerce-orders-csv.yaml")
#: Two full batches and part of a third.
ORDER_COUNT = 2 * BATCH_SIZE + 200


def order_file(path: Path, orders: int, *, max_lines: int = 1) -> Path:
    """``orders`` valid web-shop orders (1 to ``max_lines`` lines each) in ``path``."""
    factory = OrderFactory.from_seed()
    rng = random.Random(15)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER + "\r\n")
        for n in range(orders):
            f.write("\r\n".join(factory.order_rows(f"B-{n:06d}", rng, max_lines=max_lines)))
            f.write("\r\n")
    return path


@dataclass
class Midway:
    """The real orders mapping, calling ``at_document`` just before it hands over document
    number ``at`` (1-based): the hook sees the journal while the file is still being read."""

    journal: Journal
    at: int
    at_document: Callable[[Midway], None] = lambda _: None
    seen: list[Any] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return Path(ORDERS.path)

    @property
    def target(self) -> str:
        return str(ORDERS.target)

    def map_file(
        self,
        path: Path,
        *,
        source_name: str,
        encoding: str | None = None,
        limits: ReaderLimits | None = None,
    ) -> Iterator[MappedDocument]:
        documents = ORDERS.map_file(path, source_name=source_name, encoding=encoding, limits=limits)
        for number, document in enumerate(documents, start=1):
            if number == self.at:
                self.at_document(self)
            yield document

    def being_read(self) -> FileRow:
        [row] = [r for r in self.journal.files(limit=10) if r.state == "received"]
        return row


def take(
    source: Path,
    journal: Journal,
    archive: Archive,
    mapping: Any,
    *,
    reader: str = ME,
    ordered: bool = False,
) -> Ingested:
    return ingest(
        source,
        original_name=source.name,
        flow=FlowContext(
            partner="webshop", flow="orders", channel="local:/in", mapping=mapping, ordered=ordered
        ),
        journal=journal,
        archive=archive,
        now=NOW,
        intake=Intake(reader=reader),
    )


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return FolderArchive(tmp_path / "archive")


@pytest.fixture
def big(tmp_path: Path) -> Path:
    return order_file(tmp_path / "in" / "big.csv", ORDER_COUNT)


def test_the_journal_holds_a_big_files_first_documents_while_the_reader_is_still_reading(
    big: Path, journal: Journal, archive: Archive
) -> None:
    def look(m: Midway) -> None:
        row = m.being_read()
        m.seen.append((row.state, row.reader, len(journal.documents_of(row.id))))

    mapping = Midway(journal, at=2 * BATCH_SIZE + 100, at_document=look)

    ingested = take(big, journal, archive, mapping)

    [(state, reader, journalled)] = mapping.seen
    assert (state, reader) == ("received", ME), "still being read"
    assert journalled >= BATCH_SIZE, "the first batch is in the journal already"
    assert journalled < ORDER_COUNT
    assert (ingested.state, ingested.documents) == ("parsed", ORDER_COUNT)
    docs = journal.documents_of(ingested.file_id)
    assert [d.seq for d in docs] == list(range(1, ORDER_COUNT + 1))


def test_no_document_of_a_file_is_due_before_the_whole_file_is_journalled(
    big: Path, journal: Journal, archive: Archive
) -> None:
    def claim(m: Midway) -> None:
        m.seen.append(journal.claim_due_documents(now=NOW, node="n1", lease_seconds=60, limit=10))

    mapping = Midway(journal, at=2 * BATCH_SIZE + 100, at_document=claim)

    ingested = take(big, journal, archive, mapping, ordered=True)

    assert mapping.seen == [[]]
    [first] = journal.claim_due_documents(now=NOW, node="n1", lease_seconds=60, limit=10)
    assert (first.file_id, first.seq) == (ingested.file_id, 1), "due in file order once parsed"


def test_once_parsed_the_orders_of_an_unordered_big_file_are_due_together(
    big: Path, journal: Journal, archive: Archive
) -> None:
    ingested = take(big, journal, archive, Midway(journal, at=0))

    due = journal.claim_due_documents(now=NOW, node="n1", lease_seconds=60, limit=10)

    assert [(d.file_id, d.seq) for d in due] == [(ingested.file_id, seq) for seq in range(1, 11)]


def crash(_: Midway) -> None:
    raise RuntimeError("the gateway stopped here")


def test_a_reading_cut_short_midway_is_read_again_from_the_start_under_the_same_keys(
    big: Path, journal: Journal, archive: Archive
) -> None:
    with pytest.raises(IntakeError):
        take(big, journal, archive, Midway(journal, at=2 * BATCH_SIZE + 100, at_document=crash))
    [row] = journal.readings()
    left = journal.documents_of(row.id)
    assert len(left) == BATCH_SIZE, "the first batch journalled (the second was held back)"

    resumed = take(big, journal, archive, Midway(journal, at=0))

    assert (resumed.file_id, resumed.state, resumed.resumed) == (row.id, "parsed", True)
    docs = journal.documents_of(row.id)
    assert [d.seq for d in docs] == list(range(1, ORDER_COUNT + 1))
    assert len({d.idempotency_key for d in docs}) == ORDER_COUNT
    again = {d.seq: d.idempotency_key for d in docs}
    assert all(again[d.seq] == d.idempotency_key for d in left)
    assert journal.file(row.id).reader is None


def test_a_big_file_whose_reader_died_midway_is_read_again_whole_in_an_isolated_process(
    big: Path, journal: Journal, archive: Archive
) -> None:
    with pytest.raises(IntakeError):
        take(
            big,
            journal,
            archive,
            Midway(journal, at=BATCH_SIZE + 100, at_document=crash),
            reader=DEAD,
        )

    resumed = take(big, journal, archive, Midway(journal, at=0))

    assert (resumed.state, resumed.documents, resumed.resumed) == ("parsed", ORDER_COUNT, True)
    assert len(journal.documents_of(resumed.file_id)) == ORDER_COUNT


def test_a_file_the_reader_gives_up_on_midway_fails_whole_with_no_document_left(
    big: Path, journal: Journal, archive: Archive
) -> None:
    where = Location("big.csv", line=1101)

    def give_up(_: Midway) -> None:
        raise MalformedFileError(DataProblem("the reader gives up here", where))

    ingested = take(
        big, journal, archive, Midway(journal, at=2 * BATCH_SIZE + 100, at_document=give_up)
    )

    assert (ingested.state, ingested.documents) == ("failed", 0)
    row = journal.file(ingested.file_id)
    assert row.error == f"{where}: the reader gives up here", "located"
    assert journal.documents_of(ingested.file_id) == []
    assert journal.claim_due_documents(now=NOW, node="n1", lease_seconds=60, limit=10) == []


def intake_peak(tmp_path: Path, journal: Journal, archive: Archive, orders: int) -> int:
    """Peak bytes traced while a file of ``orders`` orders (5 lines each on average) is
    mapped and journalled."""
    source = order_file(tmp_path / f"in-{orders}" / f"orders-{orders}.csv", orders, max_lines=9)
    gc.collect()
    tracemalloc.reset_peak()
    start, _ = tracemalloc.get_traced_memory()
    ingested = take(source, journal, archive, ORDERS)
    _, peak = tracemalloc.get_traced_memory()
    assert (ingested.state, ingested.documents) == ("parsed", orders)
    return peak - start


@pytest.mark.slow
def test_the_memory_to_take_a_file_in_does_not_grow_with_its_number_of_documents(
    tmp_path: Path, journal: Journal, archive: Archive
) -> None:
    take(order_file(tmp_path / "warm" / "warm.csv", 50), journal, archive, ORDERS)
    tracemalloc.start()
    try:
        small = intake_peak(tmp_path, journal, archive, 1_000)  # about 5,000 lines
        large = intake_peak(tmp_path, journal, archive, 10_000)  # about 50,000 lines
    finally:
        tracemalloc.stop()

    # Holding the file's documents would make it ten times as much; the count kept per
    # business key (a few bytes an order) is all that may grow.
    assert large < 2 * small, (
        f"{large / 1e6:.1f} MB for 10,000 orders, {small / 1e6:.1f} MB for 1,000"
    )

"""Taking one file in: journalled as being read before it is read, resumed only from its own
source, read in isolation when a dead process was reading it, and errors that are the file's
own told from the gateway's."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from edigw.errors import ChannelError, EdigwError, JournalError
from edigw.formats.limits import ReaderLimits
from edigw.journal import (
    DocumentRow,
    FolderArchive,
    Journal,
    JournalRefused,
    JournalUnavailable,
    JournalValueError,
    NewDocument,
    StateError,
)
from edigw.mapping import load_mapping
from edigw.model import MappedDocument
from edigw.pipeline.file_documents import already_done
from edigw.pipeline.inbound import (
    BeingRead,
    FlowContext,
    Intake,
    IntakeError,
    ingest,
    intake_failure_kind,
    killed_reason,
)
from edigw.pipeline.isolated import IsolationUnavailable, ReaderKilled
from edigw.problems import MAX_MESSAGE, storable
from edigw.processes import process_identity, start_ticks
from edigw.validation import DEFAULT_POLICY
from tests.fixtures.gateway import MAPPINGS, wait_until

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
SAMPLE = next((MAPPINGS.parent / "samples/ecommerce/ecommerce-orders-csv").glob("*.csv"))
ME = process_identity("gw1")


@dataclass
class Watched:
    """The real orders mapping, noting what the journal says while each file is read."""

    journal: Journal
    real: Any = field(default_factory=lambda: load_mapping(MAPPINGS / "ecommerce-orders-csv.yaml"))
    seen: list[list[tuple[str, str | None]]] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return Path(self.real.path)

    @property
    def target(self) -> str:
        return str(self.real.target)

    def map_file(
        self,
        path: Path,
        *,
        source_name: str,
        encoding: str | None = None,
        limits: ReaderLimits | None = None,
    ) -> Iterator[MappedDocument]:
        self.seen.append([(r.original_name, r.reader) for r in self.journal.readings()])
        return self.real.map_file(  # type: ignore[no-any-return]
            path, source_name=source_name, encoding=encoding, limits=limits
        )


@pytest.fixture
def archive(tmp_path: Path) -> FolderArchive:
    return FolderArchive(tmp_path / "archive")


def flow_of(mapping: Watched, *, duplicates: str = "skip") -> FlowContext:
    return FlowContext(
        partner="webshop",
        flow="orders",
        channel="local:/in",
        mapping=mapping,
        duplicates=duplicates,
    )


def drop(tmp_path: Path, name: str) -> Path:
    target = tmp_path / "in" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLE, target)
    return target


def journalled(
    journal: Journal,
    archive: FolderArchive,
    source: Path,
    *,
    reader: str | None = None,
    partner: str = "webshop",
    flow: str = "orders",
) -> int:
    """``source`` archived and journalled (by ``reader``, if any) as an earlier intake left it."""
    stored = archive.store(source)
    return journal.add_file(
        partner=partner,
        flow=flow,
        channel="local:/in",
        original_name=source.name,
        source_path=str(source),
        size=stored.size,
        sha256=stored.sha256,
        archive_path=str(stored.path),
        now=NOW,
        **({} if reader is None else {"reader": reader}),
    )


def take(
    source: Path, journal: Journal, archive: FolderArchive, mapping: Watched, **flow: Any
) -> Any:
    return ingest(
        source,
        original_name=source.name,
        flow=flow_of(mapping, **flow),
        journal=journal,
        archive=archive,
        now=NOW,
        intake=Intake(reader=ME),
    )


def test_a_file_is_journalled_as_being_read_by_this_process_before_it_is_read(
    tmp_path: Path, journal: Journal, archive: FolderArchive
) -> None:
    mapping = Watched(journal)
    ingested = take(drop(tmp_path, "a.csv"), journal, archive, mapping)

    assert mapping.seen == [[("a.csv", ME)]]
    row = journal.file(ingested.file_id)
    assert (row.state, row.reader) == ("parsed", None)


def test_the_same_bytes_under_another_name_are_a_duplicate_not_a_resumed_file(
    tmp_path: Path, journal: Journal, archive: FolderArchive
) -> None:
    mapping = Watched(journal)
    first = take(drop(tmp_path, "a.csv"), journal, archive, mapping)

    second = take(drop(tmp_path, "b.csv"), journal, archive, mapping)

    assert second.file_id != first.file_id
    assert second.state == "skipped_duplicate"
    assert journal.file(second.file_id).error == (
        f"same content as F-{first.file_id}, taken in under another name and still in progress"
    )


def test_a_duplicate_cut_short_before_its_state_is_skipped_not_read(
    tmp_path: Path, journal: Journal, archive: FolderArchive
) -> None:
    mapping = Watched(journal)
    first = take(drop(tmp_path, "a.csv"), journal, archive, mapping)
    again = drop(tmp_path, "b.csv")
    cut_short = journalled(journal, archive, again)  # a crash between the row and its state

    resumed = take(again, journal, archive, mapping)

    assert (resumed.file_id, resumed.state) == (cut_short, "skipped_duplicate")
    assert len(mapping.seen) == 1, "read once, for the first file only"
    assert f"F-{first.file_id}" in (journal.file(cut_short).error or "")


def test_a_file_a_live_process_is_reading_is_left_to_it(
    tmp_path: Path, journal: Journal, archive: FolderArchive
) -> None:
    mapping = Watched(journal)
    source = drop(tmp_path, "a.csv")
    other = f"gw1:{os.getppid()}:{start_ticks(os.getppid())}"
    journalled(journal, archive, source, reader=other)

    with pytest.raises(BeingRead, match=f"is being read by {other}"):
        take(source, journal, archive, mapping)
    assert mapping.seen == []


def test_a_file_a_dead_process_was_reading_is_read_again_in_an_isolated_process(
    tmp_path: Path, journal: Journal, archive: FolderArchive
) -> None:
    mapping = Watched(journal)
    source = drop(tmp_path, "a.csv")
    dead = "gw1:999999999:1"
    file_id = journalled(journal, archive, source, reader=dead)

    resumed = take(source, journal, archive, mapping)

    assert mapping.seen == [], "not read in this process"
    assert (resumed.file_id, resumed.state, resumed.resumed) == (file_id, "parsed", True)
    assert resumed.documents == 3
    assert journal.file(file_id).reader is None


EINVOICE = Path(__file__).parent / "fixtures" / "einvoices" / "ubl-21-en16931.xml"
PAYABLE = b'<cbc:PayableAmount currencyID="EUR">208.03</cbc:PayableAmount>'


def suspect_einvoice(tmp_path: Path, journal: Journal, archive: FolderArchive) -> tuple[Path, int]:
    """A UBL invoice breaking BR-CO-16, journalled as being read by a process now dead."""
    data = EINVOICE.read_bytes()
    assert data.count(PAYABLE) == 1
    source = tmp_path / "in" / "bad-total.xml"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(data.replace(PAYABLE, PAYABLE.replace(b"208.03", b"218.03")))
    file_id = journalled(
        journal, archive, source, reader="gw1:999999999:1", partner="supplier", flow="einvoices"
    )
    return source, file_id


def take_einvoice(source: Path, journal: Journal, archive: FolderArchive) -> Any:
    flow = FlowContext(
        partner="supplier",
        flow="einvoices",
        channel="local:/in",
        mapping=load_mapping(MAPPINGS / "supplier-einvoices.yaml"),
        validation=DEFAULT_POLICY,
    )
    return ingest(
        source,
        original_name=source.name,
        flow=flow,
        journal=journal,
        archive=archive,
        now=NOW,
        intake=Intake(reader=ME),
    )


def test_a_suspect_e_invoice_is_validated_in_the_isolated_process_not_in_the_gateway(
    tmp_path: Path, journal: Journal, archive: FolderArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    def in_the_gateway(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("validated in the gateway")  # pragma: no cover

    monkeypatch.setattr("edigw.pipeline.validating.validate_file", in_the_gateway)
    source, file_id = suspect_einvoice(tmp_path, journal, archive)

    resumed = take_einvoice(source, journal, archive)

    assert (resumed.file_id, resumed.state) == (file_id, "failed")
    assert "[BR-CO-16]" in (journal.file(file_id).error or "")
    assert [(f.rule, f.blocking) for f in journal.findings_of(file_id)] == [("BR-CO-16", True)]


def test_a_suspect_e_invoice_whose_validation_kills_its_process_is_failed_and_not_read(
    tmp_path: Path, journal: Journal, archive: FolderArchive
) -> None:
    source, file_id = suspect_einvoice(tmp_path, journal, archive)
    suspect = journal.file(file_id)
    outcome: list[Any] = []
    taking = threading.Thread(
        target=lambda: outcome.append(take_einvoice(source, journal, archive))
    )

    def validators() -> list[psutil.Process]:
        children = psutil.Process().children(recursive=True)
        return [c for c in children if "edigw.pipeline.isolated" in " ".join(c.cmdline())]

    taking.start()
    try:
        wait_until(lambda: validators() != [], what="the isolated validation started")
        for child in validators():
            child.send_signal(signal.SIGABRT)  # SaxonC aborting on the file
    finally:
        taking.join(timeout=120)

    assert [(i.file_id, i.state) for i in outcome] == [(file_id, "failed")]
    killed = ReaderKilled("was killed by signal 6 (SIGABRT)")
    assert journal.file(file_id).error == killed_reason(suspect, killed)
    assert journal.documents_of(file_id) == []


def test_documents_an_earlier_reading_of_the_source_sent_are_not_sent_again() -> None:
    def new(seq: int, key: str, payload: dict[str, Any], state: str = "pending") -> NewDocument:
        return NewDocument(
            seq=seq,
            business_key=key,
            operation="orders.create",
            payload=payload,
            idempotency_key=f"new-{seq}",
            state=state,
        )

    def old(doc_id: int, seq: int, key: str, payload: dict[str, Any], state: str) -> DocumentRow:
        return DocumentRow(
            id=doc_id,
            file_id=1,
            partner="p",
            flow="f",
            seq=seq,
            business_key=key,
            operation="orders.create",
            payload=payload,
            idempotency_key=f"old-{seq}",
            state=state,
            attempts=1,
            next_attempt_at=None,
            claimed_by=None,
            claimed_until=None,
            ecolix_status=201 if state == "done" else 422,
            ecolix_object_id=f"ORD-{doc_id}" if state == "done" else None,
            ecolix_response={"number": f"ORD-{doc_id}"},
            error=None,
            error_location=None,
            created_at=NOW,
            updated_at=NOW,
        )

    earlier = [
        old(11, 1, "A", {"qty": 1}, "done"),
        old(12, 2, "B", {"qty": 2}, "failed"),
        old(13, 3, "C", {"qty": 3}, "done"),
        old(14, 4, "A", {"qty": 4}, "done"),
    ]
    docs = [
        new(1, "A", {"qty": 1}),  # the same order: already sent
        new(2, "B", {"qty": 2}),  # failed before: sent again
        new(3, "C", {"qty": 30}),  # changed since: sent (Ecolix decides)
        new(4, "A", {"qty": 4}),  # the second A, as before: already sent
        new(5, "A", {"qty": 4}),  # a third A: new
        new(6, "D", {"qty": 6}),  # new
    ]

    result = already_done(docs, earlier, earlier_file=1)

    assert [d.state for d in result] == ["done", "pending", "pending", "done", "pending", "pending"]
    assert (result[0].ecolix_object_id, result[0].ecolix_status) == ("ORD-11", 201)
    assert result[3].note == "already sent as D-14 by F-1, an earlier reading of this source"
    assert [d.idempotency_key for d in result] == [d.idempotency_key for d in docs]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        pytest.param(JournalUnavailable("database is locked"), "transient", id="journal down"),
        pytest.param(JournalError("archive: no space left"), "transient", id="archive full"),
        pytest.param(ChannelError("changed while being archived"), "transient", id="growing"),
        pytest.param(BeingRead("F-3 is being read by gw2"), "transient", id="read elsewhere"),
        pytest.param(IsolationUnavailable("cannot fork"), "transient", id="no isolated reader"),
        pytest.param(JournalValueError("NUL refused"), "refused", id="value refused"),
        pytest.param(JournalRefused("trigger"), "error", id="statement refused"),
        pytest.param(StateError("no longer read by us"), "error", id="settled elsewhere"),
        pytest.param(ChannelError("bad", retriable=False), "error", id="final channel error"),
        pytest.param(KeyError("a bug"), "error", id="a bug"),
        pytest.param(EdigwError("other"), "error", id="other"),
    ],
)
def test_an_intake_error_is_the_gateways_or_the_files(error: Exception, kind: str) -> None:
    assert intake_failure_kind(error) == kind
    assert intake_failure_kind(IntakeError(7, error)) == kind


def test_an_error_is_stored_as_text_that_cannot_be_refused_again() -> None:
    assert storable("CMD\x00-1\tline\nnext\r\x1b") == "CMD\\x00-1\tline\nnext\\x0d\\x1b"
    assert storable("caf\udce9") == "caf\\udce9"
    escaped_then_cut = storable("\x00" * MAX_MESSAGE)  # each NUL takes 4 characters once shown
    assert "\x00" not in escaped_then_cut and len(escaped_then_cut) <= MAX_MESSAGE
    assert escaped_then_cut.startswith("\\x00\\x00")
    assert escaped_then_cut.endswith("more characters)")

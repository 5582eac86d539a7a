"""What the journal keeps of a file's validation findings; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from edigw.journal import Journal
from edigw.journal.findings import FindingRow
from edigw.problems import MAX_KEPT, MAX_KEPT_MESSAGE
from tests.test_journal_problems import add_file

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
BLOCKING = FindingRow(
    "en16931", "BR-CO-16", "fatal", True, "Amount due ...", "inv.xml:264 /Invoice/cac:X"
)
WARNING = FindingRow(
    "br-fr", "BR-FR-05", "fatal", False, "La mention PMT ...", "inv.xml:2 /Invoice"
)


def test_findings_are_kept_in_order_with_a_validated_event(journal: Journal) -> None:
    file_id = add_file(journal, name="inv.xml")

    journal.keep_findings(file_id, [BLOCKING, WARNING], summary="xsd passed", now=T0)

    assert journal.findings_of(file_id) == [BLOCKING, WARNING]
    [event] = journal.events_of(file_id)[-1:]
    assert (event.kind, event.detail) == ("validated", "xsd passed")


def test_validating_a_file_again_replaces_its_findings(journal: Journal) -> None:
    file_id = add_file(journal, name="inv.xml")
    journal.keep_findings(file_id, [BLOCKING, WARNING], summary="first", now=T0)

    journal.keep_findings(file_id, [WARNING], summary="again", now=T0)

    assert journal.findings_of(file_id) == [WARNING]


def test_findings_are_bounded_in_number_and_length_and_escaped(journal: Journal) -> None:
    file_id = add_file(journal, name="inv.xml")
    long = FindingRow("xsd", "XSD", "error", True, "\x00" + "x" * 50_000, None)

    journal.keep_findings(file_id, [long] * (MAX_KEPT + 5), summary="many", now=T0)

    kept = journal.findings_of(file_id)
    assert len(kept) == MAX_KEPT
    assert kept[0].message.startswith("\\x00x")
    assert len(kept[0].message) <= MAX_KEPT_MESSAGE


def test_a_purged_file_takes_its_findings_with_it(journal: Journal) -> None:
    file_id = add_file(journal, name="inv.xml")
    journal.keep_findings(file_id, [WARNING], summary="ok", now=T0)

    journal.purge(file_ids=[file_id], run_ids=[])

    assert journal.findings_of(file_id) == []

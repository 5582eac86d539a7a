"""The files a node's mover settles for another node's senders: ``Journal.files_to_settle``.

With several nodes, the last document of a file held by one node may be finished by another
node's sender, which settles the file and tells only its own mover; or dies between its last
document's end and the file's settling. Either way the holder finds the file in the journal.
"""

from __future__ import annotations

from datetime import UTC, datetime

from edigw.journal import Journal
from tests.support.queued import keyed_documents, received_file, sent_and_done

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def parsed_file(journal: Journal, keys: list[str]) -> tuple[int, list[int]]:
    file_id = received_file(journal, name=f"{'-'.join(keys)}.csv", now=T0, ordered=False)
    return file_id, journal.add_documents(file_id, keyed_documents(file_id, keys), now=T0)


def done(journal: Journal, doc_id: int) -> None:
    sent_and_done(journal, doc_id, now=T0)


def test_a_file_settled_by_another_node_is_to_settle_here(journal: Journal) -> None:
    file_id, docs = parsed_file(journal, ["C1"])
    done(journal, docs[0])
    assert journal.finish_file_if_complete(file_id, now=T0) == "done"

    assert journal.files_to_settle([file_id]) == [file_id]


def test_a_file_whose_last_finisher_died_before_settling_it_is_to_settle(
    journal: Journal,
) -> None:
    file_id, docs = parsed_file(journal, ["C1", "C2"])
    for doc_id in docs:
        done(journal, doc_id)  # and no finish_file_if_complete: that node was killed

    assert journal.file(file_id).state == "parsed"
    assert journal.files_to_settle([file_id]) == [file_id]


def test_a_file_with_a_document_still_to_send_is_not_to_settle(journal: Journal) -> None:
    file_id, docs = parsed_file(journal, ["C1", "C2"])
    done(journal, docs[0])

    assert journal.files_to_settle([file_id]) == []


def test_a_file_still_being_taken_in_is_not_to_settle(journal: Journal) -> None:
    file_id = received_file(journal, name="in.csv", now=T0)

    assert journal.files_to_settle([file_id]) == []

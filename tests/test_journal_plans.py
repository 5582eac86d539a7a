"""On PostgreSQL, a sender's statements (its claim, its done, the question whether a file is
finished) are planned once, not at every document: their generic plan is one the server keeps,
and it still seeks. Planned anew each time, the claim alone cost 0.15 ms of the server's CPU a
document, more than running it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edigw.journal import Journal
from tests.support.plans import Sent, generic_plan, plans_chosen, statements_run
from tests.support.queued import done_claiming_next, keyed_documents, received_file

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RUNS = 12  # PostgreSQL weighs the generic plan after five custom ones


def queued(journal: Journal, *, ordered: bool, documents: int = 2000) -> int:
    file_id = received_file(journal, now=T0, ordered=ordered, name=f"o{ordered}.csv")
    keys = [f"K{n}" for n in range(documents)]
    journal.add_documents(file_id, keyed_documents(file_id, keys), now=T0)
    return file_id


def claim_for_sending(journal: Journal) -> int:
    claimed = journal.claim_for_sending(now=T0, node="node-a", lease_seconds=60.0)
    assert claimed is not None
    return claimed.id


def run_while(journal: Journal, prefix: str, action: object) -> Sent:
    """The one statement starting with ``prefix`` that ``action()`` runs."""
    with statements_run(journal, prefix) as seen:
        action()  # type: ignore[operator]
    [sent] = seen
    return sent


def senders_claim(url: str, *, ordered: bool) -> Sent:
    """The statement a sender claims with, as run on a file of queued documents."""
    journal = Journal.open(url)
    try:
        queued(journal, ordered=ordered)
        return run_while(journal, "WITH picked", lambda: claim_for_sending(journal))
    finally:
        journal.close()


@pytest.mark.parametrize("ordered", [False, True], ids=["unordered", "ordered"])
def test_a_senders_claim_is_planned_once_for_every_document(
    postgres_url: str, ordered: bool
) -> None:
    claim = senders_claim(postgres_url, ordered=ordered)
    generic, custom = plans_chosen(postgres_url, claim, runs=RUNS)
    assert (generic, custom) == (RUNS - 5, 5)


def test_a_claim_walks_the_heads_index_in_its_generic_plan(postgres_url: str) -> None:
    plan = generic_plan(postgres_url, senders_claim(postgres_url, ordered=False))
    assert "ix_documents_heads" in plan.split("CTE claimed", 1)[0], plan


@pytest.mark.parametrize("ordered", [False, True], ids=["unordered", "ordered"])
def test_a_done_claiming_the_next_document_is_planned_once_for_every_document(
    postgres_url: str, ordered: bool
) -> None:
    journal = Journal.open(postgres_url)
    try:
        file_id = queued(journal, ordered=ordered)
        first = claim_for_sending(journal)
        with statements_run(journal, "WITH") as sent:
            second = done_claiming_next(journal, first, now=T0, file_id=file_id).claimed
            assert second is not None
            done_claiming_next(journal, second.id, now=T0, file_id=file_id)
    finally:
        journal.close()
    distinct = list({statement: (statement, params) for statement, params in sent}.values())
    assert len(distinct) == 2  # the done, and the claim (counting the file's documents or not)
    for statement in distinct:
        generic, custom = plans_chosen(postgres_url, statement, runs=RUNS)
        assert (generic, custom) == (RUNS - 5, 5), statement[0][:200]

"""No call wasted: an upsert of the payload Ecolix last accepted for the same object is not
sent, the document is journalled ``unchanged``; ``status`` counts it, ``show`` says why,
``replay --force`` sends it anyway; creates are always sent. Calls are counted by the real
sandbox (``/_sandbox/calls``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from edigw.journal.accepted import Upsert
from edigw.journal.rows import NewDocument
from edigw.journal.store import Journal
from edigw.pipeline.gateway_status import gateway_status
from edigw.pipeline.replay import ReplayItem, replay_items
from edigw.pipeline.stories import process_file
from edigw.pipeline.unchanged import judge, upsert_of
from tests.fixtures.gateway import Workspace, inbound_flow, write_workspace
from tests.fixtures.sandbox import SandboxProcess
from tests.support.cli import edigw
from tests.support.customers import customer_rows, write_export

FLOW = "webshop/customers"
NOW = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
ECOLIX = "http://127.0.0.1:1/api/v1"


def workspace(root: Path, ecolix: SandboxProcess) -> Workspace:
    return write_workspace(
        root,
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={
            "webshop": {
                "customers": inbound_flow("ecommerce-customers-csv.yaml", "webshop", "customers")
            }
        },
    )


def calls_made(ecolix: SandboxProcess, before: dict[str, dict[str, int]]) -> Counter[str]:
    """API calls per operation the sandbox answered since ``before``."""
    made: Counter[str] = Counter()
    for operation, statuses in ecolix.calls().items():
        old = before.get(operation, {})
        made[operation] = sum(n - old.get(status, 0) for status, n in statuses.items())
    return +made


def test_the_same_50_customers_again_with_one_row_changed_make_exactly_one_call(
    tmp_path: Path, sandbox: SandboxProcess
) -> None:
    config = workspace(tmp_path / "gw", sandbox).load()
    first = write_export(tmp_path / "clients_1.csv", customer_rows(50, prefix="ONE"))
    story = process_file(config, FLOW, first)
    assert [d.state for d in story.documents] == ["done"] * 50

    before = sandbox.calls()
    again = write_export(tmp_path / "clients_2.csv", customer_rows(50, prefix="ONE", changed=7))
    story = process_file(config, FLOW, again)

    assert calls_made(sandbox, before) == {"customers.upsert": 1}
    states = Counter(d.state for d in story.documents)
    assert states == {"unchanged": 49, "done": 1}
    [sent] = [d for d in story.documents if d.state == "done"]
    assert sent.business_key == "ONE-00007"
    assert story.file.state == "done"
    with sandbox.client() as http:
        assert http.get("/customers/ONE-00007").json()["phone"] == "07 00 00 00 01"


def test_status_counts_unchanged_documents_apart_and_show_says_why(
    tmp_path: Path, sandbox: SandboxProcess
) -> None:
    ws = workspace(tmp_path / "gw", sandbox)
    config = ws.load()
    process_file(config, FLOW, write_export(tmp_path / "a.csv", customer_rows(3, prefix="TWO")))
    story = process_file(
        config, FLOW, write_export(tmp_path / "b.csv", customer_rows(3, prefix="TWO", changed=2))
    )

    [flow] = [f for f in gateway_status(config).flows if f.flow == FLOW]
    assert (flow.documents_unchanged, flow.documents_failed, flow.done) == (2, 0, 2)
    unchanged = story.documents[0]
    assert unchanged.state == "unchanged"
    shown = edigw(ws, "show", story.file.ref, columns=200)
    assert shown.exit_code == 0, shown.output
    assert f"{unchanged.ref} TWO-00001  customers.upsert  unchanged" in shown.output
    assert f"not sent: Ecolix already holds this payload (edigw replay --force {unchanged.ref}" in (
        " ".join(shown.output.split())
    )
    status = edigw(ws, "status", columns=200)
    assert "unchanged" in status.output


def test_replay_sends_an_unchanged_document_only_with_force(
    tmp_path: Path, sandbox: SandboxProcess
) -> None:
    config = workspace(tmp_path / "gw", sandbox).load()
    process_file(config, FLOW, write_export(tmp_path / "a.csv", customer_rows(2, prefix="TRI")))
    story = process_file(
        config, FLOW, write_export(tmp_path / "b.csv", customer_rows(2, prefix="TRI", changed=2))
    )
    unchanged = story.documents[0]
    item = ReplayItem("F", story.file.id, unchanged.id)

    before = sandbox.calls()
    (plain,) = replay_items(config, [item], dry_run=False)
    assert calls_made(sandbox, before) == {}
    assert plain.plan is not None and plain.plan.unchanged == [
        f"{unchanged.ref} TRI-00001: Ecolix already holds this payload"
    ]

    (forced,) = replay_items(config, [item], dry_run=False, force=True)
    assert calls_made(sandbox, before) == {"customers.upsert": 1}
    assert forced.plan is not None and forced.plan.requeued == [f"{unchanged.ref} TRI-00001"]
    assert forced.outcome == "done"


def test_the_customer_of_a_repeated_order_is_not_upserted_again_but_the_order_is_sent(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    from tests.test_pipeline_before_steps import FLOW as ORDERS
    from tests.test_pipeline_before_steps import orders_file
    from tests.test_pipeline_before_steps import workspace as orders_workspace

    ecolix = sandbox_factory()
    config = orders_workspace(tmp_path / "gw", ecolix).load()
    process_file(config, ORDERS, orders_file(tmp_path, "#1101"))
    folder = tmp_path / "again"
    folder.mkdir()
    again = orders_file(folder, "#1101")
    again.write_bytes(again.read_bytes() + b"\n")  # other bytes, the same order

    before = ecolix.calls()
    story = process_file(config, ORDERS, again)

    upsert, order = story.documents
    assert upsert.state == "unchanged"
    assert calls_made(ecolix, before) == {"orders.create": 1}  # a create is always sent
    assert order.operation == "orders.create"


def test_a_create_is_never_judged_unchanged() -> None:
    assert upsert_of("orders.create", {"number": "CMD-1"}, ecolix=ECOLIX) is None
    customer = {"code": "C1", "name": "Dupont"}
    upsert = upsert_of("customers.upsert", customer, ecolix=ECOLIX)
    assert upsert is not None and (upsert.operation, upsert.target) == (
        "customers.upsert",
        "/customers/C1",
    )


def _doc(seq: int, key: str, payload: dict[str, str]) -> NewDocument:
    return NewDocument(
        seq=seq,
        business_key=payload["code"],
        operation="customers.upsert",
        payload=payload,
        idempotency_key=key,
    )


def _file(journal: Journal, name: str) -> int:
    return journal.add_file(
        partner="p",
        flow="f",
        channel="local:in",
        original_name=name,
        source_path=name,
        size=1,
        sha256=name,
        archive_path=name,
        now=NOW,
    )


def test_a_payload_is_sent_again_while_another_one_is_on_its_way(journal: Journal) -> None:
    old, new = {"code": "C1", "name": "old"}, {"code": "C1", "name": "new"}
    first = judge([_doc(1, "k1", old)], ecolix=ECOLIX, journal=journal)
    [doc_id] = journal.add_documents(_file(journal, "a"), first, now=NOW)
    journal.mark_done(
        doc_id, now=NOW, status=200, object_id="C1", response={}, upsert=first[0].upsert
    )
    assert [d.state for d in judge([_doc(1, "k2", old)], ecolix=ECOLIX, journal=journal)] == [
        "unchanged"
    ]

    changed = judge([_doc(1, "k3", new)], ecolix=ECOLIX, journal=journal)
    journal.add_documents(_file(journal, "b"), changed, now=NOW)  # pending, not sent yet

    # Ecolix still holds "old", but "new" is on its way: "old" must be sent after it.
    assert [d.state for d in judge([_doc(1, "k4", old)], ecolix=ECOLIX, journal=journal)] == [
        "pending"
    ]


def test_another_ecolix_knows_nothing_of_what_the_first_accepted(journal: Journal) -> None:
    payload = {"code": "C2", "name": "same"}
    first = judge([_doc(1, "k1", payload)], ecolix=ECOLIX, journal=journal)
    [doc_id] = journal.add_documents(_file(journal, "a"), first, now=NOW)
    journal.mark_done(
        doc_id, now=NOW, status=200, object_id="C2", response={}, upsert=first[0].upsert
    )

    production = "https://ecolix.example/api/v1"
    assert [
        d.state for d in judge([_doc(1, "k2", payload)], ecolix=production, journal=journal)
    ] == ["pending"]


def test_a_file_repeating_an_object_sends_what_follows_a_change(journal: Journal) -> None:
    a, b = {"code": "C3", "name": "a"}, {"code": "C3", "name": "b"}
    first = judge([_doc(1, "k1", a)], ecolix=ECOLIX, journal=journal)
    [doc_id] = journal.add_documents(_file(journal, "x"), first, now=NOW)
    journal.mark_done(
        doc_id, now=NOW, status=200, object_id="C3", response={}, upsert=first[0].upsert
    )

    judged = judge([_doc(1, "k2", b), _doc(2, "k3", a)], ecolix=ECOLIX, journal=journal)
    assert [d.state for d in judged] == ["pending", "pending"]
    assert isinstance(judged[0].upsert, Upsert)

"""Chains whose first write comes before the document's own (`before:`): a web-shop order
upserts its customer, then creates the order. Each write is a journal document with its own
key; a failed customer stops the order, naming the step; a replay resumes at the failed step.
Skipped documents (`skip_if`) are journalled, never sent. Against the real sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from edigw.journal.rows import NewDocument
from edigw.journal.store import Journal
from edigw.mapping import load_mapping
from edigw.pipeline.assembly import open_parts
from edigw.pipeline.chain import resolve, step_payload
from edigw.pipeline.inbound import ingest
from edigw.pipeline.keys import idempotency_key
from edigw.pipeline.replay import ReplayItem, replay_items
from edigw.pipeline.senders import send_due
from edigw.pipeline.signals import Signals
from edigw.pipeline.stories import process_file
from tests.fixtures.gateway import Workspace, inbound_flow, write_workspace
from tests.fixtures.sandbox import SandboxProcess

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "ecommerce" / "shopify-orders-csv" / "orders_export_1.csv"
FLOW = "shop/orders"
NOW = datetime(2026, 11, 28, 19, 0, tzinfo=UTC)


def workspace(root: Path, ecolix: SandboxProcess, **retry: float) -> Workspace:
    return write_workspace(
        root,
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={"shop": {"orders": inbound_flow("shopify-orders-csv.yaml", "shop", "orders")}},
        retry=retry or None,
    )


def orders_file(folder: Path, *names: str) -> Path:
    """The sample's header and the rows of the orders ``names`` (#1101, ...)."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [lines[0], *(line for line in lines[1:] if line.split(",", 1)[0] in names)]
    path = folder / "orders_export_2.csv"
    path.write_text("".join(kept), encoding="utf-8")
    return path


def test_the_customer_is_upserted_before_the_order_each_with_its_own_key(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    ecolix = sandbox_factory()
    story = process_file(
        workspace(tmp_path / "gw", ecolix).load(), FLOW, orders_file(tmp_path, "#1101")
    )

    upsert, order = story.documents
    assert (upsert.operation, order.operation) == ("customers.upsert", "orders.create")
    assert (upsert.state, order.state, story.file.state) == ("done", "done", "done")
    assert upsert.idempotency_key == idempotency_key(
        partner="shop", flow="orders", file_sha256=story.file.sha256, business_key="#1101"
    )
    assert order.idempotency_key == idempotency_key(
        partner="shop",
        flow="orders",
        file_sha256=story.file.sha256,
        business_key="#1101",
        step=2,
    )
    assert order.payload is not None and order.payload["$chain"] == {
        "step": 2,
        "first_seq": 1,
        "answer": 2,  # the document's own write: what a `then:` step's `answer:` reads
    }
    assert upsert.ecolix_status == 201
    with ecolix.client() as client:
        created = client.get(f"/orders/{order.ecolix_object_id}").json()
    assert created["customer_code"] == upsert.ecolix_object_id


def test_a_failed_customer_stops_the_order_naming_the_step_and_a_replay_resumes_there(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    ecolix = sandbox_factory()
    ws = workspace(tmp_path / "gw", ecolix, max_attempts=1, first_delay=0.1, max_delay=0.1)
    path = orders_file(tmp_path, "#1103")
    config = ws.load()
    with open_parts(config, with_channels=False) as parts:
        ingested = ingest(
            path,
            original_name=path.name,
            flow=parts.inbound[FLOW].context,
            journal=parts.journal,
            archive=parts.archive,
            now=NOW,
        )
        signals = Signals()
        ecolix.inject_faults(500, 1)  # Ecolix fails the customer's call, once
        upserted = send_due(parts, signals, clock=lambda: NOW, file_id=ingested.file_id)
        ordered = send_due(parts, signals, clock=lambda: NOW, file_id=ingested.file_id)
        upsert, order = parts.journal.documents_of(ingested.file_id)
    assert upserted is not None and upserted.state == "failed"
    assert ordered is not None and ordered.state == "failed"
    assert order.error == f"not sent: step 1 (D-{upsert.id} customers.upsert) is failed"
    assert order.ecolix_status is None

    (result,) = replay_items(config, [ReplayItem("F", ingested.file_id)], dry_run=False)
    assert result.outcome == "done", result.lines()
    journal = ws.journal()
    try:
        upsert, order = journal.documents_of(ingested.file_id)
    finally:
        journal.close()
    assert (upsert.state, order.state) == ("done", "done")
    assert ecolix.counts()["order"] == 43  # the 42 seeded orders and this one


def test_then_steps_after_before_steps_read_the_documents_own_answer(tmp_path: Path) -> None:
    journal = Journal.open(f"sqlite:///{tmp_path / 'journal.sqlite'}")
    try:
        docs = [
            NewDocument(1, "K", "customers.upsert", {"code": "C"}, "key-1"),
            NewDocument(
                2, "K", "orders.create", step_payload({"x": 1}, step=2, first_seq=1), "key-2"
            ),
            NewDocument(
                3,
                "K",
                "delivery_notes.create",
                step_payload(
                    {"order_number": {"$answer": "/number"}}, step=3, first_seq=1, answer=2
                ),
                "key-3",
            ),
        ]
        file_id = journal.add_file(
            partner="p",
            flow="f",
            channel="c",
            original_name="n.csv",
            source_path="n.csv",
            size=1,
            sha256="0" * 64,
            archive_path="a",
            now=NOW,
            documents=docs,
        )
        for row, answer in zip(
            journal.documents_of(file_id)[:2], ({"code": "C"}, {"number": "CMD-9"}), strict=True
        ):
            journal.mark_sent(row.id, now=NOW)
            journal.mark_done(row.id, now=NOW, status=201, object_id=None, response=answer)
        third = journal.documents_of(file_id)[2]
        body = resolve(third, journal=journal, archive=None)
    finally:
        journal.close()
    assert body == {"order_number": "CMD-9"}


def test_a_file_whose_documents_are_all_skipped_is_done_saying_so(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    ecolix = sandbox_factory()
    path = orders_file(tmp_path, "#1104", "#1105")  # cancelled, unpaid
    story = process_file(workspace(tmp_path / "gw", ecolix).load(), FLOW, path)

    assert story.file.state == "done"
    assert [d.state for d in story.documents] == ["skipped", "skipped"]
    assert [d.attempts for d in story.documents] == [0, 0]
    assert story.documents[0].error == (
        "skipped: cancelled on the shop (rule skip_if[0]: record['Cancelled at'])"
    )
    assert story.documents[0].error_location == "orders_export_2.csv:2"
    assert any("2 skipped by the mapping" in (e.detail or "") for e in story.events)
    assert ecolix.counts()["order"] == 42


def test_a_skip_rule_that_cannot_be_evaluated_is_the_documents_problem(tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(
        "version: 1\nsource: {format: csv, delimiter: ';'}\ndocuments: {per: record}\n"
        "target: customers.upsert\nkey: code\n"
        'skip_if:\n  - {expr: "record.total | decimal > 0", reason: paid}\n'
        "fields:\n  code: code\n  name: name\n"
        "  billing_address: {fields: {line1: a, postal_code: p, city: c, country: {value: FR}}}\n",
        encoding="utf-8",
    )
    data = tmp_path / "c.csv"
    data.write_text("code;name;a;p;c;total\nC1;N;1 rue;75001;Paris;douze\n", encoding="utf-8")
    [document] = load_mapping(mapping).map_file(data, source_name="c.csv")
    assert document.skipped is None and document.payload is None
    assert document.problems[0].message.startswith("skip_if[0]: expression ")
    assert str(document.problems[0].location) == "c.csv:2"


def test_mapping_test_explain_shows_every_step_of_the_chain(tmp_path: Path) -> None:
    from edigw.mapping.explain import explain_lines

    mapping = load_mapping(ROOT / "mappings" / "shopify-orders-csv.yaml")
    path = orders_file(tmp_path, "#1101", "#1104")
    first, skipped = mapping.explain_file(path, source_name=path.name)
    lines = explain_lines(first)
    assert (
        lines[1] == "  chain: 1 customers.upsert (/before/0), then 2 orders.create (this document)"
    )
    assert any(line.startswith('  /before/0/code = "SHOP-') for line in lines)
    assert any(line.startswith('  /before/0/if_exists = "keep"') for line in lines)
    assert any(line.startswith('  /payment/amount = "458.82"') for line in lines)
    assert explain_lines(skipped)[1] == (
        "  SKIPPED skipped: cancelled on the shop (rule skip_if[0]: record['Cancelled at'])"
    )

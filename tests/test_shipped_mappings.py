"""The shipped mappings: every sample maps to its golden output, and Ecolix accepts it.

Layout (see ``samples/README.md``)::

    mappings/<name>.yaml
    samples/<package>/<name>/<file>        good samples of that mapping
    tests/golden/<name>/<file>.json        what ``edigw mapping test`` prints for them

A golden file is the JSON of ``edigw mapping test MAPPING SAMPLE``, so a consultant can check
a change by hand with ``--expect tests/golden/<name>/<file>.json``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from edigw.mapping import load_mapping
from edigw.mapping.sample import check_mappings, diff_expected, run_samples

ROOT = Path(__file__).resolve().parent.parent
MAPPINGS = ROOT / "mappings"
SAMPLES = ROOT / "samples"
GOLDEN = ROOT / "tests" / "golden"

#: The OASIS UBL 2.1 examples, copied byte for byte (samples/README.md gives provenance).
UBL_EXAMPLES = {
    "supplier/supplier-invoices-ubl/UBL-Invoice-2.1-Example.xml": (
        "2a3c9303ec7f3a8d944eea29d023db87a5116975f6abb14bb75c022b5d0c8c8f"
    ),
    "supplier/supplier-credit-notes-ubl/UBL-CreditNote-2.1-Example.xml": (
        "5aff8d60535b846920b78efc37bd76163c4ac095fd773702b50a61d81386398e"
    ),
    "supplier/supplier-confirmations-ubl/UBL-OrderResponse-2.1-Example.xml": (
        "a5f109d4d7ce3fe836d4ad4bcddb58b11d93e713e6b8222ff4840d4a08d0fe33"
    ),
    "ecommerce/buyer-orders-ubl/UBL-Order-2.1-Example.xml": (
        "738c54aa2768df26ed3c83f44c0cc93aaa1fa970ae570400fc44c214bcc51ff2"
    ),
}


#: Samples Ecolix cannot accept yet, and why (``"<mapping>/<sample>": reason``). Their golden
#: files hold the intended payloads; the marks are strict, so closing a gap fails the test until
#: the entry is removed. (The OASIS UBL Invoice and CreditNote examples were here until the
#: contract took negative return lines and keyed supplier documents on their type too.)
KNOWN_GAPS: dict[str, str] = {}


def gap_marks(sample: Path) -> list[pytest.MarkDecorator]:
    reason = KNOWN_GAPS.get(f"{sample.parent.name}/{sample.name}")
    return [pytest.mark.xfail(reason=reason, strict=True)] if reason else []


def shipped_mappings() -> list[Path]:
    return sorted(MAPPINGS.glob("*.yaml"))


def good_samples(mapping: Path) -> list[Path]:
    return sorted(
        p
        for p in SAMPLES.glob(f"*/{mapping.stem}/*")
        if p.is_file() and p.relative_to(SAMPLES).parts[0] != "bad"
    )


def golden_for(sample: Path) -> Path:
    return GOLDEN / sample.parent.name / f"{sample.name}.json"


CASES = [
    pytest.param(mapping, sample, id=f"{mapping.stem}/{sample.name}", marks=gap_marks(sample))
    for mapping in shipped_mappings()
    for sample in good_samples(mapping)
]


def mapped(mapping: Path, sample: Path) -> list[dict[str, Any]]:
    run = run_samples(load_mapping(mapping), sample)
    problems = [d for d in run.documents if "problems" in d or "error" in d]
    assert problems == [], json.dumps(problems, indent=2, ensure_ascii=False)
    return run.documents


@pytest.mark.parametrize(("mapping", "sample"), CASES)
def test_sample_maps_to_its_golden_output(mapping: Path, sample: Path) -> None:
    run = run_samples(load_mapping(mapping), sample)

    assert run.ok, json.dumps(run.documents, indent=2, ensure_ascii=False)
    assert diff_expected(run, golden_for(sample)) == []


def test_every_shipped_mapping_has_a_sample_and_a_golden() -> None:
    assert len(shipped_mappings()) >= 11
    for mapping in shipped_mappings():
        samples = good_samples(mapping)
        assert samples, f"{mapping.name} has no sample in samples/*/{mapping.stem}/"
        for sample in samples:
            assert golden_for(sample).is_file(), f"{sample} has no golden {golden_for(sample)}"


def test_every_golden_file_belongs_to_a_sample() -> None:
    expected = {golden_for(c.values[1]) for c in CASES}  # type: ignore[arg-type]
    inbound = {p for p in GOLDEN.rglob("*.json") if p.parent.name != "outbound"}  # exports' own
    assert inbound == expected


def test_every_sample_folder_names_a_shipped_mapping() -> None:
    names = {m.stem for m in shipped_mappings()}
    # samples/einvoices and samples/ordering are corpora (their own README and tests), not
    # mapping samples.
    folders = {
        p.name
        for p in SAMPLES.glob("*/*")
        if p.is_dir() and p.parent.name not in ("bad", "tools", "einvoices", "ordering")
    }
    assert folders <= names


def test_shipped_mappings_and_their_lookup_tables_pass_mapping_check() -> None:
    results = check_mappings([MAPPINGS])
    assert {r.path.name: r.problems for r in results if r.problems} == {}
    assert len(results) == len(shipped_mappings())


@pytest.mark.parametrize(
    "sample",
    [
        *sorted((SAMPLES / "supplier" / "supplier-einvoices").iterdir()),
        *sorted((SAMPLES / "ecommerce" / "buyer-orders-orderx").iterdir()),
    ],
    ids=lambda p: p.name,
)
def test_einvoice_samples_are_unchanged_copies_of_the_corpus(sample: Path) -> None:
    copies = [p for p in (SAMPLES / "einvoices").rglob(sample.name) if p.is_file()]
    assert len(copies) == 1
    assert copies[0].read_bytes() == sample.read_bytes()


@pytest.mark.parametrize(("relative", "sha256"), list(UBL_EXAMPLES.items()))
def test_ubl_samples_are_the_unchanged_oasis_examples(relative: str, sha256: str) -> None:
    assert hashlib.sha256((SAMPLES / relative).read_bytes()).hexdigest() == sha256


def test_ubl_credit_note_is_posted_as_a_credit_note_with_the_invoices_it_names() -> None:
    folder = GOLDEN / "supplier-credit-notes-ubl"
    (named,) = json.loads((folder / "AV-2026-0051_visserie-du-rhone.xml.json").read_text("utf-8"))
    (oasis,) = json.loads((folder / "UBL-CreditNote-2.1-Example.xml.json").read_text("utf-8"))
    assert named["payload"]["document_type"] == "credit_note"
    assert named["payload"]["preceding_invoices"] == [
        {"number": "F2026-702", "issue_date": "2026-11-15"}
    ]
    # The OASIS example names no invoice: posted without, never with its own number.
    assert oasis["payload"]["document_type"] == "credit_note"
    assert "preceding_invoices" not in oasis["payload"]


def test_ubl_return_lines_keep_their_sign() -> None:
    golden = GOLDEN / "supplier-invoices-ubl" / "UBL-Invoice-2.1-Example.xml.json"
    (document,) = json.loads(golden.read_text(encoding="utf-8"))
    lines = document["payload"]["lines"]
    assert [(line["quantity"], line["net_amount"]) for line in lines] == [
        ("1", "1273.00"),
        ("-1", "-3.96"),
        ("2", "4.96"),
        ("-1", "-25.00"),
        ("250", "187.50"),
    ]
    assert document["payload"]["totals"] == {
        "net": "1436.50",
        "vat": "292.20",
        "gross": "1728.70",
        "prepaid": "1000.00",
        "rounding": "0.30",
        "payable": "729.00",
    }


def test_every_target_operation_is_covered() -> None:
    targets = {load_mapping(m).target for m in shipped_mappings()}
    assert targets == {
        "customers.upsert",
        "orders.create",
        "quotes.validate",
        "delivery_notes.create",
        "purchase_orders.confirm",
        "supplier_invoices.create",
    }


# --- End to end: the real sandbox accepts every good sample's payloads ----------------------


@pytest.fixture(scope="module")
def ecolix(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One real sandbox (uvicorn on loopback, shipped seed) shared by every sample, as in the
    demo: the samples must not step on each other either."""
    from edigw.ecolix.client import EcolixClient
    from edigw.sandbox.server import run_in_thread

    db = tmp_path_factory.mktemp("sandbox") / "sandbox.sqlite"
    with (
        run_in_thread(
            db, token="T", rate_limit="100000/minute", seed=SAMPLES / "sandbox-seed.json"
        ) as base_url,
        EcolixClient(base_url, "T") as client,
    ):
        yield client


@pytest.mark.parametrize(("mapping", "sample"), CASES)
def test_sample_payloads_are_accepted_by_the_sandbox(
    ecolix: Any, mapping: Path, sample: Path
) -> None:
    from edigw.errors import EcolixError

    refused = []
    for document in mapped(mapping, sample):
        if "skipped" in document:  # journalled by the gateway, never sent
            continue
        writes = [*document.get("before", []), document]  # a customer before its order
        for n, write in enumerate(writes, start=1):
            key = f"shipped-{mapping.stem}-{sample.name}-{document['key']}-{n}"
            try:
                answer = ecolix.write(write["operation"], write["payload"], idempotency_key=key)
            except EcolixError as exc:
                refused.append(f"{document['key']}: {exc}")
                break
            assert answer.status in (200, 201)
            assert answer.object_id, answer.body
            assert not answer.replayed
    assert refused == []


# --- Money computed in the mappings: exact decimals, rounded as Ecolix keeps them -----------


def test_a_woocommerce_unit_price_that_does_not_divide_is_rounded_to_4_places(
    tmp_path: Path,
) -> None:
    """3 at 9.99 excl. VAT: WooCommerce's line is 29.97 + 5.99 VAT (its tax rounded per
    line), 11.98666... incl. VAT a unit. Sent to 4 places, quantity x price is the line again
    to the cent (Ecolix's first rule), so the order's total stays the shop's."""
    sample = next(SAMPLES.glob("*/woocommerce-orders-csv/*.csv"))
    with sample.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        row = next(reader)
    row |= {"item_quantity": "3", "item_subtotal": "29.97", "item_subtotal_tax": "5.99",
            "item_total": "29.97", "item_total_tax": "5.99"}  # fmt: skip
    one = tmp_path / "one-line.csv"
    with one.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerow(row)

    [document] = mapped(MAPPINGS / "woocommerce-orders-csv.yaml", one)

    [line] = document["payload"]["lines"]
    assert line["unit_price"] == "11.9867"
    amount = (Decimal(line["quantity"]) * Decimal(line["unit_price"])).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    assert amount == Decimal("29.97") + Decimal("5.99")


def test_a_ubl_order_price_for_several_units_is_rounded_to_4_places(tmp_path: Path) -> None:
    """PriceAmount 50 for a BaseQuantity of 3: 16.6667 a unit, not 28 digits Ecolix refuses."""
    sample = SAMPLES / "ecommerce" / "buyer-orders-ubl" / "UBL-Order-2.1-Example.xml"
    text = sample.read_text(encoding="utf-8")
    base = '<cbc:BaseQuantity unitCode="LTR">1</cbc:BaseQuantity>'
    assert base in text
    order = tmp_path / "order.xml"
    order.write_text(text.replace(base, base.replace(">1<", ">3<")), encoding="utf-8")

    [document] = mapped(MAPPINGS / "buyer-orders-ubl.yaml", order)

    assert document["payload"]["lines"][0]["unit_price"] == "16.6667"

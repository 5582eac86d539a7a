"""Buyers' and suppliers' order documents through the shipped mappings into the real sandbox.

PEPPOL BIS 3 Order Responses of every kind (accepted, accepted with changes, rejected and
acknowledged for the whole order, with or without lines; line codes 1, 3, 5, 7 and 42; promised
dates at order and line level; parts, backorders, substitutes), the OASIS OrderResponse, a UBL
Order and Order-X orders: each is mapped with its shipped mapping and sent to a sandbox on the
shipped seed (uvicorn on loopback), and what Ecolix recorded is checked against the document.
The corpus (``samples/ordering/``) is kept byte for byte: its README lists every file's sha256.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edigw.ecolix.client import EcolixClient
from edigw.errors import EcolixError
from edigw.mapping import load_mapping
from edigw.mapping.sample import run_samples
from edigw.sandbox.server import run_in_thread

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
CORPUS = SAMPLES / "ordering"
CONFIRMATIONS = ROOT / "mappings" / "supplier-confirmations-ubl.yaml"
PEPPOL = CORPUS / "peppol-bis3"
SPLIT = CORPUS / "ours" / "OrderResponse_PO-2026-0012_split-delivery.xml"


def readme_hashes() -> dict[str, str]:
    """``relative path -> sha256`` from the corpus README's table."""
    text = (CORPUS / "README.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", text, re.MULTILINE))


def test_every_corpus_file_is_listed_with_its_sha256() -> None:
    on_disk = {
        str(p.relative_to(CORPUS)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in CORPUS.rglob("*.xml")
    }
    assert readme_hashes() == on_disk


@pytest.mark.parametrize(
    "sample",
    sorted(
        p
        for p in (SAMPLES / "supplier" / "supplier-confirmations-ubl").glob("*.xml")
        if p.name != "UBL-OrderResponse-2.1-Example.xml"  # OASIS: test_shipped_mappings
    ),
    ids=lambda p: p.name,
)
def test_confirmation_samples_are_unchanged_copies_of_the_corpus(sample: Path) -> None:
    (original,) = list(CORPUS.rglob(sample.name))
    assert original.read_bytes() == sample.read_bytes()


# --- Supplier answers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ecolix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EcolixClient]:
    """One sandbox on the shipped seed for the answers: each test looks only at what its
    own document decided, so they hold in any order (as in the demo)."""
    db = tmp_path_factory.mktemp("ordering") / "sandbox.sqlite"
    with (
        run_in_thread(
            db, token="T", rate_limit="100000/minute", seed=SAMPLES / "sandbox-seed.json"
        ) as base_url,
        EcolixClient(base_url, "T") as client,
    ):
        yield client


def mapped_one(mapping: Path, sample: Path) -> dict[str, Any]:
    run = run_samples(load_mapping(mapping), sample)
    (document,) = run.documents
    assert "problems" not in document and "error" not in document, document
    return document


def send(ecolix: EcolixClient, sample: Path, mapping: Path = CONFIRMATIONS) -> dict[str, Any]:
    document = mapped_one(mapping, sample)
    key = f"ordering-{sample.name}-{hashlib.sha256(sample.read_bytes()).hexdigest()[:12]}"
    answer = ecolix.write(document["operation"], document["payload"], idempotency_key=key)
    assert answer.status in (200, 201)
    return answer.body


def lines(po: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {line["line_number"]: line for line in po["lines"]}


def ordered(number: str, line: int) -> dict[str, Any]:
    from tests.fixtures.sandbox_data import seed

    (po,) = [p for p in seed()["purchase_orders"] if p["number"] == number]
    return lines(po)[line]


def test_accepted_with_lines_keeps_each_line_own_promise_and_the_order_promise_for_the_rest(
    ecolix: EcolixClient,
) -> None:
    po = send(ecolix, PEPPOL / "BIS3_OrderResponse_Full_Example.xml")
    got = lines(po)
    assert (po["number"], po["supplier_decision"], po["status"]) == (
        "PO-2026-0006",
        "accepted",
        "confirmed",
    )
    assert po["promised_delivery_date"] == "2013-07-16"
    assert got[1]["status"] == "changed"
    assert (got[1]["confirmed_quantity"], got[1]["confirmed_unit_price"]) == ("10", "1.50")
    assert got[1]["confirmed_delivery_date"] == "2018-08-12"  # the line's own promise
    assert got[1]["confirmed_backorder_quantity"] == "3"
    assert got[1]["substitute"] == {
        "supplier_article_code": "SN-34",
        "gtin": "7400000001235",
        "name": "Sauce brown, ready",
    }
    # line 2 says "accepted" and no date: the order's promise, never the ordered date
    assert got[2]["status"] == "accepted"
    assert got[2]["confirmed_delivery_date"] == "2013-07-16"
    assert got[2]["confirmed_quantity"] == ordered("PO-2026-0006", 2)["quantity"]
    # lines 4 and 5 are not listed: accepted as ordered by the decision for the whole order
    assert {got[4]["status"], got[5]["status"]} == {"accepted"}


def test_accepted_line_with_its_own_period_keeps_its_end_date(ecolix: EcolixClient) -> None:
    po = send(ecolix, PEPPOL / "OrderResponseAdvanced_Example.xml")
    assert lines(po)[2]["confirmed_delivery_date"] == "2022-05-25"
    assert po["promised_delivery_date"] is None


def test_accepted_with_changes_changes_only_what_the_lines_give(ecolix: EcolixClient) -> None:
    po = send(ecolix, PEPPOL / "OrderResponse_sc1.xml")
    got = lines(po)
    assert po["supplier_decision"] == "changed"
    assert (got[1]["status"], got[1]["confirmed_quantity"]) == ("changed", "5")
    assert got[1]["confirmed_delivery_date"] == "2022-02-20"
    assert got[1]["supplier_note"] == "Reduced quantity to 5 and added Sellers item identification"
    assert (got[2]["status"], got[2]["confirmed_quantity"]) == (
        "changed",
        ordered("PO-2026-0008", 2)["quantity"],
    )


def test_accepted_without_lines_accepts_every_line_at_the_promised_date(
    ecolix: EcolixClient,
) -> None:
    po = send(ecolix, PEPPOL / "OrderResponse_sc2.xml")
    assert (po["status"], po["supplier_decision"]) == ("confirmed", "accepted")
    for number, line in lines(po).items():
        assert line["status"] == "accepted"
        assert line["confirmed_quantity"] == ordered("PO-2026-0008", number)["quantity"]
        assert line["confirmed_delivery_date"] == "2022-02-20"


def test_a_new_period_for_one_line_leaves_the_others_at_their_ordered_date(
    ecolix: EcolixClient,
) -> None:
    po = send(ecolix, PEPPOL / "OrderResponse_sc3.xml")
    got = lines(po)
    assert got[1]["confirmed_delivery_date"] == "2022-04-01"
    assert got[2]["status"] == "accepted"
    assert got[2]["confirmed_delivery_date"] == ordered("PO-2026-0008", 2)["delivery_date"]


def test_accepted_without_lines_or_promise_confirms_the_ordered_dates(
    ecolix: EcolixClient,
) -> None:
    po = send(ecolix, PEPPOL / "OrderResponse_sc4.xml")
    assert po["promised_delivery_date"] is None
    for number, line in lines(po).items():
        assert line["confirmed_delivery_date"] == ordered("PO-2026-0008", number)["delivery_date"]


def test_rejected_for_the_whole_order_rejects_every_line(ecolix: EcolixClient) -> None:
    po = send(ecolix, PEPPOL / "OrderResponse_sc5.xml")
    assert (po["status"], po["supplier_decision"]) == ("rejected", "rejected")
    assert {(line["status"], line["confirmed_quantity"]) for line in po["lines"]} == {
        ("rejected", "0")
    }


def test_an_acknowledgement_records_the_answer_and_decides_no_line(ecolix: EcolixClient) -> None:
    po = send(ecolix, PEPPOL / "order-response-snippet-2.xml")
    assert (po["supplier_decision"], po["promised_delivery_date"]) == ("acknowledged", "2013-07-16")
    assert po["supplier_reference"] == "101"
    assert {line["status"] for line in po["lines"]} == {"pending"}
    assert po["status"] == "open"


def test_parts_delivered_already_backorder_and_refused_lines(ecolix: EcolixClient) -> None:
    po = send(ecolix, SPLIT)
    got = lines(po)
    assert po["status"] == "confirmed"
    assert got[1]["confirmed_schedule"] == [
        {"quantity": "150", "delivery_date": "2026-12-10"},
        {"quantity": "100", "delivery_date": "2027-01-15"},
    ]
    assert (got[1]["confirmed_quantity"], got[1]["confirmed_delivery_date"]) == (
        "250",
        "2027-01-15",
    )
    assert (got[2]["status"], got[2]["confirmed_delivery_date"]) == ("accepted", "2026-12-15")
    assert (got[3]["status"], got[3]["confirmed_quantity"]) == ("delivered", "100")
    assert (got[4]["confirmed_quantity"], got[4]["confirmed_unit_price"]) == ("200", "43.00")
    assert got[4]["confirmed_backorder_quantity"] == "50"
    assert (got[5]["status"], got[5]["confirmed_quantity"]) == ("rejected", "0")


def test_the_oasis_answer_confirms_what_was_ordered(ecolix: EcolixClient) -> None:
    po = send(
        ecolix,
        SAMPLES / "supplier" / "supplier-confirmations-ubl" / "UBL-OrderResponse-2.1-Example.xml",
    )
    got = lines(po)
    first = ordered("PO-2026-0007", 1)
    assert (got[1]["confirmed_quantity"], got[1]["confirmed_unit_price"]) == (
        first["quantity"],
        first["unit_price"],
    )
    assert (got[2]["status"], got[2]["confirmed_quantity"]) == ("rejected", "0")


def test_the_guide_collage_maps_but_ecolix_refuses_lines_answered_several_ways(
    ecolix: EcolixClient,
) -> None:
    """The PEPPOL guide's snippet gathers independent fragments in one file: ordered line 1
    is refused, accepted and changed; Ecolix refuses the answer naming each contradiction
    (a document is all or nothing) rather than keep whichever came last."""
    document = mapped_one(CONFIRMATIONS, PEPPOL / "order-response-snippet-1.xml")
    with pytest.raises(EcolixError) as refused:
        ecolix.write(document["operation"], document["payload"], idempotency_key="collage-1")
    problem = refused.value.problem
    assert problem is not None and problem.status == 422
    pointers = [e.pointer for e in problem.errors]
    assert pointers == ["/lines/0/status", "/lines/6/status", "/lines/1/status", "/lines/9/status"]
    assert "line 1 is answered 3 times (/lines/0, /lines/6, /lines/10)" in problem.errors[0].message
    assert "(this one is rejected, without a quantity)" in problem.errors[0].message
    # nothing of it was recorded: every line of the purchase order is still pending
    po = ecolix.get_purchase_order("PO-2026-0011")
    assert {line["status"] for line in po["lines"]} == {"pending"}


# --- Buyers' orders ------------------------------------------------------------------------


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[EcolixClient]:
    """A sandbox of its own: the Order-X samples are one order (same buyer, same number)."""
    with (
        run_in_thread(
            tmp_path / "sandbox.sqlite",
            token="T",
            rate_limit="100000/minute",
            seed=SAMPLES / "sandbox-seed.json",
        ) as base_url,
        EcolixClient(base_url, "T") as client,
    ):
        yield client


ORDER_X = ROOT / "mappings" / "buyer-orders-orderx.yaml"


@pytest.mark.parametrize(
    "sample",
    [
        SAMPLES / "einvoices" / "not-invoices" / "order-x-basic.xml",
        SAMPLES / "einvoices" / "not-invoices" / "order-x-comfort.xml",
    ],
    ids=lambda p: p.name,
)
def test_an_order_x_order_creates_an_order_on_account_at_its_net_prices(
    fresh: EcolixClient, sample: Path
) -> None:
    order = send(fresh, sample, ORDER_X)
    assert (order["customer_code"], order["external_reference"]) == ("CUS-0012", "PO123456789")
    assert (order["payment"], order["currency"]) == (None, "EUR")
    assert [(line["quantity"], line["unit_price"]) for line in order["lines"]] == [
        ("6", "10.00"),
        ("10", "10.00"),  # BASIC: 20.00 for 2 units
        ("6", "25.00"),
    ]
    assert order["delivery_address"]["postal_code"] == "69003"


def test_a_ubl_order_creates_an_order_in_its_currency_at_its_prices(
    fresh: EcolixClient,
) -> None:
    sample = SAMPLES / "ecommerce" / "buyer-orders-ubl" / "UBL-Order-2.1-Example.xml"
    order = send(fresh, sample, ROOT / "mappings" / "buyer-orders-ubl.yaml")
    assert (order["customer_code"], order["external_reference"]) == ("CUS-0003", "34")
    assert (order["currency"], order["payment"]) == ("SEK", None)
    assert [
        (line["article_code"], line["quantity"], line["unit_price"]) for line in order["lines"]
    ] == [("ART-0051", "120", "50.00"), ("ART-0052", "15", "15.00")]
    assert order["totals"]["net"] == "6225.00"  # the order's LineExtensionAmount
    assert order["delivery_address"] == {
        "name": "Swedish trucking",
        "line1": "Rådhusgatan 5",
        "line2": "2nd floor",
        "postal_code": "11000",
        "city": "Stockholm",
        "country": "SE",
    }

"""The contract's answers to a buyer's or a supplier's order, over HTTP against the sandbox.

A supplier's answer to a purchase order may decide the whole order without lines, promise a
date for the order and for a line, or deliver a line in parts; a buyer's order may come
without payment (on account). One sandbox per module, each test on its own objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.sandbox import SandboxProcess, own_sandbox
from tests.fixtures.sandbox_data import key, order_body, seed


@pytest.fixture(scope="module")
def ecolix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with own_sandbox(tmp_path_factory, "answers") as server:
        yield server


@pytest.fixture
def http(ecolix: SandboxProcess) -> Iterator[httpx.Client]:
    with ecolix.client() as client:
        yield client


def answer(http: httpx.Client, number: str, **body: Any) -> httpx.Response:
    payload = {"number": number, "supplier_reference": "AR-1", **body}
    return http.post(
        f"/purchase-orders/{number}/confirmation",
        json=payload,
        headers={"Idempotency-Key": key()},
    )


def refusal(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(e["pointer"], e["message"]) for e in response.json()["errors"]]


def ordered_lines(number: str) -> list[dict[str, Any]]:
    (po,) = [p for p in seed()["purchase_orders"] if p["number"] == number]
    return list(po["lines"])


def test_an_answer_needs_lines_or_a_decision_for_the_whole_order(http: httpx.Client) -> None:
    assert refusal(answer(http, "PO-2026-0001")) == [
        ("/lines", "give the lines, or a decision for the whole order")
    ]


def test_an_acknowledgement_decides_no_line(http: httpx.Client) -> None:
    response = answer(
        http,
        "PO-2026-0001",
        decision="acknowledged",
        lines=[{"line_number": 1, "status": "accepted"}],
    )
    assert refusal(response)[0][0] == "/lines"


def test_an_order_accepted_with_changes_lists_its_lines(http: httpx.Client) -> None:
    assert refusal(answer(http, "PO-2026-0001", decision="changed")) == [
        ("/lines", "an order accepted with changes lists the lines it changes")
    ]


def test_a_rejected_order_cannot_accept_a_line(http: httpx.Client) -> None:
    response = answer(
        http, "PO-2026-0001", decision="rejected", lines=[{"line_number": 2, "status": "accepted"}]
    )
    assert refusal(response) == [
        ("/lines/0/status", "the order is rejected as a whole, but line 2 is accepted")
    ]


def test_a_part_of_a_line_gives_its_quantity(http: httpx.Client) -> None:
    response = answer(
        http,
        "PO-2026-0001",
        lines=[
            {"line_number": 1, "status": "changed", "confirmed_quantity": "4"},
            {"line_number": 1, "status": "changed", "delivery_date": "2027-01-10"},
        ],
    )
    [(pointer, message)] = refusal(response)
    assert pointer == "/lines/1/status"
    assert message.startswith("line 1 is answered 2 times (/lines/0, /lines/1)")


def test_the_order_promise_dates_the_lines_that_give_none_and_is_kept(http: httpx.Client) -> None:
    response = answer(
        http,
        "PO-2026-0009",
        decision="changed",
        promised_delivery_date="2027-01-20",
        lines=[
            {"line_number": 1, "status": "changed", "delivery_date": "2027-02-01"},
            {"line_number": 2, "status": "accepted"},
        ],
    )
    assert response.status_code == 200, response.text
    po = response.json()
    dates = [line["confirmed_delivery_date"] for line in po["lines"]]
    assert dates[:2] == ["2027-02-01", "2027-01-20"]
    assert dates[2:] == [None, None]  # not answered: still pending
    assert po["promised_delivery_date"] == "2027-01-20"
    assert po["status"] == "open"


def test_a_later_answer_for_the_whole_order_replaces_the_earlier_lines(
    http: httpx.Client,
) -> None:
    first = answer(
        http,
        "PO-2026-0010",
        lines=[{"line_number": 1, "status": "changed", "confirmed_quantity": "1"}],
    )
    second = answer(http, "PO-2026-0010", decision="accepted")
    assert (first.status_code, second.status_code) == (200, 200)
    po = second.json()
    assert po["status"] == "confirmed"
    assert [line["confirmed_quantity"] for line in po["lines"]] == [
        line["quantity"] for line in ordered_lines("PO-2026-0010")
    ]


def test_rejected_purchase_orders_are_listed_by_their_status(http: httpx.Client) -> None:
    assert answer(http, "PO-2026-0005", decision="rejected").status_code == 200
    listed = http.get("/purchase-orders", params={"status": "rejected"}).json()["items"]
    assert [po["number"] for po in listed] == ["PO-2026-0005"]


def test_an_order_without_payment_is_on_the_customers_account(http: httpx.Client) -> None:
    body = order_body(customer="CUS-0002")
    del body["payment"]
    response = http.post("/orders", json=body, headers={"Idempotency-Key": key()})
    assert response.status_code == 201, response.text
    assert response.json()["payment"] is None

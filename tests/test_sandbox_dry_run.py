"""Dry runs (``?dry_run=true``): the answer the write would get, and nothing left behind.

A dry run passes the same gate (token, rate limit), the same idempotency look-up, schema and
business rules as the write, through the real handler, which is then rolled back: no object,
no number used up, no result stored against the key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.fixtures.sandbox import SandboxProcess
from tests.fixtures.sandbox_data import customer_body, key, order_body

DRY = {"dry_run": "true"}


def _post_order(
    http: httpx.Client, body: dict[str, Any], idem: str, *, dry: bool = False
) -> httpx.Response:
    return http.post(
        "/orders", json=body, headers={"Idempotency-Key": idem}, params=DRY if dry else None
    )


def _orders_with_reference(http: httpx.Client, customer: str, reference: str) -> list[str]:
    items = http.get("/orders", params={"customer": customer, "limit": 1000}).json()["items"]
    return [o["number"] for o in items if o["external_reference"] == reference]


def test_a_dry_run_answers_what_the_write_would_and_creates_nothing(
    sandbox_factory: Callable[..., SandboxProcess],
) -> None:
    server = sandbox_factory()
    body = order_body(customer="CUS-0003")
    before = server.counts()
    with server.client() as http:
        dry = _post_order(http, body, key(), dry=True)
        after_dry = server.counts()
        real = _post_order(http, body, key())
    assert dry.status_code == real.status_code == 201
    assert dry.headers["Dry-Run"] == "true"
    assert "Dry-Run" not in real.headers
    # the same order, down to its number: the dry run used none up
    assert {k: v for k, v in dry.json().items() if not k.endswith("_at")} == {
        k: v for k, v in real.json().items() if not k.endswith("_at")
    }
    assert after_dry == before


def test_a_dry_run_of_a_wrong_payment_is_refused_exactly_as_the_write(
    sandbox: SandboxProcess,
) -> None:
    body = order_body(customer="CUS-0004")
    wrong = {**body, "payment": {**body["payment"], "amount": "1.00"}}
    with sandbox.client() as http:
        dry = _post_order(http, wrong, key(), dry=True)
        real = _post_order(http, wrong, key())
    assert dry.status_code == real.status_code == 422
    assert dry.json() == real.json()
    assert dry.json()["errors"][0]["pointer"] == "/payment/amount"
    assert dry.headers["Dry-Run"] == "true"


def test_a_dry_run_stores_nothing_against_its_key(sandbox: SandboxProcess) -> None:
    body, idem = order_body(customer="CUS-0005"), key()
    with sandbox.client() as http:
        dry = _post_order(http, body, idem, dry=True)
        real = _post_order(http, body, idem)
        orders = _orders_with_reference(http, "CUS-0005", body["external_reference"])
    assert (dry.status_code, real.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in real.headers  # the key's first use was the real one
    assert orders == [real.json()["number"]]


def test_a_dry_run_under_a_used_key_answers_the_stored_result_as_the_write_would(
    sandbox: SandboxProcess,
) -> None:
    body, idem = order_body(customer="CUS-0006"), key()
    with sandbox.client() as http:
        real = _post_order(http, body, idem)
        dry_same = _post_order(http, body, idem, dry=True)
        dry_other = _post_order(http, order_body(customer="CUS-0006"), idem, dry=True)
    assert dry_same.status_code == 201
    assert dry_same.headers["Idempotent-Replayed"] == "true"
    assert dry_same.json() == real.json()
    assert dry_other.status_code == 409
    assert dry_other.json()["type"].endswith("/idempotency-key-reused")


def test_a_dry_run_of_a_duplicate_is_the_business_409_and_stores_nothing(
    sandbox: SandboxProcess,
) -> None:
    body = order_body(customer="CUS-0007")
    with sandbox.client() as http:
        first = _post_order(http, body, key())
        idem = key()
        dry = _post_order(http, body, idem, dry=True)
        retried = _post_order(http, body, idem)
    assert first.status_code == 201
    assert dry.status_code == 409
    assert dry.json()["type"].endswith("/duplicate")
    assert dry.json()["existing_id"] == first.json()["number"]
    assert "Idempotent-Replayed" not in retried.headers  # executed: the 409 was not stored


def test_a_dry_run_of_an_update_changes_nothing(sandbox: SandboxProcess) -> None:
    body = customer_body()
    path = f"/customers/{body['code']}"
    with sandbox.client() as http:
        created = http.put(path, json=body, headers={"Idempotency-Key": key()})
        renamed = {**body, "name": "Quincaillerie Martin et Fils"}
        dry = http.put(path, json=renamed, headers={"Idempotency-Key": key()}, params=DRY)
        now = http.get(path).json()
    assert created.status_code == 201
    assert dry.status_code == 200 and dry.json()["name"] == "Quincaillerie Martin et Fils"
    assert now["name"] == "Quincaillerie Martin"
    assert now["updated_at"] == created.json()["updated_at"]


def test_a_misspelt_dry_run_is_refused_and_never_a_real_write(sandbox: SandboxProcess) -> None:
    body = order_body(customer="CUS-0008")
    with sandbox.client() as http:
        misspelt = http.post(
            "/orders", json=body, headers={"Idempotency-Key": key()}, params={"dryrun": "true"}
        )
        invalid = http.post(
            "/orders", json=body, headers={"Idempotency-Key": key()}, params={"dry_run": "yes"}
        )
        orders = _orders_with_reference(http, "CUS-0008", body["external_reference"])
    assert misspelt.status_code == invalid.status_code == 400
    assert "'dryrun'" in misspelt.json()["detail"]
    assert invalid.json()["title"] == "Invalid dry_run"
    assert orders == []


def test_a_dry_run_needs_the_token(sandbox: SandboxProcess) -> None:
    with httpx.Client(base_url=sandbox.base_url, timeout=30) as http:
        answer = _post_order(http, order_body(), key(), dry=True)
    assert answer.status_code == 401


def test_a_dry_run_costs_a_call_of_the_rate_limit(
    sandbox_factory: Callable[..., SandboxProcess],
) -> None:
    server = sandbox_factory(rate_limit="3/minute")
    with server.client() as http:
        answers = [_post_order(http, order_body(), key(), dry=True) for _ in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]


# ------------------------------------------------------------------ chains: POST /dry-runs


def _chain(http: httpx.Client, *writes: tuple[str, dict[str, Any]]) -> httpx.Response:
    body = {"writes": [{"operation": op, "body": b} for op, b in writes]}
    return http.post("/dry-runs", json=body)


def test_a_chain_is_checked_each_write_on_what_the_earlier_ones_made(
    sandbox_factory: Callable[..., SandboxProcess],
) -> None:
    server = sandbox_factory()
    customer = customer_body()
    order = order_body(customer=customer["code"])
    before = server.counts()
    with server.client() as http:
        answer = _chain(http, ("customers.upsert", customer), ("orders.create", order))
        alone = _post_order(http, order, key(), dry=True)
    assert answer.status_code == 200
    assert answer.headers["Dry-Run"] == "true"
    results = answer.json()["results"]
    assert [(r["operation"], r["status"]) for r in results] == [
        ("customers.upsert", 201),
        ("orders.create", 201),
    ]
    assert results[1]["body"]["customer_code"] == customer["code"]
    assert alone.status_code == 422  # alone, the customer is unknown: nothing was kept
    assert server.counts() == before


def test_a_chain_stops_at_its_first_refusal(sandbox: SandboxProcess) -> None:
    customer = customer_body()
    wrong = order_body(customer=customer["code"])
    wrong["payment"]["amount"] = "1.00"
    with sandbox.client() as http:
        answer = _chain(
            http,
            ("customers.upsert", customer),
            ("orders.create", wrong),
            ("orders.create", order_body(customer=customer["code"])),
        )
        known = http.get(f"/customers/{customer['code']}")
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 422]
    assert results[1]["problem"]["errors"][0]["pointer"] == "/payment/amount"
    assert known.status_code == 404


def test_a_chain_names_the_writes_it_cannot_run(sandbox: SandboxProcess) -> None:
    with sandbox.client() as http:
        answer = _chain(http, ("orders.list", {}), ("dry_runs.create", {}))
    assert answer.status_code == 422
    assert [e["pointer"] for e in answer.json()["errors"]] == [
        "/writes/0/operation",
        "/writes/1/operation",
    ]

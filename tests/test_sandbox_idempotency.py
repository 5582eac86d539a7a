"""Idempotency keys: stored once executed, replayed as stored, never reused for another body."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.fixtures.sandbox import SandboxProcess
from tests.fixtures.sandbox_data import customer_body, key, order_body


def _orders_with_reference(sandbox: SandboxProcess, customer: str, reference: str) -> list[str]:
    with sandbox.client() as http:
        items = http.get("/orders", params={"customer": customer, "limit": 1000}).json()["items"]
    return [o["number"] for o in items if o["external_reference"] == reference]


def test_same_key_and_body_replays_the_stored_response_and_creates_nothing(
    sandbox: SandboxProcess,
) -> None:
    body, idem = order_body(customer="CUS-0002"), key()
    with sandbox.client() as http:
        first = http.post("/orders", json=body, headers={"Idempotency-Key": idem})
        again = http.post("/orders", json=body, headers={"Idempotency-Key": idem})
    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert _orders_with_reference(sandbox, "CUS-0002", body["external_reference"]) == [
        first.json()["number"]
    ]


def test_same_body_with_keys_in_another_order_is_the_same_request(sandbox: SandboxProcess) -> None:
    body, idem = customer_body(), key()
    reordered = dict(reversed(list(body.items())))
    with sandbox.client() as http:
        first = http.put(f"/customers/{body['code']}", json=body, headers={"Idempotency-Key": idem})
        again = http.put(
            f"/customers/{body['code']}", json=reordered, headers={"Idempotency-Key": idem}
        )
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.status_code == first.status_code == 201


def test_same_key_with_another_body_after_success_is_a_distinct_409(
    sandbox: SandboxProcess,
) -> None:
    idem = key()
    with sandbox.client() as http:
        first = http.post("/orders", json=order_body(), headers={"Idempotency-Key": idem})
        other = http.post("/orders", json=order_body(), headers={"Idempotency-Key": idem})
    assert first.status_code == 201
    assert other.status_code == 409
    assert other.json()["type"].endswith("/idempotency-key-reused")


def test_a_refused_request_stores_nothing_so_the_corrected_body_goes_through_under_the_same_key(
    sandbox: SandboxProcess,
) -> None:
    body, idem = order_body(), key()
    wrong = {**body, "payment": {**body["payment"], "amount": "1.00"}}
    with sandbox.client() as http:
        refused = http.post("/orders", json=wrong, headers={"Idempotency-Key": idem})
        corrected = http.post("/orders", json=body, headers={"Idempotency-Key": idem})
    assert refused.status_code == 422
    assert corrected.status_code == 201
    assert "Idempotent-Replayed" not in corrected.headers


def test_a_schema_failure_stores_nothing_either(sandbox: SandboxProcess) -> None:
    body, idem = order_body(), key()
    with sandbox.client() as http:
        refused = http.post(
            "/orders", json={**body, "lines": []}, headers={"Idempotency-Key": idem}
        )
        corrected = http.post("/orders", json=body, headers={"Idempotency-Key": idem})
    assert (refused.status_code, corrected.status_code) == (422, 201)


def test_a_business_409_is_stored_and_replayed(sandbox: SandboxProcess) -> None:
    body = order_body(customer="CUS-0003")
    duplicate = {
        **order_body(customer="CUS-0003"),
        "external_reference": body["external_reference"],
    }
    idem = key()
    with sandbox.client() as http:
        http.post("/orders", json=body, headers={"Idempotency-Key": key()}).raise_for_status()
        first = http.post("/orders", json=duplicate, headers={"Idempotency-Key": idem})
        again = http.post("/orders", json=duplicate, headers={"Idempotency-Key": idem})
    assert first.status_code == again.status_code == 409
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


def test_concurrent_requests_with_one_key_create_one_object(sandbox: SandboxProcess) -> None:
    body, idem = order_body(customer="CUS-0004"), key()

    def send(_: int) -> tuple[int, str, bool]:
        with sandbox.client() as http:
            response = http.post("/orders", json=body, headers={"Idempotency-Key": idem})
        return (
            response.status_code,
            response.json()["number"],
            response.headers.get("Idempotent-Replayed") == "true",
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(8)))
    assert {status for status, _, _ in results} == {201}
    assert len({number for _, number, _ in results}) == 1
    assert sorted(replayed for _, _, replayed in results) == [False] + [True] * 7
    assert len(_orders_with_reference(sandbox, "CUS-0004", body["external_reference"])) == 1


def test_a_key_used_on_another_operation_is_a_reuse(sandbox: SandboxProcess) -> None:
    idem = key()
    body = customer_body()
    with sandbox.client() as http:
        http.put(f"/customers/{body['code']}", json=body, headers={"Idempotency-Key": idem})
        other = http.post("/orders", json=order_body(), headers={"Idempotency-Key": idem})
    assert other.status_code == 409
    assert other.json()["type"].endswith("/idempotency-key-reused")

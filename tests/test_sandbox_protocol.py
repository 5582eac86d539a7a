"""The sandbox speaks the contract's conventions: auth, problems, validation, headers.

Over real HTTP to ``python -m edigw.sandbox`` on loopback, with plain httpx.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import yaml

from edigw.ecolix.contract import load_contract
from tests.fixtures.sandbox import SandboxProcess
from tests.fixtures.sandbox_data import customer_body, key, order_body, unique

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def test_a_request_without_a_token_is_401_problem_json(sandbox: SandboxProcess) -> None:
    response = httpx.get(f"{sandbox.base_url}/articles")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["type"].endswith("/unauthorized")


def test_a_wrong_token_is_401(sandbox: SandboxProcess) -> None:
    response = httpx.get(
        f"{sandbox.base_url}/articles", headers={"Authorization": "Bearer not-the-token"}
    )
    assert response.status_code == 401


def test_a_write_with_a_wrong_token_creates_nothing(sandbox: SandboxProcess) -> None:
    body = customer_body()
    response = httpx.put(
        f"{sandbox.base_url}/customers/{body['code']}",
        json=body,
        headers={"Authorization": "Bearer nope", "Idempotency-Key": key()},
    )
    assert response.status_code == 401
    with sandbox.client() as http:
        assert http.get(f"/customers/{body['code']}").status_code == 404


def test_an_unknown_object_is_404_problem(sandbox: SandboxProcess) -> None:
    with sandbox.client() as http:
        response = http.get("/orders/CMD-999999999")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
    assert "CMD-999999999" in response.json()["detail"]


def test_every_response_carries_the_rate_limit_headers(sandbox: SandboxProcess) -> None:
    with sandbox.client() as http:
        answers = [
            http.get("/articles", params={"limit": 1}),
            http.get("/orders/NOPE"),
            http.post("/orders", json={}, headers={"Idempotency-Key": key()}),
        ]
    answers.append(httpx.get(f"{sandbox.base_url}/articles"))
    for response in answers:
        for name in RATE_HEADERS:
            assert response.headers[name].isdigit(), (response.status_code, name)
    assert answers[0].headers["X-RateLimit-Limit"] == "100000"


def test_a_body_breaking_the_schema_is_422_with_a_pointer_per_field(
    sandbox: SandboxProcess,
) -> None:
    body = order_body()
    body["lines"][1]["quantity"] = "1,5"  # decimal comma: not a contract decimal
    body["payment"]["amount"] = 12.5  # a JSON number where a decimal string is due
    del body["order_date"]
    body["comment"] = "not in the contract"
    with sandbox.client() as http:
        response = http.post("/orders", json=body, headers={"Idempotency-Key": key()})
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("/validation-failed")
    pointers = {e["pointer"] for e in problem["errors"]}
    assert pointers == {"/lines/1/quantity", "/payment/amount", "/order_date", "/comment"}


def test_an_invalid_date_is_refused_by_its_format(sandbox: SandboxProcess) -> None:
    body = order_body()
    body["order_date"] = "2026-02-30"
    with sandbox.client() as http:
        response = http.post("/orders", json=body, headers={"Idempotency-Key": key()})
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/order_date"]


def test_a_path_parameter_differing_from_the_body_is_422(sandbox: SandboxProcess) -> None:
    body = customer_body()
    with sandbox.client() as http:
        response = http.put(
            f"/customers/{unique('OTHER')}", json=body, headers={"Idempotency-Key": key()}
        )
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/code"]


def test_a_write_without_idempotency_key_is_400(sandbox: SandboxProcess) -> None:
    with sandbox.client() as http:
        response = http.post("/orders", json=order_body())
    assert response.status_code == 400
    assert response.json()["type"].endswith("/missing-idempotency-key")


def test_a_body_that_is_not_json_is_400(sandbox: SandboxProcess) -> None:
    with sandbox.client() as http:
        response = http.post(
            "/orders",
            content=b"{not json",
            headers={"Idempotency-Key": key(), "Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["type"].endswith("/malformed-json")


def test_the_contract_is_served_at_openapi_yaml(sandbox: SandboxProcess) -> None:
    response = httpx.get(f"{sandbox.base_url}/openapi.yaml")
    assert response.status_code == 200
    assert yaml.safe_load(response.text) == load_contract().document


def test_injected_faults_answer_the_next_requests_then_stop(
    sandbox_factory: Callable[..., SandboxProcess],
) -> None:
    server = sandbox_factory()
    server.inject_faults(503, 2, retry_after=3)
    with server.client() as http:
        statuses = [http.get("/articles", params={"limit": 1}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert statuses[0].headers["Retry-After"] == "3"
    assert statuses[0].headers["content-type"] == "application/problem+json"


def test_the_sandbox_keeps_its_data_across_a_restart(
    sandbox_factory: Callable[..., SandboxProcess],
) -> None:
    server = sandbox_factory()
    body = customer_body()
    with server.client() as http:
        created = http.put(
            f"/customers/{body['code']}", json=body, headers={"Idempotency-Key": key()}
        )
    assert created.status_code == 201
    server.stop()
    server.start()
    with server.client() as http:
        assert http.get(f"/customers/{body['code']}").json()["name"] == body["name"]

"""The client's dry runs (``validate``, ``write(dry_run=True)``): typed answers, nothing made."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from edigw.ecolix.client import EcolixClient
from edigw.ecolix.retries import RetryPolicy
from edigw.errors import EcolixFinalError
from tests.fixtures.sandbox import SandboxProcess
from tests.fixtures.sandbox_data import customer_body, order_body


def test_validate_answers_as_the_write_would_with_nothing_created(sandbox: SandboxProcess) -> None:
    body = order_body(customer="CUS-0009")
    with EcolixClient(sandbox.base_url, sandbox.token) as client:
        answer = client.validate("orders.create", body)
        orders = [
            o
            for o in client.list_orders(customer="CUS-0009")
            if o["external_reference"] == body["external_reference"]
        ]
        usage = client.usage
    assert (answer.status, answer.dry_run, answer.replayed) == (201, True, False)
    assert answer.object_id == answer.body["number"]
    assert orders == []
    assert usage.by_operation["orders.create"] == 1  # a dry run is a call like any other


def test_validate_raises_the_refusal_as_a_write_would(sandbox: SandboxProcess) -> None:
    body = order_body()
    body["payment"]["amount"] = "1.00"
    with (
        EcolixClient(sandbox.base_url, sandbox.token) as client,
        pytest.raises(EcolixFinalError) as refused,
    ):
        client.validate("orders.create", body)
    problem = refused.value.problem
    assert problem is not None and problem.status == 422
    assert [e.pointer for e in problem.errors] == ["/payment/amount"]


def test_a_success_without_the_dry_run_header_is_an_error_naming_the_risk() -> None:
    """An Ecolix that ignores ``dry_run`` has made the write: say so, never report a check."""
    seen: list[httpx.Request] = []

    def ignores_dry_run(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"number": "CMD-1"})

    client = EcolixClient(
        "https://ecolix.invalid/api/v1",
        "t",
        transport=httpx.MockTransport(ignores_dry_run),
        retry=RetryPolicy(attempts=1),
    )
    with client, pytest.raises(EcolixFinalError, match="may have made the write for real"):
        client.validate("orders.create", order_body())
    assert seen[0].url.params["dry_run"] == "true"
    assert seen[0].headers["Idempotency-Key"].startswith("edigw-dry-run-")


def test_each_validation_has_a_key_of_its_own() -> None:
    keys: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        return httpx.Response(201, json={}, headers={"Dry-Run": "true"})

    with EcolixClient(
        "https://ecolix.invalid/api/v1", "t", transport=httpx.MockTransport(answer)
    ) as client:
        body: dict[str, Any] = order_body()
        client.validate("orders.create", body)
        client.validate("orders.create", body)
    assert len(set(keys)) == 2


def test_validate_chain_answers_each_write_on_the_earlier_ones(sandbox: SandboxProcess) -> None:
    customer = customer_body()
    order = order_body(customer=customer["code"])
    order["payment"]["amount"] = "1.00"
    with EcolixClient(sandbox.base_url, sandbox.token) as client:
        answers = client.validate_chain([("customers.upsert", customer), ("orders.create", order)])
        usage = client.usage
    assert [(a.operation, a.status) for a in answers] == [
        ("customers.upsert", 201),
        ("orders.create", 422),
    ]
    assert answers[0].problem is None and answers[0].body["code"] == customer["code"]
    assert answers[1].problem is not None
    assert [e.pointer for e in answers[1].problem.errors] == ["/payment/amount"]
    assert usage.by_operation == {"dry_runs.create": 1}


def test_the_dry_run_of_a_chain_is_no_write_a_client_makes() -> None:
    with (
        EcolixClient("https://ecolix.invalid/api/v1", "t") as client,
        pytest.raises(ValueError, match="use validate_chain"),
    ):
        client.write("dry_runs.create", {"writes": []}, idempotency_key="k")

"""Done when (issue 16): the three web shops' order exports go through `edigw run` into the
sandbox. Every paid order is created once, with a total equal to the shop's own; the new
customers are created first (a chain: customer, then order); the cancelled, unpaid and
refunded orders are journalled as skipped with their reasons, shown by `show`, counted by
`status`.

The expected figures are read from the shops' files themselves (their total columns), never
from the mapping's output.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.gateway import (
    Workspace,
    files_final,
    inbound_flow,
    running_gateway,
    wait_until,
    write_workspace,
)
from tests.fixtures.sandbox import SandboxProcess, own_sandbox
from tests.support.cli import edigw

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "ecommerce"


def shopify(path: Path) -> dict[str, dict[str, str]]:
    """Per order (Name): its first row, where Shopify writes the order's own columns."""
    orders: dict[str, dict[str, str]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            orders.setdefault(row["Name"], row)
    return {
        name: {
            "total": row["Total"],
            "email": row["Email"],
            "paid": str(
                row["Financial Status"] in ("paid", "partially_refunded")
                and not row["Cancelled at"]
            ),
            "reference": name,
        }
        for name, row in orders.items()
    }


def woocommerce(path: Path) -> dict[str, dict[str, str]]:
    orders: dict[str, dict[str, str]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            orders.setdefault(row["order_number"], row)
    return {
        number: {
            "total": row["order_total"],
            "email": row["billing_email"],
            "paid": str(row["status"] in ("processing", "completed")),
            "reference": number,
        }
        for number, row in orders.items()
    }


def prestashop(path: Path) -> dict[str, dict[str, str]]:
    orders: dict[str, dict[str, str]] = {}
    with path.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f, delimiter=";"):
            orders.setdefault(row["reference"], row)
    paid_states = ("Paiement accepté", "En cours de préparation", "Expédié", "Livré")
    return {
        reference: {
            "total": row["total_paid_tax_incl"],
            "email": row["email"],
            "paid": str(row["order_state"] in paid_states),
            "reference": reference,
        }
        for reference, row in orders.items()
    }


SHOPS: dict[str, tuple[str, Callable[[Path], dict[str, dict[str, str]]]]] = {
    "shopify": ("shopify-orders-csv", shopify),
    "woocommerce": ("woocommerce-orders-csv", woocommerce),
    "prestashop": ("prestashop-orders-csv", prestashop),
}


def _all(client: httpx.Client, path: str, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": "1000", **params, **({"cursor": cursor} if cursor else {})}
        page = client.get(path, params=query).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


@pytest.fixture(scope="module")
def shop_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """One sandbox on the shipped seed for the module."""
    with own_sandbox(tmp_path_factory, "ecolix") as server:
        yield server


@pytest.fixture(scope="module")
def shops(
    tmp_path_factory: pytest.TempPathFactory, shop_sandbox: SandboxProcess
) -> tuple[Workspace, SandboxProcess, dict[str, Any]]:
    """The three exports dropped at once into their inboxes, through a running gateway."""
    ecolix = shop_sandbox
    workspace = write_workspace(
        tmp_path_factory.mktemp("shops"),
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={
            shop: {"orders": inbound_flow(f"{mapping}.yaml", shop, "orders")}
            for shop, (mapping, _) in SHOPS.items()
        },
    )
    for shop, (mapping, _) in SHOPS.items():
        for sample in (SAMPLES / mapping).iterdir():
            shutil.copyfile(sample, workspace.inbox(shop, "orders") / sample.name)
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, len(SHOPS)), timeout=120, what="the three exports final")
        files = {f.partner: f for f in parts.journal.files(limit=100)}
        documents = {shop: parts.journal.documents_of(f.id) for shop, f in files.items()}
    return workspace, ecolix, {"files": files, "documents": documents}


@pytest.mark.parametrize("shop", list(SHOPS))
def test_every_paid_order_is_created_once_with_the_shops_own_total(
    shops: tuple[Workspace, SandboxProcess, dict[str, Any]], shop: str
) -> None:
    _, ecolix, run = shops
    mapping, read = SHOPS[shop]
    [sample] = (SAMPLES / mapping).iterdir()
    expected = {ref: o for ref, o in read(sample).items() if o["paid"] == "True"}
    assert run["files"][shop].state == "done", run["files"][shop].error
    with ecolix.client() as client:
        orders = _all(client, "/orders")
        for reference, order in expected.items():
            found = [o for o in orders if o["external_reference"] == reference]
            assert len(found) == 1, (shop, reference, len(found))
            assert Decimal(found[0]["totals"]["gross"]) == Decimal(order["total"]), reference
            assert found[0]["payment"]["amount"] == found[0]["totals"]["gross"]
            assert found[0]["prices_include_vat"] is True
    assert len(expected) == 9


@pytest.mark.parametrize("shop", list(SHOPS))
def test_each_order_upserts_its_customer_first_and_new_customers_are_created(
    shops: tuple[Workspace, SandboxProcess, dict[str, Any]], shop: str
) -> None:
    _, ecolix, run = shops
    docs = run["documents"][shop]
    sent = [d for d in docs if d.state != "skipped"]
    assert [d.operation for d in sent] == ["customers.upsert", "orders.create"] * 9
    assert all(d.state == "done" for d in sent)
    assert len({d.idempotency_key for d in docs}) == len(docs)
    for upsert, order in zip(sent[::2], sent[1::2], strict=True):
        assert upsert.business_key == order.business_key
        assert order.payload is not None and upsert.payload is not None
        assert order.payload["customer_code"] == upsert.payload["code"]
        assert order.payload["$chain"]["step"] == 2
    created = [d for d in sent[::2] if d.ecolix_status == 201]
    kept = [d for d in sent[::2] if d.ecolix_status == 200]
    # nine paid orders by seven customers: two come back, their record kept as it is
    assert (len(created), len(kept)) == (7, 2)
    with ecolix.client() as client:
        for upsert in created:
            assert upsert.payload is not None
            customer = client.get(f"/customers/{upsert.payload['code']}").json()
            assert customer["email"] == upsert.payload["email"]
            assert customer["billing_address"]["country"] == "FR"


@pytest.mark.parametrize("shop", list(SHOPS))
def test_cancelled_unpaid_and_refunded_orders_are_skipped_with_their_reasons(
    shops: tuple[Workspace, SandboxProcess, dict[str, Any]], shop: str
) -> None:
    workspace, _, run = shops
    skipped = [d for d in run["documents"][shop] if d.state == "skipped"]
    reasons = sorted(d.error.split(" (rule")[0] for d in skipped if d.error)
    assert len(skipped) == 3
    assert reasons[0] == "skipped: cancelled on the shop"
    assert reasons[1] == "skipped: not paid (yet)"
    assert reasons[2].startswith("skipped: refunded")
    assert all(d.error_location and d.attempts == 0 for d in skipped)

    shown = edigw(workspace, "show", f"D-{skipped[0].id}", columns=250)
    assert shown.exit_code == 0, shown.output
    assert "skipped" in shown.output and "cancelled on the shop" in shown.output
    assert "rule skip_if[0]" in shown.output, shown.output


def test_status_counts_the_skipped_documents_and_the_files_done(
    shops: tuple[Workspace, SandboxProcess, dict[str, Any]],
) -> None:
    workspace, _, _ = shops
    result = edigw(workspace, "status", "--json", token=False)
    assert result.exit_code == 0, result.output
    flows = {f["flow"]: f for f in json.loads(result.output)["flows"]}
    for shop in SHOPS:
        flow = flows[f"{shop}/orders"]
        assert (flow["done"], flow["documents_skipped"], flow["documents_failed"]) == (1, 3, 0)

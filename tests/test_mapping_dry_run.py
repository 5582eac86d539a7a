"""``edigw mapping test --against-ecolix``: Ecolix's verdict on a sample, nothing created.

Each document goes to Ecolix as a dry run (business rules included); a refusal is shown with
the source cell of every value refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.gateway import MAPPINGS, ROOT, Workspace, write_workspace
from tests.fixtures.sandbox import SandboxProcess
from tests.support.cli import edigw

REFUSED = ROOT / "samples" / "bad" / "ecommerce-orders-csv" / "commandes_refusees_20261128.csv"
GOOD = ROOT / "samples" / "ecommerce" / "ecommerce-orders-csv" / "commandes_20261128.csv"
ORDERS = str(MAPPINGS / "ecommerce-orders-csv.yaml")


def workspace(root: Path, sandbox: SandboxProcess) -> Workspace:
    return write_workspace(root, base_url=sandbox.base_url, token=sandbox.token, flows={})


@pytest.fixture
def shop(tmp_path: Path, sandbox: SandboxProcess) -> Workspace:
    return workspace(tmp_path / "gw", sandbox)


def test_a_wrong_payment_total_is_refused_at_its_cell_and_nothing_is_created(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    server = sandbox_factory()
    ws = workspace(tmp_path / "gw", server)
    before = server.counts()

    result = edigw(ws, "mapping", "test", ORDERS, str(REFUSED), "--against-ecolix")

    assert result.exit_code == 1
    assert (
        "    commandes_refusees_20261128.csv:2:9 field montant_paye_ttc [/payment/amount]: "
        "payment 314.60 does not match the order total incl. VAT 341.60"
    ) in result.stderr.splitlines()
    assert (
        "    commandes_refusees_20261128.csv:6:3 field code_client [/customer_code]: "
        "unknown customer 'WEB-10232'"
    ) in result.stderr.splitlines()
    assert server.counts() == before
    documents = json.loads(result.stdout)
    assert documents[0]["ecolix"] == {
        "checked": True,
        "status": 422,
        "accepted": False,
        "title": "Payment does not match the order total",
        "problems": [
            {
                "location": "commandes_refusees_20261128.csv:2:9 field montant_paye_ttc",
                "pointer": "/payment/amount",
                "message": "payment 314.60 does not match the order total incl. VAT 341.60",
            }
        ],
    }


def test_a_refused_order_line_is_placed_at_its_row(shop: Workspace) -> None:
    result = edigw(shop, "mapping", "test", ORDERS, str(REFUSED), "--against-ecolix")
    assert (
        "  orders.create: refused by Ecolix: 422 Order lines refer to articles Ecolix cannot sell"
    ) in result.stderr.splitlines()
    assert (
        "    commandes_refusees_20261128.csv:5:4 field ref_article [/lines/1/article_code]: "
        "unknown article 'ART-O012'"
    ) in result.stderr.splitlines()


def test_accepted_documents_pass_and_the_calls_are_counted(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    # A sandbox of its own: the shipped sample's orders keep their references, and once
    # another test has really created them in the session's sandbox, Ecolix answers the dry
    # run as it would the write: 409, the customer already has that order.
    server = sandbox_factory()
    before = server.counts()
    result = edigw(workspace(tmp_path / "gw", server), "mapping", "test", ORDERS, str(GOOD),
                   "--against-ecolix")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert server.counts() == before
    errors = result.stderr.splitlines()
    assert "  orders.create: accepted by Ecolix (201, dry run: nothing created)" in errors
    assert errors[-1] == (
        "dry run: 3 document(s), 3 accepted, 0 refused, 0 not sent; "
        "3 calls to Ecolix, counted in the call budget"
    )
    assert [d["ecolix"]["accepted"] for d in json.loads(result.stdout)] == [True, True, True]


def test_a_step_that_needs_the_answer_of_step_1_is_not_checked_and_says_why(
    shop: Workspace,
) -> None:
    sample = ROOT / "samples" / "supplier" / "supplier-einvoices" / "ubl-21-en16931.xml"
    mapping = str(MAPPINGS / "supplier-einvoices.yaml")
    result = edigw(shop, "mapping", "test", mapping, str(sample), "--against-ecolix")
    assert result.exit_code == 0, result.output
    assert (
        "  step 2 supplier_invoices.attach not checked: needs the answer of step 1 "
        "(known only once it is really sent)"
    ) in result.stderr.splitlines()
    [document] = json.loads(result.stdout)
    assert document["then"][0]["ecolix"]["checked"] is False


def test_a_document_with_mapping_problems_is_not_sent(shop: Workspace) -> None:
    bad = ROOT / "samples" / "bad" / "ecommerce-orders-csv" / "commandes_erreurs_20261128.csv"
    result = edigw(shop, "mapping", "test", ORDERS, str(bad), "--against-ecolix")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-2] == (
        "dry run: 3 document(s), 1 accepted, 0 refused, 2 not sent; "
        "1 call to Ecolix, counted in the call budget"
    )


def test_without_the_token_it_says_so_in_one_line(shop: Workspace) -> None:
    result = edigw(shop, "mapping", "test", ORDERS, str(GOOD), "--against-ecolix", token=False)
    assert result.exit_code == 1
    assert result.output == (
        "Error: ECOLIX_TOKEN is not set: mapping test --against-ecolix asks Ecolix "
        f"({shop.config_path.name}:3 ecolix.token)\n"
    )


def test_without_a_configuration_it_says_where_the_address_comes_from(tmp_path: Path) -> None:
    missing = Workspace(tmp_path, tmp_path / "edigw.yaml", {"ECOLIX_TOKEN": "t"})
    result = edigw(missing, "mapping", "test", ORDERS, str(GOOD), "--against-ecolix")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {missing.config_path} not found: --against-ecolix")
    assert len(result.output.splitlines()) == 1


def test_a_token_ecolix_refuses_stops_at_once(tmp_path: Path, sandbox: SandboxProcess) -> None:
    ws = write_workspace(tmp_path / "gw", base_url=sandbox.base_url, token="wrong", flows={})
    result = edigw(ws, "mapping", "test", ORDERS, str(GOOD), "--against-ecolix")
    assert result.exit_code == 1
    assert result.output.startswith("Error: Ecolix refused orders.create: 401")
    assert len(result.output.splitlines()) == 1


def test_an_order_is_checked_on_the_customer_its_chain_upserts_first(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    """Shopify orders upsert their customer first (``before:``): the chain is checked as one,
    so the order is not refused for a customer the dry run would not have created."""
    server = sandbox_factory()
    ws = workspace(tmp_path / "gw", server)
    sample = ROOT / "samples" / "ecommerce" / "shopify-orders-csv"
    mapping = str(MAPPINGS / "shopify-orders-csv.yaml")
    before = server.counts()

    result = edigw(ws, "mapping", "test", mapping, str(sample), "--against-ecolix")

    assert result.exit_code == 0, result.output
    errors = result.stderr.splitlines()
    assert errors[1:3] == [
        "  step 1 customers.upsert: accepted by Ecolix (201, dry run: nothing created)",
        "  step 2 orders.create: accepted by Ecolix (201, dry run: nothing created)",
    ]
    assert any(
        line.endswith(
            "not sent, skipped: cancelled on the shop (rule skip_if[0]: record['Cancelled at'])"
        )
        for line in errors
    )
    assert errors[-1].endswith(
        "skipped by the mapping; 9 calls to Ecolix, counted in the call budget"
    )
    assert server.counts() == before


def test_a_document_ecolix_could_not_answer_is_not_checked_and_not_accepted(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    server = sandbox_factory()
    ws = workspace(tmp_path / "gw", server)
    header, *rows = GOOD.read_text(encoding="utf-8-sig").splitlines()
    one = tmp_path / "one.csv"
    one.write_text("\n".join([header, *(r for r in rows if r.startswith("WEB-6102;"))]) + "\n")
    server.inject_faults(503, 10)

    result = edigw(ws, "mapping", "test", ORDERS, str(one), "--against-ecolix")

    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    assert errors[1].startswith("  orders.create not checked: Ecolix could not answer: ")
    assert re.fullmatch(
        r"dry run: 1 document\(s\), 0 accepted, 0 refused, 0 not sent, 1 not checked; "
        r"1 call \([2-9] requests with retries\) to Ecolix, counted in the call budget",
        errors[-2],
    ), errors[-2]

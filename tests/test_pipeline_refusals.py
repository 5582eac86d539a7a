"""Ecolix refusals during ``edigw run`` are journalled with the source cell of each value refused.

Nothing is recorded for it on the happy path: a refused document's file is mapped again from
the archive, as far as the document, traced, and checked to map to the very payload sent.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edigw.errors import FieldError
from edigw.journal.rows import DocumentRow
from edigw.mapping import CompiledMapping, load_mapping
from edigw.pipeline.assembly import Parts, open_parts
from edigw.pipeline.inbound import FlowContext
from edigw.pipeline.refusals import RefusalLocator
from tests.fixtures.gateway import (
    MAPPINGS,
    ROOT,
    Workspace,
    files_final,
    inbound_flow,
    running_gateway,
    wait_until,
    write_workspace,
)
from tests.fixtures.sandbox import SandboxProcess
from tests.support.cli import edigw, lines

REFUSED = ROOT / "samples" / "bad" / "ecommerce-orders-csv" / "commandes_refusees_20261128.csv"
NAME = REFUSED.name


@pytest.fixture
def shop(tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]) -> Workspace:
    """An order flow against a sandbox of its own: customer WEB-10232 is not created yet."""
    sandbox = sandbox_factory()
    return write_workspace(
        tmp_path / "gw",
        base_url=sandbox.base_url,
        token=sandbox.token,
        flows={
            "webshop": {"orders": inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders")}
        },
    )


def test_a_refusal_during_run_shows_in_show_with_file_line_and_column(shop: Workspace) -> None:
    shutil.copy(REFUSED, shop.inbox("webshop", "orders") / NAME)
    with running_gateway(shop) as parts:
        wait_until(files_final(parts, 1), what="the refused orders")

    shown = lines(edigw(shop, "show", "F-1", columns=250))

    assert (
        f"      error    refused by Ecolix: 422 Payment does not match the order total; "
        f"{NAME}:2:9 field montant_paye_ttc [/payment/amount]: payment 314.60 does not match "
        "the order total incl. VAT 341.60"
    ) in shown
    assert (
        f"      error    refused by Ecolix: 422 Order lines refer to articles Ecolix cannot sell; "
        f"{NAME}:5:4 field ref_article [/lines/1/article_code]: unknown article 'ART-O012'"
    ) in shown
    assert (
        f"      error    refused by Ecolix: 422 Unknown customer; {NAME}:6:3 field code_client "
        "[/customer_code]: unknown customer 'WEB-10232'"
    ) in shown


def test_the_journal_keeps_the_source_place_of_each_field_refused(shop: Workspace) -> None:
    shutil.copy(REFUSED, shop.inbox("webshop", "orders") / NAME)
    with running_gateway(shop) as parts:
        wait_until(files_final(parts, 1), what="the refused orders")
        docs = parts.journal.documents_of(1)
    assert [d.state for d in docs] == ["failed", "failed", "failed"]
    assert f"{NAME}:2:9 field montant_paye_ttc [/payment/amount]" in (docs[0].error or "")
    assert f"{NAME}:5:4 field ref_article [/lines/1/article_code]" in (docs[1].error or "")
    assert f"{NAME}:6:3 field code_client [/customer_code]" in (docs[2].error or "")


# ------------------------------------------------------------------ the locator itself


class CountingMapping:
    """A flow's mapping that counts how often a file is read again."""

    def __init__(self, mapping: CompiledMapping) -> None:
        self.mapping = mapping
        self.readings = 0
        self.path = mapping.path
        self.target = mapping.target

    def reader(self, **options: Any) -> Any:
        self.readings += 1
        return self.mapping.reader(**options)

    def traceable_documents(self, records: Any, **options: Any) -> Any:
        return self.mapping.traceable_documents(records, **options)

    def map_file(self, path: Path, **options: Any) -> Any:
        return self.mapping.map_file(path, **options)


def unknown_customers_file(folder: Path, count: int) -> Path:
    """``count`` orders of customers Ecolix does not know: every one refused."""
    header, line = REFUSED.read_text(encoding="utf-8").splitlines()[:2]
    rows = [
        line.replace("WEB-6195", f"WEB-{9000 + i}").replace("CUS-0005", f"CUS-X{i:03d}")
        for i in range(count)
    ]
    path = folder / "inconnus.csv"
    path.write_text("\n".join([header, *rows, ""]), encoding="utf-8")
    return path


@pytest.fixture
def refused_parts(shop: Workspace, tmp_path: Path) -> Iterator[Parts]:
    """A gateway whose five orders of one file were all refused, stopped, journal open."""
    unknown_customers_file(shop.inbox("webshop", "orders"), 5)
    with running_gateway(shop) as parts:
        wait_until(files_final(parts, 1), what="the refused orders")
    with open_parts(shop.load(), with_channels=False) as parts:
        yield parts


def locator_for(parts: Parts, mapping: Any) -> RefusalLocator:
    context = FlowContext("webshop", "orders", "local:x", mapping)
    return RefusalLocator(journal=parts.journal, archive=parts.archive, flows=lambda _: context)


def errors_of(doc: DocumentRow) -> list[FieldError]:
    return [FieldError(e["pointer"], e["message"]) for e in doc.ecolix_response["errors"]]


def test_a_file_whose_every_document_is_refused_is_read_once_more_in_all(
    refused_parts: Parts,
) -> None:
    mapping = CountingMapping(load_mapping(MAPPINGS / "ecommerce-orders-csv.yaml"))
    locator = locator_for(refused_parts, mapping)
    docs = refused_parts.journal.documents_of(1)
    try:
        places = [locator.locate(doc, errors_of(doc)) for doc in docs]
    finally:
        locator.close()
    assert [str(p[0]) for p in places if p] == [
        f"inconnus.csv:{line}:3 field code_client [/customer_code]: unknown customer "
        f"'CUS-X{line - 2:03d}'"
        for line in range(2, 7)
    ]
    assert mapping.readings == 1


def test_a_document_asked_about_again_is_found_from_the_start(refused_parts: Parts) -> None:
    mapping = CountingMapping(load_mapping(MAPPINGS / "ecommerce-orders-csv.yaml"))
    locator = locator_for(refused_parts, mapping)
    docs = refused_parts.journal.documents_of(1)
    try:
        last = locator.locate(docs[4], errors_of(docs[4]))
        first = locator.locate(docs[0], errors_of(docs[0]))
    finally:
        locator.close()
    assert last and last[0].location == "inconnus.csv:6:3 field code_client"
    assert first and first[0].location == "inconnus.csv:2:3 field code_client"
    assert mapping.readings == 2


def test_no_place_is_given_when_the_mapping_no_longer_makes_what_was_sent(
    refused_parts: Parts, tmp_path: Path
) -> None:
    changed = tmp_path / "changed" / "ecommerce-orders-csv.yaml"
    shutil.copytree(MAPPINGS, changed.parent)
    text = changed.read_text(encoding="utf-8")
    changed.write_text(
        text.replace("customer_code: {from: code_client", "customer_code: {from: livraison_nom"),
        encoding="utf-8",
    )
    locator = locator_for(refused_parts, load_mapping(changed))
    doc = refused_parts.journal.documents_of(1)[0]
    try:
        assert locator.locate(doc, errors_of(doc)) is None
    finally:
        locator.close()


def test_no_place_is_given_when_the_archived_file_is_gone(refused_parts: Parts) -> None:
    doc = refused_parts.journal.documents_of(1)[0]
    refused_parts.archive.path_of(refused_parts.journal.file(1).sha256).unlink()
    locator = locator_for(refused_parts, load_mapping(MAPPINGS / "ecommerce-orders-csv.yaml"))
    try:
        assert locator.locate(doc, errors_of(doc)) is None
    finally:
        locator.close()


def test_a_refused_order_after_its_customer_step_is_placed_in_its_own_write(
    tmp_path: Path, sandbox_factory: Callable[..., SandboxProcess]
) -> None:
    """A Shopify order is a chain: its customer (``before:``), then the order, refused here
    for its total; the refusal is placed in the order's cells, not the customer step's."""
    sandbox = sandbox_factory()
    ws = write_workspace(
        tmp_path / "gw",
        base_url=sandbox.base_url,
        token=sandbox.token,
        flows={"shop": {"orders": inbound_flow("shopify-orders-csv.yaml", "shop", "orders")}},
    )
    sample = ROOT / "samples" / "ecommerce" / "shopify-orders-csv" / "orders_export_1.csv"
    header, *rows = sample.read_text(encoding="utf-8").splitlines()
    first = [r for r in rows if r.startswith("#1101,")]
    first[0] = first[0].replace(",458.82,", ",485.28,", 1)
    (ws.inbox("shop", "orders") / "orders_export.csv").write_text(
        "\n".join([header, *first, ""]), encoding="utf-8"
    )
    with running_gateway(ws) as parts:
        wait_until(files_final(parts, 1), what="the refused order")
        docs = parts.journal.documents_of(1)
    assert [(d.operation, d.state) for d in docs] == [
        ("customers.upsert", "done"),
        ("orders.create", "failed"),
    ]
    assert "orders_export.csv:2:12 field Total [/payment/amount]: payment 485.28" in (
        docs[1].error or ""
    )

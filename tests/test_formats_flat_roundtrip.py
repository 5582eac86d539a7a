"""Outbound → inbound: the fixed-width purchase-order export reads back through the flat reader
with the same layout file, value for value."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from edigw.formats import reader_for
from edigw.outbound.render import load_template, render_to_file

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "templates" / "supplier-purchase-orders-fixed.txt.j2"
LAYOUT = ROOT / "layouts" / "supplier-purchase-orders-fixed.yaml"


def purchase_orders() -> list[dict[str, Any]]:
    seed = json.loads((ROOT / "samples" / "sandbox-seed.json").read_text(encoding="utf-8"))
    orders: list[dict[str, Any]] = seed["purchase_orders"]
    return orders


def export_and_read_back(tmp_path: Path, orders: list[dict[str, Any]]) -> list[Any]:
    out = tmp_path / "PO_SUP.txt"
    render_to_file(
        load_template(TEMPLATE, timezone="Europe/Paris"), iter(orders), out, encoding="cp1252"
    )
    reader = reader_for({"format": "flat-fixed", "layout": str(LAYOUT)})
    return list(reader.records(out, source_name=out.name))


def test_exported_purchase_orders_read_back_with_the_same_layout(tmp_path: Path) -> None:
    orders = purchase_orders()

    documents = export_and_read_back(tmp_path, orders)

    assert [d.value("number") for d in documents] == [po["number"] for po in orders]
    for document, po in zip(documents, orders, strict=True):
        assert document.value("order_date") == po["order_date"].replace("-", "")
        assert document.value("supplier_code") == po["supplier_code"]
        assert int(document.value("line_count")) == len(po["lines"])
        read = [
            (
                int(line.value("line_number")),
                line.value("article"),
                line.value("supplier_article"),
                Decimal(line.value("quantity")),
                Decimal(line.value("unit_price")),
                line.value("delivery_date"),
            )
            for line in document.children("lines")
        ]
        assert read == [
            (
                line["line_number"],
                line["article_code"],
                line["supplier_article_code"],
                Decimal(line["quantity"]),
                Decimal(line["unit_price"]),
                line["delivery_date"].replace("-", ""),
            )
            for line in po["lines"]
        ]


def test_the_export_trailer_counts_are_checked_on_reading(tmp_path: Path) -> None:
    orders = purchase_orders()[:3]

    documents = export_and_read_back(tmp_path, orders)

    assert len(documents) == 3  # the FIN record agreed with 3 ENT and their LIG records

"""Loading the seed (``samples/sandbox-seed.json``) into a new sandbox database.

A seed is applied once, to an empty database; a restarted sandbox keeps what it holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edigw.errors import ConfigError
from edigw.sandbox import seedgen
from edigw.sandbox.invoices import state_change
from edigw.sandbox.store import SandboxStore, Tx
from edigw.shipped import shipped_folder

# Numbers Ecolix assigns: (counter, prefix, digits, first value after the seed)
ORDER_NUMBERS = ("order", "CMD-", 6, 200001)
DELIVERY_NOTE_NUMBERS = ("delivery_note", "BL-", 6, 1001)
SUPPLIER_INVOICE_IDS = ("supplier_invoice", "FF-", 6, 1001)


def default_seed_path() -> Path | None:
    """The shipped ``samples/sandbox-seed.json`` (checkout or installed copy), if there is one."""
    try:
        samples = shipped_folder("samples")
    except ConfigError:
        return None
    seed = samples / "sandbox-seed.json" if samples is not None else None
    return seed if seed is not None and seed.is_file() else None


def read_seed(path: Path | None) -> dict[str, Any]:
    """The seed at ``path``; without one, the shipped seed (or the generator's output)."""
    if path is None:
        shipped = default_seed_path()
        if shipped is not None:
            path = shipped
        else:
            return seedgen.generate()
    try:
        seed = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"{path}: cannot read the sandbox seed: {exc.strerror}"
        raise ConfigError(msg) from exc
    except json.JSONDecodeError as exc:
        msg = f"{path}:{exc.lineno}:{exc.colno}: the sandbox seed is not valid JSON: {exc.msg}"
        raise ConfigError(msg) from exc
    if not isinstance(seed, dict) or seed.get("version") != seedgen.SEED_VERSION:
        msg = f'{path}: not a sandbox seed (expected an object with "version": 1)'
        raise ConfigError(msg)
    return seed


def alt_key(*parts: str) -> str:
    """A business key made of several fields (customer + external reference, ...)."""
    return "|".join(parts)


def seed_if_empty(store: SandboxStore, seed: dict[str, Any]) -> bool:
    """Load ``seed`` into a database that was never seeded; True when it did."""
    with store.writing() as tx:
        if tx.meta("seeded_at") is not None:
            return False
        _apply(tx, seed)
        tx.set_meta("seeded_at", tx.now())
    return True


def _apply(tx: Tx, seed: dict[str, Any]) -> None:
    try:
        for warehouse in seed.get("warehouses", []):
            tx.put("warehouse", warehouse["code"], warehouse)
        for carrier in seed.get("carriers", []):
            tx.put("carrier", carrier["code"], carrier)
        for article in seed.get("articles", []):
            tx.put("article", article["code"], article)
        for level in seed.get("stock", []):
            tx.put("stock", f"{level['article_code']}@{level['warehouse']}", level)
        for customer in seed.get("customers", []):
            tx.put("customer", customer["code"], {**customer, "created_at": tx.now()})
        for supplier in seed.get("suppliers", []):
            tx.put("supplier", supplier["code"], supplier)
        for quote in seed.get("quotes", []):
            tx.put("quote", quote["number"], quote)
        for order in seed.get("orders", []):
            _apply_order(tx, order)
        for note in seed.get("delivery_notes", []):
            key = alt_key(note["carrier_code"], note["booking_reference"])
            tx.put("delivery_note", note["number"], {**note, "created_at": tx.now()}, alt_key=key)
        for po in seed.get("purchase_orders", []):
            tx.put("purchase_order", po["number"], po)
        for invoice in seed.get("supplier_invoices", []):
            key = alt_key(invoice["supplier_code"], invoice["document_type"], invoice["number"])
            stored = tx.put(
                "supplier_invoice", invoice["id"], {**invoice, "created_at": tx.now()}, alt_key=key
            )
            record_invoice_state(tx, stored, None, None)
    except (KeyError, TypeError) as exc:
        msg = f"the sandbox seed is missing a field or has a wrong type: {exc}"
        raise ConfigError(msg) from exc
    for name, _prefix, _digits, first in (
        ORDER_NUMBERS,
        DELIVERY_NOTE_NUMBERS,
        SUPPLIER_INVOICE_IDS,
    ):
        tx.set_counter(name, first - 1)


def _apply_order(tx: Tx, seeded: dict[str, Any]) -> None:
    order = {k: v for k, v in seeded.items() if k != "history"}
    previous = None
    for status in seeded.get("history") or [order["status"]]:
        record_state_change(tx, order, status, previous)
        previous = status
    key = (
        alt_key(order["customer_code"], order["external_reference"])
        if order.get("external_reference")
        else None
    )
    tx.put("order", order["number"], {**order, "created_at": tx.now()}, alt_key=key)


def record_state_change(tx: Tx, order: dict[str, Any], status: str, previous: str | None) -> None:
    """Append one entry to the order-states feed."""
    n = tx.next_number("order_state")
    tx.put(
        "order_state",
        f"{n:09d}",
        {
            "order_number": order["number"],
            "customer_code": order["customer_code"],
            "external_reference": order.get("external_reference"),
            "status": status,
            "previous_status": previous,
        },
    )


def record_invoice_state(
    tx: Tx, invoice: dict[str, Any], previous: str | None, reason: dict[str, Any] | None
) -> None:
    """Append one entry to the supplier-invoice-states feed (the invoice in its new status)."""
    n = tx.next_number("supplier_invoice_state")
    tx.put("supplier_invoice_state", f"{n:09d}", state_change(invoice, previous, reason))


def assign_number(tx: Tx, numbering: tuple[str, str, int, int]) -> str:
    """The next number of a series (``CMD-200001``, ``BL-001001``, ...)."""
    name, prefix, digits, first = numbering
    return f"{prefix}{tx.next_number(name, first):0{digits}d}"

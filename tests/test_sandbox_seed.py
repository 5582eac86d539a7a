"""The shipped seed: generated, realistic, and consistent with the contract and the rules."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import jsonschema_rs
import pytest

from edigw.ecolix.contract import load_contract
from edigw.errors import ConfigError
from edigw.sandbox import seedgen
from edigw.sandbox.seeding import read_seed, seed_if_empty
from edigw.sandbox.store import SandboxStore
from tests.fixtures.sandbox_data import SEED_PATH, seed


def test_the_shipped_seed_is_the_generators_output() -> None:
    assert SEED_PATH.read_text(encoding="utf-8") == seedgen.render()


def test_the_seed_has_the_promised_volume() -> None:
    data = seed()
    assert len(data["articles"]) == 300
    assert len(data["stock"]) == 600
    assert {s["warehouse"] for s in data["stock"]} == {"WH-LYON", "WH-LILLE"}
    assert len(data["customers"]) == 50
    assert {o["status"] for o in data["orders"]} == {
        "received",
        "confirmed",
        "prepared",
        "shipped",
        "delivered",
        "invoiced",
        "cancelled",
    }
    assert {q["status"] for q in data["quotes"]} == {"open", "expired", "validated", "cancelled"}
    assert [po for po in data["purchase_orders"] if po["status"] == "open"]


LA_POSTE = "356000000"


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def test_identifiers_carry_valid_check_digits() -> None:
    data = seed()
    for article in data["articles"]:
        if article["ean13"]:
            digits = [int(c) for c in article["ean13"]]
            assert sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0
    parties = [*data["customers"], *data["suppliers"]]
    for party in parties:
        if party["siret"] and party["siret"].startswith(LA_POSTE):
            # INSEE's exception: La Poste's SIRETs have a digit sum that is a multiple of 5.
            assert sum(int(c) for c in party["siret"]) % 5 == 0
            assert _luhn_ok(party["siret"][:9])
        elif party["siret"]:
            assert _luhn_ok(party["siret"]) and _luhn_ok(party["siret"][:9])
            siren = int(party["siret"][:9])
            assert (
                party["vat_number"] == f"FR{(12 + 3 * (siren % 97)) % 97:02d}{party['siret'][:9]}"
            )


def test_seeded_objects_conform_to_the_contract_response_schemas() -> None:
    contract = load_contract()
    data = seed()
    stamp = {"updated_at": "2026-11-28T00:00:00Z", "created_at": "2026-11-28T00:00:00Z"}
    for op_id, kind in [
        ("articles.list", "articles"),
        ("stock.list", "stock"),
        ("customers.list", "customers"),
        ("quotes.list", "quotes"),
        ("orders.list", "orders"),
        ("purchase_orders.list", "purchase_orders"),
        ("supplier_invoices.list", "supplier_invoices"),
        ("delivery_notes.list", "delivery_notes"),
        ("suppliers.list", "suppliers"),
    ]:
        schema = contract.operation(op_id).response_schema
        validator = jsonschema_rs.validator_for(schema, validate_formats=True)
        items = [{**item, **stamp} for item in data[kind]]
        errors = [e.message for e in validator.iter_errors({"items": items, "next_cursor": None})]
        assert errors == [], op_id


def test_seeded_order_totals_match_their_lines_and_payment() -> None:
    for order in seed()["orders"]:
        net = sum(Decimal(line["net_amount"]) for line in order["lines"])
        vat = sum(Decimal(line["vat_amount"]) for line in order["lines"])
        assert Decimal(order["totals"]["gross"]) == net + vat
        assert order["payment"]["amount"] == order["totals"]["gross"]


def test_a_seed_is_applied_once_to_a_new_database(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "s.sqlite")
    try:
        assert seed_if_empty(store, seed()) is True
        assert seed_if_empty(store, seed()) is False
        with store.reading() as tx:
            assert tx.counts()["article"] == 300
    finally:
        store.close()


def test_a_broken_seed_file_is_reported_with_its_place(tmp_path: Path) -> None:
    broken = tmp_path / "seed.json"
    broken.write_text('{"version": 1,\n "articles": [}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"seed\.json:2:15: the sandbox seed is not valid JSON"):
        read_seed(broken)

"""The Ecolix contract: every operation the team relies on, with compilable schemas."""

from __future__ import annotations

import jsonschema_rs
import pytest

from edigw.ecolix.contract import ContractError, OperationSpec, load_contract

WRITES = {
    "customers.upsert": ("PUT", "/customers/{code}", "code"),
    "orders.create": ("POST", "/orders", "number"),
    "quotes.validate": ("POST", "/quotes/{number}/validation", "order_number"),
    "delivery_notes.create": ("POST", "/delivery-notes", "number"),
    "purchase_orders.confirm": ("POST", "/purchase-orders/{number}/confirmation", "number"),
    "supplier_invoices.create": ("POST", "/supplier-invoices", "id"),
}
LISTS = {
    "articles.list": "/articles",
    "stock.list": "/stock",
    "customers.list": "/customers",
    "quotes.list": "/quotes",
    "orders.list": "/orders",
    "order_states.list": "/order-states",
    "purchase_orders.list": "/purchase-orders",
    "delivery_notes.list": "/delivery-notes",
    "supplier_invoices.list": "/supplier-invoices",
    "suppliers.list": "/suppliers",
}
GETS = {
    "customers.get": "/customers/{code}",
    "quotes.get": "/quotes/{number}",
    "orders.get": "/orders/{number}",
    "purchase_orders.get": "/purchase-orders/{number}",
}


def _validator(schema: dict[str, object]) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(schema, validate_formats=True)


def test_contract_lists_exactly_the_agreed_operations() -> None:
    ids = {spec.op_id for spec in load_contract().operations()}
    assert ids == set(WRITES) | set(LISTS) | set(GETS)


@pytest.mark.parametrize("op_id", sorted(WRITES))
def test_write_operation_has_method_path_body_and_object_id(op_id: str) -> None:
    spec = load_contract().operation(op_id)
    method, path, object_id = WRITES[op_id]
    assert (spec.method, spec.path, spec.kind, spec.object_id_field) == (
        method,
        path,
        "write",
        object_id,
    )
    assert spec.request_schema is not None
    assert spec.request_schema["additionalProperties"] is False
    for name in spec.path_params:
        assert name in spec.request_schema["required"]


@pytest.mark.parametrize("op_id", sorted(LISTS))
def test_list_operation_pages_with_items_and_next_cursor(op_id: str) -> None:
    spec = load_contract().operation(op_id)
    assert (spec.method, spec.path, spec.kind, spec.is_list) == ("GET", LISTS[op_id], "read", True)
    assert {"updated_since", "cursor", "limit"} <= {p.name for p in spec.query_params}
    assert spec.request_schema is None


@pytest.mark.parametrize("op_id", sorted(GETS))
def test_get_operation_addresses_one_object_by_path(op_id: str) -> None:
    spec = load_contract().operation(op_id)
    assert (spec.method, spec.path, spec.is_list) == ("GET", GETS[op_id], False)
    assert len(spec.path_params) == 1


@pytest.mark.parametrize("spec", list(load_contract().operations()), ids=lambda s: s.op_id)
def test_every_schema_compiles_on_its_own(spec: OperationSpec) -> None:
    for schema in (spec.request_schema, spec.response_schema):
        if schema is not None:
            assert "$ref" not in repr(schema)
            _validator(schema)


def test_amounts_are_decimal_strings_not_numbers() -> None:
    validator = _validator(load_contract().schema("Amount"))
    assert validator.is_valid("12.50")
    assert not validator.is_valid(12.5)
    assert not validator.is_valid("12,50")
    assert not validator.is_valid("1.23456")


def test_credit_note_without_credited_invoice_points_at_the_missing_field() -> None:
    spec = load_contract().operation("supplier_invoices.create")
    assert spec.request_schema is not None
    body = {
        "supplier": {"code": "SUP-001"},
        "document_type": "credit_note",
        "number": "AV-1",
        "issue_date": "2026-11-01",
        "due_date": "2026-12-01",
        "currency": "EUR",
        "lines": [
            {
                "description": "Return",
                "quantity": "1",
                "unit_price": "10.00",
                "net_amount": "10.00",
                "vat_rate": "20.00",
            }
        ],
        "vat_breakdown": [{"rate": "20.00", "base": "10.00", "amount": "2.00"}],
        "totals": {"net": "10.00", "vat": "2.00", "gross": "12.00"},
    }
    messages = [e.message for e in _validator(spec.request_schema).iter_errors(body)]
    assert messages == ['"credited_invoice" is a required property']


def test_url_path_fills_and_escapes_path_parameters() -> None:
    spec = load_contract().operation("customers.upsert")
    assert (
        spec.url_path({"code": "C 1/2"}) == "/customers/C%201%2F2"
    )  # escaped even where the pattern forbids it


def test_unknown_operation_names_the_known_ones() -> None:
    with pytest.raises(
        ContractError, match=r"unknown Ecolix operation 'orders\.delete'.*orders\.create"
    ):
        load_contract().operation("orders.delete")

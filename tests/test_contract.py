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
    "supplier_invoices.attach": ("PUT", "/supplier-invoices/{id}/attachment", "id"),
    "supplier_invoices.set_status": ("POST", "/supplier-invoices/{id}/status", "id"),
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
    "supplier_invoice_states.list": "/supplier-invoice-states",
    "suppliers.list": "/suppliers",
}
GETS = {
    "customers.get": "/customers/{code}",
    "quotes.get": "/quotes/{number}",
    "orders.get": "/orders/{number}",
    "purchase_orders.get": "/purchase-orders/{number}",
    "supplier_invoices.get": "/supplier-invoices/{id}",
    "supplier_invoices.get_attachment": "/supplier-invoices/{id}/attachment",
}
CHECKS = {"dry_runs.create": "/dry-runs"}  # a chain of writes checked as one, nothing made


def _validator(schema: dict[str, object]) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(schema, validate_formats=True)


def test_contract_lists_exactly_the_agreed_operations() -> None:
    ids = {spec.op_id for spec in load_contract().operations()}
    assert ids == set(WRITES) | set(LISTS) | set(GETS) | set(CHECKS)


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


def _credit_note() -> dict[str, object]:
    return {
        "supplier": {"code": "SUP-001"},
        "document_type": "credit_note",
        "number": "AV-1",
        "issue_date": "2026-11-01",
        "currency": "EUR",
        "lines": [
            {
                "description": "Return",
                "quantity": "1",
                "unit_price": "10.00",
                "net_amount": "10.00",
                "vat_category": "S",
                "vat_rate": "20.00",
            }
        ],
        "vat_breakdown": [{"category": "S", "rate": "20.00", "base": "10.00", "amount": "2.00"}],
        "totals": {"net": "10.00", "vat": "2.00", "gross": "12.00"},
    }


def _schema_errors(op_id: str, body: dict[str, object]) -> list[str]:
    spec = load_contract().operation(op_id)
    assert spec.request_schema is not None
    return [e.message for e in _validator(spec.request_schema).iter_errors(body)]


def test_a_credit_note_needs_no_preceding_invoice_nor_due_date() -> None:
    assert _schema_errors("supplier_invoices.create", _credit_note()) == []


def test_an_invoice_without_lines_must_say_it_is_header_only() -> None:
    body = {**_credit_note(), "document_type": "invoice"}
    del body["lines"]
    assert _schema_errors("supplier_invoices.create", body) == ['"lines" is a required property']
    assert _schema_errors("supplier_invoices.create", {**body, "header_only": True}) == []


def test_a_header_only_invoice_carries_no_lines() -> None:
    body = {**_credit_note(), "header_only": True}
    assert len(_schema_errors("supplier_invoices.create", body)) == 1


def test_a_vat_breakdown_row_of_category_o_needs_no_rate() -> None:
    body = _credit_note()
    body["vat_breakdown"] = [{"category": "O", "base": "10.00", "amount": "0"}]
    assert _schema_errors("supplier_invoices.create", body) == []
    body["vat_breakdown"] = [{"base": "10.00", "amount": "0"}]
    assert _schema_errors("supplier_invoices.create", body) != []


def test_unit_prices_take_six_decimals_and_never_a_sign() -> None:
    validator = _validator(load_contract().schema("Price"))
    assert validator.is_valid("0.123456")
    assert not validator.is_valid("0.1234567")
    assert not validator.is_valid("-1.00")


def test_the_french_document_type_codes_are_accepted() -> None:
    codes = set(load_contract().schema("InvoiceTypeCode")["enum"])
    french = [
        "380",
        "389",
        "393",
        "501",
        "386",
        "500",
        "384",
        "471",
        "472",
        "473",
        "261",
        "262",
        "381",
        "396",
        "502",
        "503",
    ]
    assert set(french) <= codes
    assert {"751", "875", "876", "877"} <= codes


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


def test_the_dry_run_of_a_chain_is_no_target_for_a_mapping() -> None:
    from edigw.ecolix.contract import load_contract

    contract = load_contract()
    assert contract.operation("orders.create").target
    assert not contract.operation("dry_runs.create").target
    assert not contract.operation("orders.list").target


def test_every_write_of_business_data_takes_dry_run() -> None:
    from edigw.ecolix.contract import load_contract

    for spec in load_contract().operations():
        if spec.target:
            assert "dry_run" in {p.name for p in spec.query_params}, spec.op_id

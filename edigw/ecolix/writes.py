"""The client's writes: ``write`` by operation id under the caller's idempotency key, its
dry runs (``validate``; ``validate_chain`` for writes that need each other), and a typed
method per write of the contract.

It keeps what a write needs besides the call: the body as JSON (amounts and dates as the
contract writes them), the key checked, and a dry run's answer checked to be one. A mixin of
:class:`~edigw.ecolix.client.EcolixClient`, on the calls of ``edigw.ecolix.calls``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from edigw.ecolix.answers import ChainAnswer, EcolixResponse, chain_answer
from edigw.ecolix.calls import CallsBase, _fill_path
from edigw.errors import EcolixFinalError

DRY_RUN_PARAMETER = "dry_run"
DRY_RUN_HEADER = "Dry-Run"
DRY_RUN_KEY_PREFIX = "edigw-dry-run-"
DRY_RUNS_OPERATION = "dry_runs.create"


class WritesMixin(CallsBase):
    """Writes by operation id (``write``), their dry runs, and a method per write of the
    contract."""

    def write(
        self,
        operation: str,
        payload: Mapping[str, Any],
        *,
        idempotency_key: str,
        dry_run: bool = False,
    ) -> EcolixResponse:
        """Send one write by operation id; path parameters are taken from ``payload``.

        ``dry_run``: validation only (``?dry_run=true``): Ecolix answers what the write would
        get, refusals included, and creates nothing; the call counts in the budget. A success
        without Ecolix's ``Dry-Run: true`` raises ``EcolixFinalError``: that Ecolix did not
        understand the dry run, and the write may have been made.
        """
        _check_idempotency_key(idempotency_key)
        spec = self.contract.operation(operation)
        if spec.kind != "write":
            msg = f"{operation} is a read operation; use get() or iter_list()"
            raise ValueError(msg)
        if not spec.target:
            msg = f"{operation} is not a write of business data; use validate_chain()"
            raise ValueError(msg)
        path = _fill_path(operation, spec, payload, source="body")
        content = json.dumps(
            dict(payload), sort_keys=True, separators=(",", ":"), default=_json_default
        )
        body, response, _ = self._send(
            operation,
            spec,
            path,
            params={DRY_RUN_PARAMETER: "true"} if dry_run else None,
            content=content.encode(),
            headers={"Idempotency-Key": idempotency_key, "Content-Type": "application/json"},
        )
        if dry_run and response.headers.get(DRY_RUN_HEADER, "").lower() != "true":
            msg = (
                f"Ecolix answered the dry run of {operation} with {response.status_code} but "
                f"without '{DRY_RUN_HEADER}: true': it may have made the write for real; "
                "check in Ecolix before sending this document"
            )
            raise EcolixFinalError(msg, operation=operation)
        object_id = body.get(spec.object_id_field) if spec.object_id_field else None
        return EcolixResponse(
            operation=operation,
            status=response.status_code,
            body=body,
            replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
            object_id=None if object_id is None else str(object_id),
            dry_run=dry_run,
        )

    def validate(self, operation: str, payload: Mapping[str, Any]) -> EcolixResponse:
        """A dry run of a write under a key of its own (never stored, so never reused):
        the answer Ecolix would give ``payload``, refusals raised as typed errors as for a
        write, and nothing created. One call, counted in the budget."""
        return self.write(
            operation,
            payload,
            idempotency_key=f"{DRY_RUN_KEY_PREFIX}{uuid.uuid4().hex}",
            dry_run=True,
        )

    def validate_chain(self, writes: Sequence[tuple[str, Mapping[str, Any]]]) -> list[ChainAnswer]:
        """A dry run of a chain of writes (``POST /dry-runs``): what each would get, each on
        what the earlier ones would have made, up to the first refusal; nothing created. One
        call, counted in the budget. A refusal of a write is in its answer, not raised; a
        refusal of the request itself (token, malformed) raises as any call does."""
        spec = self.contract.operation(DRY_RUNS_OPERATION)
        content = json.dumps(
            {"writes": [{"operation": op, "body": dict(body)} for op, body in writes]},
            sort_keys=True,
            separators=(",", ":"),
            default=_json_default,
        )
        body, response, _ = self._send(
            DRY_RUNS_OPERATION,
            spec,
            spec.path,
            content=content.encode(),
            headers={"Content-Type": "application/json"},
        )
        results = body.get("results")
        if response.headers.get(DRY_RUN_HEADER, "").lower() != "true" or not isinstance(
            results, list
        ):
            msg = f"Ecolix answered {DRY_RUNS_OPERATION} without the results of a dry run"
            raise EcolixFinalError(msg, operation=DRY_RUNS_OPERATION)
        return [
            chain_answer(item, response.reason_phrase, operation=DRY_RUNS_OPERATION)
            for item in results
        ]

    def upsert_customer(
        self, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> EcolixResponse:
        """PUT /customers/{code}: create or update a customer record."""
        return self.write("customers.upsert", payload, idempotency_key=idempotency_key)

    def create_order(self, payload: Mapping[str, Any], *, idempotency_key: str) -> EcolixResponse:
        """POST /orders: a customer order with its lines and the payment received."""
        return self.write("orders.create", payload, idempotency_key=idempotency_key)

    def validate_quote(self, payload: Mapping[str, Any], *, idempotency_key: str) -> EcolixResponse:
        """POST /quotes/{number}/validation: turn an open quote into an order."""
        return self.write("quotes.validate", payload, idempotency_key=idempotency_key)

    def create_delivery_note(
        self, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> EcolixResponse:
        """POST /delivery-notes: a carrier's booked appointment for an order."""
        return self.write("delivery_notes.create", payload, idempotency_key=idempotency_key)

    def confirm_purchase_order(
        self, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> EcolixResponse:
        """POST /purchase-orders/{number}/confirmation: a supplier's order confirmation."""
        return self.write("purchase_orders.confirm", payload, idempotency_key=idempotency_key)

    def create_supplier_invoice(
        self, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> EcolixResponse:
        """POST /supplier-invoices: a supplier's invoice or credit note."""
        return self.write("supplier_invoices.create", payload, idempotency_key=idempotency_key)

    def set_supplier_invoice_status(
        self, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> EcolixResponse:
        """POST /supplier-invoices/{id}/status: a lifecycle status (refused, approved...)."""
        return self.write("supplier_invoices.set_status", payload, idempotency_key=idempotency_key)


# -- small pure helpers ------------------------------------------------------------------------


def _check_idempotency_key(key: str) -> None:
    if not isinstance(key, str) or not key or not key.isascii() or not key.isprintable():
        msg = f"a write needs a non-empty printable ASCII idempotency key, got {key!r}"
        raise ValueError(msg)


def _json_default(value: object) -> str:
    """Amounts are decimal strings and dates ISO 8601 in the contract: serialise them so."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    msg = f"cannot send a {type(value).__name__} to Ecolix as JSON"
    raise TypeError(msg)

"""The client's reads: one object by its path (``get``), a list lazily, page by page
(``iter_list``, a :class:`Listing`), and a typed method per read of the contract.

It keeps the pages read: each list page is sent back with its ETag (``If-None-Match``), so
reading an unchanged page again costs a 304 and the kept page is used (``edigw.ecolix.pages``).
A mixin of :class:`~edigw.ecolix.client.EcolixClient`, on the calls of
``edigw.ecolix.calls``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from edigw.ecolix.answers import success_body
from edigw.ecolix.calls import NOT_MODIFIED, CallsBase, _fill_path
from edigw.ecolix.contract import OperationSpec
from edigw.ecolix.pages import PageCache, page_key
from edigw.errors import EcolixFinalError

MAX_PAGE_SIZE = 1000


class Listing(Iterator[dict[str, Any]]):
    """The items of a list operation, fetched lazily one page at a time.

    ``pages`` and ``calls`` (HTTP requests, retries included) grow as you iterate, so an
    export run can record how many calls it cost; ``not_modified`` counts the pages Ecolix
    answered 304 to, taken from the client's kept pages (``edigw.ecolix.pages``).
    """

    def __init__(self, client: ReadsMixin, operation: str, params: dict[str, str]) -> None:
        self.operation = operation
        self.pages = 0
        self.calls = 0
        self.not_modified = 0
        self.next_cursor: str | None = None
        self._client = client
        self._params = params
        self._items: Iterator[dict[str, Any]] = iter(())
        self._done = False

    def __next__(self) -> dict[str, Any]:
        while True:
            for item in self._items:  # at most one: the rest stay for the next call
                return item
            if self._done:
                raise StopIteration
            self._fetch_page()

    def _fetch_page(self) -> None:
        params = dict(self._params)
        if self.next_cursor is not None:
            params["cursor"] = self.next_cursor
        spec = self._client.contract.operation(self.operation)
        body, attempts, reused = self._client._read_page(self.operation, spec, params)
        self.calls += attempts
        self.pages += 1
        self.not_modified += reused
        items = body.get("items")
        if not isinstance(items, list):
            msg = f"Ecolix answered {self.operation} without an 'items' list"
            raise EcolixFinalError(msg, operation=self.operation)
        cursor = body.get("next_cursor")
        if cursor is not None and (not isinstance(cursor, str) or cursor == self.next_cursor):
            msg = f"Ecolix answered {self.operation} with an unusable next_cursor {cursor!r}"
            raise EcolixFinalError(msg, operation=self.operation)
        self.next_cursor = cursor or None
        self._done = self.next_cursor is None
        self._items = iter(items)


class ReadsMixin(CallsBase):
    """Reads by operation id (``get``, ``iter_list``) and a method per read of the contract."""

    pages: PageCache

    def get(self, operation: str, **path_params: str) -> dict[str, Any]:
        """Read one object by operation id, e.g. ``get("orders.get", number="SO-1")``."""
        spec = self._read_spec(operation)
        if set(path_params) != set(spec.path_params):
            msg = f"{operation} takes path parameters {sorted(spec.path_params)}, got {sorted(path_params)}"
            raise ValueError(msg)
        path = _fill_path(operation, spec, path_params, source="arguments")
        body, _, _ = self._send(operation, spec, path)
        return body

    def iter_list(
        self,
        operation: str,
        *,
        updated_since: datetime | None = None,
        page_size: int = MAX_PAGE_SIZE,
        **filters: str | int | bool | None,
    ) -> Listing:
        """Iterate a list operation lazily, page by page, following ``next_cursor``.

        ``updated_since`` must be timezone-aware. Filters with a ``None`` value are left out.
        The returned :class:`Listing` counts the pages and calls it made.
        """
        spec = self._read_spec(operation)
        if not spec.is_list:
            msg = f"{operation} is not a list operation"
            raise ValueError(msg)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            msg = f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}"
            raise ValueError(msg)
        params = {"limit": str(page_size)}
        if updated_since is not None:
            if updated_since.tzinfo is None or updated_since.utcoffset() is None:
                msg = "updated_since must be timezone-aware (naive datetimes are ambiguous)"
                raise ValueError(msg)
            params["updated_since"] = updated_since.isoformat()
        for name, value in filters.items():
            if value is not None:
                params[name] = str(value).lower() if isinstance(value, bool) else str(value)
        return Listing(self, operation, params)

    def get_customer(self, code: str) -> dict[str, Any]:
        return self.get("customers.get", code=code)

    def get_quote(self, number: str) -> dict[str, Any]:
        return self.get("quotes.get", number=number)

    def get_order(self, number: str) -> dict[str, Any]:
        return self.get("orders.get", number=number)

    def get_purchase_order(self, number: str) -> dict[str, Any]:
        return self.get("purchase_orders.get", number=number)

    def get_supplier_invoice(self, invoice_id: str) -> dict[str, Any]:
        return self.get("supplier_invoices.get", id=invoice_id)

    def list_articles(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("articles.list", updated_since=updated_since)

    def list_stock(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("stock.list", updated_since=updated_since)

    def list_customers(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("customers.list", updated_since=updated_since)

    def list_quotes(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("quotes.list", updated_since=updated_since)

    def list_orders(
        self, *, customer: str | None = None, updated_since: datetime | None = None
    ) -> Listing:
        return self.iter_list("orders.list", updated_since=updated_since, customer=customer)

    def list_order_states(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("order_states.list", updated_since=updated_since)

    def list_purchase_orders(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("purchase_orders.list", updated_since=updated_since)

    def list_delivery_notes(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("delivery_notes.list", updated_since=updated_since)

    def list_supplier_invoices(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("supplier_invoices.list", updated_since=updated_since)

    def list_supplier_invoice_states(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("supplier_invoice_states.list", updated_since=updated_since)

    def list_suppliers(self, *, updated_since: datetime | None = None) -> Listing:
        return self.iter_list("suppliers.list", updated_since=updated_since)

    def _read_page(
        self, operation: str, spec: OperationSpec, params: Mapping[str, str]
    ) -> tuple[dict[str, Any], int, bool]:
        """One list page: (body, requests made, whether it was the kept page, Ecolix
        answering 304 to its ETag)."""
        key = page_key(spec.path, params)
        kept = self.pages.get(key)
        headers = {"If-None-Match": kept.etag} if kept is not None else None
        body, response, attempts = self._send(
            operation, spec, spec.path, params=params, headers=headers
        )
        if response.status_code == NOT_MODIFIED:
            if kept is None:
                msg = f"Ecolix answered {operation} with 304 to a read that held no page"
                raise EcolixFinalError(msg, operation=operation)
            return success_body(operation, kept.body), attempts, True
        etag = response.headers.get("ETag")
        if etag:
            self.pages.put(key, etag, response.content)
        else:
            self.pages.forget(key)
        return body, attempts, False

    def _read_spec(self, operation: str) -> OperationSpec:
        spec = self.contract.operation(operation)
        if spec.kind != "read":
            msg = f"{operation} is a write operation; use write()"
            raise ValueError(msg)
        return spec

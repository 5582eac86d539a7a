"""``lookup(resource, key)`` for templates: a whole Ecolix list as a dict by key, read once
per run (:class:`Lookups`), or taken from sample data (:class:`StaticLookups`, for
``edigw template test``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from edigw.jinja_sandbox import Waits
from edigw.outbound.flow import PAGE_SIZE, Client


class Lookups(Waits):
    """``lookup(resource, key)`` for templates: a whole Ecolix list as a dict by ``key``.

    A carrier file needs article weights and an order list does not carry them; fetching each
    article would cost one call per line. A lookup reads the list once per run, page by page
    at the maximum page size, only if the template asks for it, and counts its calls. It is
    never filtered by ``updated_since``: references need every object, not only the changed.
    The time it waits for Ecolix does not count against the template's time limit (``Waits``).
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._tables: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.calls = 0

    def __call__(self, resource: str, key: str = "code") -> dict[str, dict[str, Any]]:
        table = self._tables.get((resource, key))
        if table is None:
            listing = self._client.iter_list(resource, page_size=PAGE_SIZE)
            table = {str(item.get(key)): item for item in listing}
            self.calls += int(getattr(listing, "calls", 0))
            self._tables[(resource, key)] = table
        return table


class StaticLookups(Waits):
    """Lookups from sample data (``template test``): ``{"articles.list": [...], ...}``."""

    def __init__(self, tables: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
        self._tables = tables
        self.calls = 0

    def __call__(self, resource: str, key: str = "code") -> dict[str, Mapping[str, Any]]:
        return {str(item.get(key)): item for item in self._tables.get(resource, ())}

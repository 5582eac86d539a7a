"""List pages kept by the client, so that reading an unchanged page again costs a 304.

Ecolix tags each list page (``ETag``); the client keeps the last page it read per URL (path
and query) and sends its tag back (``If-None-Match``). While the page is unchanged the answer
is 304 Not Modified, without a body, and the kept page is used: a reference list that a
gateway rereads every run costs one cheap call per page instead of its whole transfer. A
304 is still a call in the agreement's budget.

Bounded by entries and bytes (least recently used first out), so a gateway that reads many
large lists never holds more than ``max_bytes`` of them. Kept as the raw bytes Ecolix sent:
each reuse parses them afresh, so no caller can change what another one reads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

DEFAULT_MAX_PAGES = 256
DEFAULT_MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class KeptPage:
    """A page as Ecolix last sent it, with its tag."""

    etag: str
    body: bytes


def page_key(path: str, params: Mapping[str, str]) -> str:
    """The URL a page was read at, query parameters in a stable order."""
    return f"{path}?{urlencode(sorted(params.items()))}"


class PageCache:
    """The last page read per URL, with its ETag; thread-safe, bounded."""

    def __init__(
        self, *, max_pages: int = DEFAULT_MAX_PAGES, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.max_pages = max_pages
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._pages: OrderedDict[str, KeptPage] = OrderedDict()
        self._bytes = 0

    def get(self, key: str) -> KeptPage | None:
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def put(self, key: str, etag: str, body: bytes) -> None:
        """Keep ``body`` for ``key`` (a page larger than the whole budget is not kept)."""
        with self._lock:
            self._drop(key)
            if len(body) > self.max_bytes or self.max_pages < 1:
                return
            self._pages[key] = KeptPage(etag, body)
            self._bytes += len(body)
            while len(self._pages) > self.max_pages or self._bytes > self.max_bytes:
                self._drop(next(iter(self._pages)))

    def forget(self, key: str) -> None:
        with self._lock:
            self._drop(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pages)

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._bytes

    def _drop(self, key: str) -> None:
        page = self._pages.pop(key, None)
        if page is not None:
            self._bytes -= len(page.body)

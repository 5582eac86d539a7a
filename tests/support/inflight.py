"""Counting the Ecolix writes in flight at once, around a real client's ``write``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from edigw.ecolix.answers import EcolixResponse


class InFlight:
    """Counts the client's writes in flight at once (the most seen)."""

    def __init__(self, write: Callable[..., EcolixResponse]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __call__(self, *args: Any, **kwargs: Any) -> EcolixResponse:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            return self._write(*args, **kwargs)
        finally:
            with self._lock:
                self.now -= 1

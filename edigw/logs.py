"""Logging for ``edigw run``: human-readable lines or one JSON object a line.

The pipeline names the work in hand with :func:`log_context` (``flow``, ``file``,
``document``) where it knows it; every record logged inside, by edigw or by a library it
calls, carries those ids, so a log shipper can gather one file's story::

    {"time": "2026-12-06T08:02:33.120+00:00", "level": "info", "logger": "edigw.runtime",
     "message": "D-58 -> failed refused by Ecolix: ...", "thread": "sender 0",
     "flow": "webshop/orders", "file": "F-38", "document": "D-58"}

A record may also name them itself (``log.info(..., extra={"file": "F-12"})``). A record
with an exception (``log.exception``, a thread's crash) carries its traceback in
``exception``, inside the one JSON line.

Why a context variable: the ids are known a few calls up from where the lines are logged
(the Ecolix client logs a retry without knowing which document it sends), and each
thread, having its own context, keeps its own ids.

Every message is kept within ``LOG_MESSAGE_LIMIT`` characters, whatever logged it: one
document with 200,000 bad lines must not write megabytes per log line.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from edigw.problems import MAX_MESSAGE, bounded

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")
#: The ids a record may carry, in the order a JSON line shows them.
ID_KEYS = ("flow", "file", "document")
#: Libraries (paramiko, httpx, uvicorn) log through the root logger from this level.
LIBRARY_LEVEL = logging.WARNING
#: Characters of one log message: an error text (``MAX_MESSAGE``) and what surrounds it.
LOG_MESSAGE_LIMIT = 2 * MAX_MESSAGE

#: The ids of the work in hand, as (key, value) pairs: a tuple, immutable like a default must be.
_IDS: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("edigw_log_ids", default=())


@contextmanager
def log_context(
    *, flow: str | None = None, file: str | None = None, document: str | None = None
) -> Iterator[None]:
    """Records logged inside carry these ids (``webshop/orders``, ``F-12``, ``D-40``)."""
    given = {"flow": flow, "file": file, "document": document}
    ids = {**dict(_IDS.get()), **{k: v for k, v in given.items() if v}}
    token = _IDS.set(tuple(ids.items()))
    try:
        yield
    finally:
        _IDS.reset(token)


def current_ids() -> Mapping[str, str]:
    """The ids :func:`log_context` set for the code running now."""
    return dict(_IDS.get())


class ContextIds(logging.Filter):
    """Copies the current context's ids onto each record (unless it names its own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _IDS.get():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` lines, each message within ``LOG_MESSAGE_LIMIT`` characters."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = bounded(record.message, limit=LOG_MESSAGE_LIMIT)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, thread, the ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": bounded(record.getMessage(), limit=LOG_MESSAGE_LIMIT),
            "thread": record.threadName,
        }
        for key in ID_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                data[key] = str(value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes, not when it was created."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def formatter_for(log_format: str) -> logging.Formatter:
    if log_format not in LOG_FORMATS:
        msg = f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}"
        raise ValueError(msg)
    return JsonFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT)


def configure_logging(log_format: str, *, level: int = logging.INFO) -> None:
    """Send every log record to stderr in ``text`` or ``json``: edigw's from ``level``,
    the libraries' from warnings on, so that a JSON log holds nothing but JSON lines."""
    handler = _StderrHandler()
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(ContextIds())
    handler.set_name("edigw")
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "edigw"] + [handler]
    root.setLevel(LIBRARY_LEVEL)
    edigw = logging.getLogger("edigw")
    edigw.handlers[:] = [h for h in edigw.handlers if h.get_name() != "edigw"]
    edigw.setLevel(level)
    edigw.propagate = True

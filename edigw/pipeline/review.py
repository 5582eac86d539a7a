"""Reviewing and acknowledging: ``edigw files`` lists files, ``edigw resolve`` acknowledges
failures (``edigw show`` and ``edigw status``, which read the same journal, live in
``stories.py`` and ``gateway_status.py``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from edigw.config import GatewayConfig, parse_duration
from edigw.errors import EdigwError, JournalError
from edigw.journal import FileState
from edigw.journal.rows import FileListing, ResolutionRow
from edigw.journal.store import Journal
from edigw.pipeline.signals import utc_now

_ID = re.compile(r"^\s*([FDR])-?(\d+)\s*$", re.IGNORECASE)


def parse_id(text: str) -> tuple[str, int]:
    """``F-12`` → ``("F", 12)``; files F, documents D, export runs R."""
    match = _ID.match(text)
    if not match:
        msg = f"{text!r} is not an id: use F-<n> (file), D-<n> (document) or R-<n> (export run)"
        raise EdigwError(msg)
    return match.group(1).upper(), int(match.group(2))


# --------------------------------------------------------------------------- files


def parse_since(text: str, *, now: datetime) -> datetime:
    """``2d``, ``12h``, ``30m`` before ``now``, or a date (``2026-12-01``; UTC unless it
    says otherwise)."""
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        msg = f"--since: {text!r} is neither a duration (2d, 12h, 30m) nor a date (2026-12-01)"
        raise EdigwError(msg) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


#: What ``edigw files --state`` accepts: the file states, plus ``unresolved`` (failures
#: nobody resolved yet) and ``resolved``.
FILE_FILTERS = (*(str(s) for s in FileState), "unresolved", "resolved")


def split_flow(flow: str) -> tuple[str, str]:
    """``webshop/orders`` → ``("webshop", "orders")``, or a one-line error."""
    partner, _, name = flow.partition("/")
    if not partner or not name:
        msg = f"{flow!r} is not a flow: write PARTNER/FLOW, e.g. webshop/orders"
        raise EdigwError(msg)
    return partner, name


def list_files(
    config: GatewayConfig,
    *,
    flow: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    name: str | None = None,
    limit: int | None = 50,
) -> list[FileListing]:
    """Files newest first, narrowed by flow, state (see ``FILE_FILTERS``), reception time
    and a name pattern (``*.csv``; plain text matches anywhere in the name)."""
    partner, flow_name = split_flow(flow) if flow else (None, None)
    if state is not None and state not in FILE_FILTERS:
        msg = f"unknown state {state!r} (one of {', '.join(FILE_FILTERS)})"
        raise EdigwError(msg)
    resolved = {"resolved": True, "unresolved": False}.get(state or "")
    journal = Journal.open(config.journal_url)
    try:
        return journal.file_listing(
            partner=partner,
            flow=flow_name,
            state=None if resolved is not None else state,
            resolved=resolved,
            since=since,
            name=name,
            limit=limit,
        )
    finally:
        journal.close()


# --------------------------------------------------------------------------- resolve


@dataclass(frozen=True, slots=True)
class Resolved:
    """What ``edigw resolve`` did for one id: its resolution, or why there is none."""

    ref: str
    resolution: ResolutionRow | None = None
    error: str = ""


def resolve_items(
    config: GatewayConfig,
    ids: Sequence[str],
    *,
    by: str,
    note: str,
    clock: Callable[[], datetime] = utc_now,
) -> list[Resolved]:
    """Acknowledge the failures of files (``F-12``) and documents (``D-40``): they leave
    the open failures (``status``, ``files --state unresolved``, ``replay --failed``) and
    the journal keeps who, when and why. Every id is tried; each result says how it went."""
    if not note.strip():
        msg = "a resolution needs a note: say why (--note 'partner resends it on Monday')"
        raise EdigwError(msg)
    if not by.strip():
        msg = "a resolution needs its author (--by NAME)"
        raise EdigwError(msg)
    parsed = [parse_id(text) for text in ids]
    for kind, number in parsed:
        if kind == "R":
            msg = f"R-{number} is an export run: only files (F-<n>) and documents (D-<n>) are resolved"
            raise EdigwError(msg)
    results = []
    journal = Journal.open(config.journal_url)
    try:
        for kind, number in parsed:
            ref = f"{kind}-{number}"
            try:
                if kind == "F":
                    row = journal.resolve_file(number, by=by, note=note, now=clock())
                else:
                    row = journal.resolve_document(number, by=by, note=note, now=clock())
            except JournalError as exc:
                results.append(Resolved(ref, error=str(exc)))
                continue
            results.append(Resolved(ref, row))
    finally:
        journal.close()
    return results

"""Putting away the error copy of a file that is done since it failed.

A failed file's source goes to the flow's error folder with a ``NAME.error.txt`` report.
When a replay (or the retries it queued) later makes the file ``done``, that copy and its
report tell a story that is no longer true: the copy goes where a done file goes (the done
folder when the flow moves its files; deleted when it deletes or leaves them, the archive
keeping the bytes) and the report is removed. The journal records it as a channel action
(``error-cleared``), like any other move of a source.
"""

from __future__ import annotations

import logging
from datetime import datetime

from edigw.channels.base import ChannelActionResult, InboundChannel
from edigw.journal.rows import FileRow
from edigw.journal.store import Journal

log = logging.getLogger("edigw.tidy")

ERROR_MOVED = "error-moved"


def error_copy_of(journal: Journal, file_id: int) -> str | None:
    """Where the file's failure left its source, while that is the last thing done to it
    (``None``: not moved to the error folder, cleared already, or moved before the journal
    kept targets, schema revision ``0003``)."""
    for action in journal.channel_actions(file_id=file_id, limit=20):
        if action.ok:
            return action.target if action.action == ERROR_MOVED and action.target else None
    return None


def clear_error_copy(
    journal: Journal, channel: InboundChannel, row: FileRow, *, now: datetime
) -> ChannelActionResult | None:
    """Put away the error copy of a ``done`` file and journal it; ``None``: nothing to do."""
    if row.state != "done":
        return None
    target = error_copy_of(journal, row.id)
    if target is None:
        return None
    result = channel.clear_error(row.original_name, target)
    journal.record_channel_action(
        row.id,
        action=result.action,
        ok=result.ok,
        error=None if result.ok else result.detail,
        now=now,
        target=result.target,
    )
    if not result.ok:
        log.warning("%s: %s", row.ref, result.detail, extra={"file": row.ref})
    return result


def describe(result: ChannelActionResult | None) -> str:
    """One line for ``edigw replay``: what became of the error copy."""
    if result is None:
        return ""
    if not result.ok:
        return f"error copy left in place: {result.detail}"
    if result.target:
        return f"error copy moved to {result.target}, its report removed"
    return "error copy and its report removed"

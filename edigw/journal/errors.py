"""Why the journal refused or failed a call: every SQLAlchemy error leaves the journal as one of
these (see ``dialect.translated``).
"""

from __future__ import annotations

from collections.abc import Mapping

from edigw.errors import JournalError


class UnknownIdError(JournalError):
    """The file, document or export run does not exist in this journal."""


class StateError(JournalError):
    """The requested transition is not allowed from the row's current state."""


class LeaseLostError(StateError):
    """The node no longer holds the claim on the document (its lease expired)."""


class FlowLeaseLostError(StateError):
    """A write fenced by a flow's lease was refused: the lease in the journal is no longer the
    one this node holds (another node took the flow over, or it expired)."""


class JournalUnavailable(JournalError):
    """The database could not do the work right now (connection lost, locked, read-only, disk
    full): nothing about the data is wrong, the same call may succeed later."""


class JournalRefused(JournalError):
    """The database refused a statement (a constraint, a trigger, a bug): the same data is
    likely refused again, but not certainly (a race with another node)."""


class JournalValueError(JournalRefused):
    """The database refused a value (PostgreSQL refuses NUL characters in text, a string too
    long for its column...): the same data would be refused again."""


class DuplicateKeyError(JournalError):
    """A document's idempotency key is already in the journal (or twice in one batch)."""

    def __init__(self, message: str, *, keys: Mapping[str, int | None]) -> None:
        super().__init__(message)
        #: idempotency key -> id of the document already holding it (None: twice in the batch)
        self.keys = dict(keys)

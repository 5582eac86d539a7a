"""SQL conditions and selects shared by several parts of the journal: states as literals, open
failures, an operator's listing filters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Integer, Select, String, and_, literal_column, or_, select
from sqlalchemy.sql.elements import ColumnElement

from edigw.journal.rows import _aware
from edigw.journal.schema import DocState, FileState, documents, files, resolutions

_T = TypeVar("_T")


def _state_of_file(state: str) -> ColumnElement[str]:
    return literal_column(f"'{FileState(state)}'", String())


def _state(state: str) -> ColumnElement[str]:
    """A state as an SQL literal, not a parameter: PostgreSQL's generic plans for prepared
    statements then still know which state is asked for and pick the (state, ...) index."""
    return literal_column(f"'{DocState(state)}'", String())


#: ``LIMIT 1`` written in the SQL, not bound. PostgreSQL's generic plan of a prepared statement
#: cannot know a bound limit and costs it as a tenth of the rows, so it never beats the custom
#: plans and the statement is planned anew at every call (0.1-0.15 ms of the server's CPU).
ONE = literal_column("1", Integer())

_DOC_COLUMNS = [c for c in documents.c if c.name not in ("file_head", "key_hash")]


def _filtered(
    query: Select[Any],
    *,
    partner: str | None,
    flow: str | None,
    state: tuple[ColumnElement[Any], str | None],
    since: tuple[ColumnElement[Any], datetime | None],
    limit: int | None,
) -> Select[Any]:
    """``query`` narrowed to what an operator asked for (a listing's filters): ``state`` and
    ``since`` pair the column to compare with the wanted value (``None``: any)."""
    if partner is not None:
        query = query.where(files.c.partner == partner)
    if flow is not None:
        query = query.where(files.c.flow == flow)
    if state[1] is not None:
        query = query.where(state[0] == state[1])
    if since[1] is not None:
        query = query.where(since[0] >= _aware(since[1], "since"))
    return query if limit is None else query.limit(limit)


def _doc_select() -> Select[Any]:
    return select(*_DOC_COLUMNS, files.c.partner, files.c.flow).join(
        files, files.c.id == documents.c.file_id
    )


#: File states that are failures an operator may resolve.
FAILED_FILE_STATES = (FileState.FAILED, FileState.PARTIALLY_FAILED)


def _resolved_document(d: Any) -> ColumnElement[bool]:
    """A document's failure is resolved by a resolution of the document or of its file
    made after the document last changed (a later failure is open again)."""
    r = resolutions
    return (
        select(r.c.id)
        .where(
            r.c.file_id == d.c.file_id,
            or_(r.c.document_id == d.c.id, r.c.document_id.is_(None)),
            r.c.at >= d.c.updated_at,
        )
        .exists()
    )


def _open_document_failure(d: Any) -> ColumnElement[bool]:
    return and_(d.c.state == _state(DocState.FAILED), ~_resolved_document(d))


def _open_file_failure(f: Any) -> ColumnElement[bool]:
    """A failed or partially failed file whose failure nobody resolved yet.

    A file with failed documents is resolved when each of them is (one by one, or all at
    once by resolving the file); a file that failed as a whole (unreadable, no document)
    when the file was resolved after it finished.
    """
    d = documents.alias("failed_doc")
    failed_doc = and_(d.c.file_id == f.c.id, d.c.state == _state(DocState.FAILED))
    has_failed_doc = select(d.c.id).where(failed_doc).exists()
    has_open_doc = select(d.c.id).where(failed_doc, ~_resolved_document(d)).exists()
    file_resolved = (
        select(resolutions.c.id)
        .where(
            resolutions.c.file_id == f.c.id,
            resolutions.c.document_id.is_(None),
            resolutions.c.at >= f.c.finished_at,
        )
        .exists()
    )
    return and_(
        f.c.state.in_([_state_of_file(s) for s in FAILED_FILE_STATES]),
        or_(has_open_doc, and_(~has_failed_doc, ~file_resolved)),
    )


def _name_pattern(glob: str) -> str:
    """A shell-style pattern as a LIKE pattern (escape ``\\``); without ``*`` or ``?`` the
    text may sit anywhere in the name, so ``--name 20261128`` finds a file by its date."""
    like = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = like.replace("*", "%").replace("?", "_")
    return like if any(c in glob for c in "*?") else f"%{like}%"


def _batches(ids: Sequence[_T], size: int = 500) -> Iterator[list[_T]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])

"""The exchange journal (SQLAlchemy Core) and the content-addressed archive.

``Journal`` records every file, document, attempt and export run; ``Archive`` keeps every
original byte for byte. See ``store.py`` and ``archive.py``.
"""

from edigw.journal.archive import Archive, ArchivedFile
from edigw.journal.schema import DocState, FileState, RunState
from edigw.journal.store import (
    ChannelActionRow,
    DocumentRow,
    DuplicateKeyError,
    EventRow,
    ExportRunRow,
    FileRow,
    Journal,
    LeaseLostError,
    NewDocument,
    PurgeCounts,
    RecentError,
    StateError,
    StatusRow,
    UnknownIdError,
)

__all__ = [
    "Archive",
    "ArchivedFile",
    "ChannelActionRow",
    "DocState",
    "DocumentRow",
    "DuplicateKeyError",
    "EventRow",
    "ExportRunRow",
    "FileRow",
    "FileState",
    "Journal",
    "LeaseLostError",
    "NewDocument",
    "PurgeCounts",
    "RecentError",
    "RunState",
    "StateError",
    "StatusRow",
    "UnknownIdError",
]

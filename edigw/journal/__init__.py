"""The exchange journal (SQLAlchemy Core) and the content-addressed archive.

``Journal`` records every file, document, attempt and export run; an ``Archive`` keeps every
original byte for byte (``FolderArchive``, ``PostgresArchive``). See ``store.py`` and
``archive.py``.
"""

from edigw.journal.archive import Archive, ArchivedFile, ArchiveMissingCopy
from edigw.journal.archive_folder import FolderArchive
from edigw.journal.claims import NextClaim
from edigw.journal.done import DoneOutcome
from edigw.journal.errors import (
    DuplicateKeyError,
    JournalRefused,
    JournalUnavailable,
    JournalValueError,
    LeaseLostError,
    StateError,
    UnknownIdError,
)
from edigw.journal.rows import (
    ChannelActionRow,
    DocumentRow,
    EventRow,
    ExportRunRow,
    FileListing,
    FileRow,
    NewDocument,
    PurgeCounts,
    RecentError,
    ResolutionRow,
    StatusRow,
)
from edigw.journal.schema import DocState, FileState, RunState
from edigw.journal.store import Journal

__all__ = [
    "Archive",
    "ArchiveMissingCopy",
    "ArchivedFile",
    "ChannelActionRow",
    "DocState",
    "DocumentRow",
    "DoneOutcome",
    "DuplicateKeyError",
    "EventRow",
    "ExportRunRow",
    "FileListing",
    "FileRow",
    "FileState",
    "FolderArchive",
    "Journal",
    "JournalRefused",
    "JournalUnavailable",
    "JournalValueError",
    "LeaseLostError",
    "NewDocument",
    "NextClaim",
    "PurgeCounts",
    "RecentError",
    "ResolutionRow",
    "RunState",
    "StateError",
    "StatusRow",
    "UnknownIdError",
]

"""Retention (``edigw purge``): forgetting old files and export runs, in the journal first and
then in the archive, the copies nothing points at any more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from edigw.config import GatewayConfig
from edigw.journal import FileState, PurgeCounts
from edigw.pipeline.assembly import archive_of, open_journal
from edigw.pipeline.inbound import FINAL_FILE_STATES

#: A purge leaves archive copies stored less than this long ago (seconds): a file is
#: archived a moment before the journal hears of it.
ARCHIVE_GRACE = 3600.0
#: What a purge forgets unless told to take failed files too.
SETTLED_STATES = (
    str(FileState.DONE),
    str(FileState.SKIPPED_DUPLICATE),
    str(FileState.SUPERSEDED),
)


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What ``purge_history`` removed, or would remove (``dry_run``: the journal counts are
    those of files and export runs only)."""

    before: datetime
    dry_run: bool
    journal: PurgeCounts
    archive_copies: int
    archive_bytes: int


def purge_history(
    config: GatewayConfig, *, before: datetime, include_failed: bool, dry_run: bool
) -> PurgeReport:
    """Forget finished files received before ``before`` (failed ones only with
    ``include_failed``) and export runs started before it, then delete the archive copies
    the journal no longer points at.

    The journal goes first: an interrupted purge leaves copies nothing points at (the next
    purge removes them), never a journal entry without its original.
    """
    journal = open_journal(config)
    try:
        states = FINAL_FILE_STATES if include_failed else SETTLED_STATES
        file_ids = journal.purgeable_files(before=before, states=states)
        run_ids = journal.old_export_runs(before=before)
        keep = journal.contents_in_use(except_files=file_ids, except_runs=run_ids)
        if dry_run:
            counts = PurgeCounts(files=len(file_ids), export_runs=len(run_ids))
        else:
            counts = journal.purge(file_ids=file_ids, run_ids=run_ids)
        archive = archive_of(config)
        try:
            copies, freed = archive.remove_unreferenced(
                keep, untouched_for=ARCHIVE_GRACE, now=time.time(), dry_run=dry_run
            )
        finally:
            archive.close()
    finally:
        journal.close()
    return PurgeReport(before, dry_run, counts, copies, freed)

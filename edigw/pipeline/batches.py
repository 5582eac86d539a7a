"""A file's documents journalled in batches as they are mapped, never all held in memory.

A 200,000-line file makes 40,000 documents; holding them all (the mapped documents, their
journal rows, the statement's parameters) cost the gateway hundreds of megabytes. Instead the
mapped documents flow through, :data:`BATCH_SIZE` at a time: each batch is numbered, judged
(``already_done``, ``unchanged``) and journalled while the reader reads on. What the whole
file needs is kept small: a count per business key (occurrences) and a running tally.

The invariants of the intake hold:

- **nothing is due before the whole file is journalled**: the batches but the last are
  recorded with the file still ``received`` (:meth:`Journal.add_document_batch`, no head);
  the last one moves the file to ``parsed`` and gives it its heads (``edigw.journal.heads``:
  one, or one per business key), in one transaction. A file of one batch (most files) is
  one transaction, as before;
- **a reading cut short starts again from the beginning**: a crash or an error between two
  batches leaves the file ``received`` with part of its documents, never sent; the next
  reading drops them first (:meth:`Journal.discard_read_documents`) and journals the file
  afresh, under the same idempotency keys;
- **a file the reader gives up on midway fails as a whole**: what was journalled of it is
  dropped, then the file is failed with the reader's reason.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from edigw.journal.rows import DocumentCounts, DocumentRow, NewDocument
from edigw.journal.store import Journal
from edigw.model import MappedDocument
from edigw.pipeline.keys import occurrences

#: Documents journalled per transaction while a file is being read: large enough that a
#: file's transactions stay few (40,000 documents: 80), small enough to weigh little.
BATCH_SIZE = 500

#: The journal rows of one mapped document from ``seq`` on, given its key's ``occurrence``
#: in the file (``file_documents.chain_documents`` with the flow bound).
RowsOf = Callable[[int, MappedDocument, int], list[NewDocument]]


def numbered_rows(mapped: Iterable[MappedDocument], rows_of: RowsOf) -> Iterator[NewDocument]:
    """The journal rows of each mapped document, in file order, as they come: positions
    and business-key occurrences run across the whole file (a count per key is all that is
    kept), so that keys are the ones a whole-file reading gives."""
    seen: Counter[str] = Counter()
    seq = 1
    for doc in mapped:
        seen[doc.key] += 1
        rows = rows_of(seq, doc, seen[doc.key])
        seq += len(rows)
        yield from rows


def batched(rows: Iterable[NewDocument], size: int = BATCH_SIZE) -> Iterator[list[NewDocument]]:
    """``rows`` in lists of ``size`` (the last one shorter), never an empty one."""
    batch: list[NewDocument] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class DoneBefore:
    """What an earlier reading of the same source already sent, to mark ``done`` in this
    one (see ``file_documents.already_done``), batch after batch: the occurrence numbering
    runs across the batches given to :meth:`mark`, in file order."""

    def __init__(self, earlier: Sequence[DocumentRow], *, earlier_file: int) -> None:
        self.earlier_file = earlier_file
        self._done: dict[tuple[str, int, str, str], DocumentRow] = {}
        for doc, n in zip(earlier, occurrences(d.business_key for d in earlier), strict=True):
            if doc.state == "done":
                key = (doc.business_key, n, doc.operation, canonical(doc.payload))
                self._done.setdefault(key, doc)
        self._seen: Counter[str] = Counter()

    def mark(self, new_docs: Sequence[NewDocument]) -> list[NewDocument]:
        """``new_docs`` (the next ones of the file) with those already sent marked done."""
        result = []
        for new in new_docs:
            self._seen[new.business_key] += 1
            n = self._seen[new.business_key]
            match = (
                self._done.get((new.business_key, n, new.operation, canonical(new.payload)))
                if new.state == "pending"
                else None
            )
            if match is None:
                result.append(new)
                continue
            result.append(
                replace(
                    new,
                    state="done",
                    ecolix_status=match.ecolix_status,
                    ecolix_object_id=match.ecolix_object_id,
                    ecolix_response=match.ecolix_response,
                    note=f"already sent as D-{match.id} by F-{self.earlier_file}, an earlier "
                    "reading of this source",
                )
            )
        return result


def canonical(payload: Any) -> str:
    """A payload as one comparable string (keys sorted)."""
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class BatchWriter:
    """Journals one file's batches: all but the last as read so far, the last with the file
    ``parsed``. ``journalled`` tells what is in the journal so far, for the caller to drop
    when the reading fails midway."""

    def __init__(
        self, file_id: int, *, journal: Journal, now: datetime, reader: str | None
    ) -> None:
        self.file_id = file_id
        self.journal = journal
        self.now = now
        self.reader = reader
        self.journalled = DocumentCounts()

    def write(self, batches: Iterable[list[NewDocument]]) -> DocumentCounts:
        """Journal every batch (one is held back until the next comes, so that the last is
        known to be the last); returns the file's counts. An empty ``batches`` journals the
        file ``parsed`` with no document."""
        held: list[NewDocument] = []
        for batch in batches:
            if held:
                self.journal.add_document_batch(
                    self.file_id, held, now=self.now, reader=self.reader
                )
                self.journalled += DocumentCounts.of(held)
            held = batch
        self.journal.add_documents(
            self.file_id,
            held,
            now=self.now,
            reader=self.reader,
            journalled=self.journalled if self.journalled.documents else None,
        )
        self.journalled += DocumentCounts.of(held)
        return self.journalled

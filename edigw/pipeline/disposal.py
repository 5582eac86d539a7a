"""Disposing of an inbound flow's sources once their files are final, for the poller.

The second half of a flow's intake: once a file's outcome is final (its last document
sent, or the file failed), its source is moved, deleted or left as the flow says, after the
archived copy is made durable, and the journal records what the channel did. The poller that
took the file in holds its source until then; the mover calls :meth:`SourceDisposal.dispose`
again until it succeeds. With several nodes only the flow's leader touches a source.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from edigw.channels.base import (
    KEPT_CHANGED,
    ChannelActionResult,
    Disposition,
    InboundChannel,
    IncomingFile,
)
from edigw.journal.leases import SourceClaim
from edigw.journal.rows import FileRow
from edigw.journal.store import Journal
from edigw.logs import log_context
from edigw.pipeline.assembly import InboundRuntime, Parts
from edigw.pipeline.inbound import FINAL_FILE_STATES
from edigw.pipeline.signals import Signals
from edigw.pipeline.tidy import clear_error_copy

#: The gateway's loops all log as ``edigw.runtime``, whichever module holds them.
log = logging.getLogger("edigw.runtime")

#: What ``SourceDisposal._dispose`` returns for a source it left to the node leading the flow.
_LEFT = ChannelActionResult(ok=True, action="left to the leader")


def disposition_of(journal: Journal, row: FileRow) -> Disposition:
    """What to tell the channel about a file whose outcome is final."""
    file_id = row.id
    show = f"F-{file_id}"
    if row.state in ("done", "skipped_duplicate"):
        return Disposition(ok=True, reason=row.error or "", show_id=show)
    reason = row.error or ""
    failed = [d for d in journal.documents_of(file_id) if d.state == "failed"]
    if failed:
        details = "\n".join(f"D-{d.id} {d.business_key}: {d.error}" for d in failed)
        reason = f"{reason}\n{details}".strip()
    if row.state == "partially_failed":
        reason = f"some documents failed (the others were sent):\n{reason}"
    return Disposition(ok=False, reason=reason, show_id=show)


class SourceDisposal:
    """The disposal of the sources a ``FlowPoller`` holds (``edigw.pipeline.poller``), which
    keeps the state named here: the files held, what a channel did that the journal has not
    recorded yet, and the sources that changed after they were read."""

    runtime: InboundRuntime
    parts: Parts
    signals: Signals
    clock: Callable[[], datetime]
    #: file id -> its source, held until the file is final and the source disposed of
    pending: dict[int, IncomingFile]
    _lock: threading.Lock
    _unrecorded: dict[int, ChannelActionResult]
    _lineage: dict[str, int] | None

    def _dispose_or_later(self, file_id: int) -> None:
        """Dispose of a final file's source now, or leave it to the mover to try again."""
        try:
            self.dispose(file_id)
        except Exception as exc:  # the mover tries again until it works
            log.error(
                "flow %s: F-%d: %s; tried again shortly",
                self.runtime.context.id,
                file_id,
                exc,
                extra={"file": f"F-{file_id}"},
            )
            self.signals.finished_files.put(file_id)

    def dispose(self, file_id: int) -> None:
        """Move/delete/leave the source of a final file, and journal what happened.

        A ``parsed`` file whose documents are all finished is settled first (its last
        document's sender could not); one still sending is left for its last document to
        announce. Raises when the journal or the archive failed: the file stays held, with
        what the channel already did to its source, for another try. Nothing to do for a
        file this poller does not hold.
        """
        with self._lock:
            incoming = self.pending.pop(file_id, None)
        channel = self.runtime.channel
        if incoming is None or channel is None:
            return
        if not self.signals.leader.holds(self.runtime.context.id):
            self._leave_to_leader(file_id, incoming, channel)
            return
        with log_context(flow=self.runtime.context.id, file=f"F-{file_id}"):
            try:
                result = self._dispose(file_id, incoming, channel)
            except BaseException:
                with self._lock:
                    self.pending[file_id] = incoming
                raise
        if result is None:  # not finished yet
            with self._lock:
                self.pending[file_id] = incoming

    def _leave_to_leader(
        self, file_id: int, incoming: IncomingFile, channel: InboundChannel
    ) -> None:
        """Another node leads the flow now: its poller takes the source again (the journal
        resumes the file) and disposes of it; this node never touches it."""
        channel.release(incoming)
        log.info(
            "flow %s: F-%d left to the node that leads the flow now",
            self.runtime.context.id,
            file_id,
            extra={"file": f"F-{file_id}"},
        )

    def _dispose(
        self, file_id: int, incoming: IncomingFile, channel: InboundChannel
    ) -> ChannelActionResult | None:
        journal = self.parts.journal
        pending = incoming
        result = self._unrecorded.get(file_id)
        if result is None:
            row = journal.file(file_id)
            if row.state not in FINAL_FILE_STATES:
                finished = row.state == "parsed" and journal.finish_file_if_complete(
                    file_id, now=self.clock()
                )
                if not finished:
                    return None
                row = journal.file(file_id)
            if row.sha256:
                self.parts.archive.make_durable(row.sha256)
                # what was read, for the channel to check that the source still holds it
                incoming = replace(incoming, size=row.size, sha256=row.sha256)
            if not self.signals.leader.holds(self.runtime.context.id):
                # lost while the archive's fsyncs ran (a busy disk may take seconds): the
                # leader may have taken the source in by now; it disposes of it
                self._leave_to_leader(file_id, pending, channel)
                return _LEFT
            result = channel.complete(incoming, disposition_of(journal, row))
            self._unrecorded[file_id] = result
        journal.record_channel_action(
            file_id,
            action=result.action,
            ok=result.ok,
            error=None if result.ok else result.detail,
            detail=result.detail if result.ok else None,
            now=self.clock(),
            target=result.target,
            # the source is disposed of: its claim is history, forgotten with the record
            claim=self._claim_of(pending) if self.signals.leader.shared else None,
        )
        del self._unrecorded[file_id]
        ctx = self.runtime.context
        if result.action == KEPT_CHANGED:
            if self._lineage is not None:
                self._lineage[incoming.remote_path] = file_id
            log.warning(
                "flow %s: F-%d %s: %s; left in place, taken again as a new reception once "
                "ready (what F-%d already sent is not sent again)",
                ctx.id,
                file_id,
                incoming.name,
                result.detail,
                file_id,
            )
        elif not result.ok:
            log.error("flow %s: F-%d: %s failed: %s", ctx.id, file_id, result.action, result.detail)
        return result

    def _claim_of(self, incoming: IncomingFile) -> SourceClaim:
        """This node's claim on the source version it took in (one left behind by a failure
        is harmless: a later leader's claim wins over it)."""
        return SourceClaim(
            flow=self.runtime.context.id,
            path=incoming.remote_path,
            size=incoming.size,
            mtime=incoming.mtime,
            node=self.parts.node,
        )

    def clear_error(self, row: FileRow) -> None:
        """A file of this flow that failed earlier is done now (a replay queued its
        documents again): put away the copy its failure left in the error folder."""
        channel = self.runtime.channel
        if channel is not None:
            with log_context(flow=self.runtime.context.id, file=row.ref):
                clear_error_copy(self.parts.journal, channel, row, now=self.clock())

"""Export fencing: a run delivers only while its node leads the flow, as the journal says.

On a node among several (a PostgreSQL journal) the export scheduler starts a flow's run only
while this node holds the flow's lease (``edigw.pipeline.leadership``). A run may end long
after it began (a slow listing, a call budget to wait for), and a node may be paused (GC,
SIGSTOP, an overloaded VM) for longer than its lease between its last renewal and its
delivery: its own view of the lease then still says it leads, while another node has taken
the flow over and may export the same records. So the delivery is fenced twice:

1. ``fence()``, the node's own view (no round trip): a run that knows it lost the flow
   stops there;
2. the delivery record (``Journal.record_export_delivery``, written before the partner's
   file) is written only if the flow's lease in the journal is still this node's, under the
   run's epoch and not expired, asked in the same transaction by one statement that
   share-locks the lease row (``edigw.journal.leases.still_held``). A takeover waits for that
   transaction: the new leader then finds the record pending and completes it
   (``edigw.outbound.pending``) instead of exporting its records again. However long the
   node was paused before or between the two steps, a record is never written once the
   flow is another node's.

Fenced out at either step: nothing is delivered, the mark stays, the run is journalled failed
("another node leads it now") and :class:`LeadershipLost` is raised (the scheduler logs it
as a warning).

What remains unfenced: the write on the partner's side. A plain folder or an SFTP server
takes no fence token, so a node paused after its record committed, before or while it writes
the file, may write it after the lease passed to another node. That node, finding the
record pending, looks for the file at the partner's: there, it only completes the journal;
missing, it delivers the archived bytes under the same name. The paused node waking then
writes the same bytes under the same name again (with ``if_exists: rename``, a numbered
copy): a partner that took the first copy away in between gets the file twice. The window
is the time from the record's commit to the end of the file write, not closed, only kept as
short as the write itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edigw.errors import EdigwError
from edigw.journal.errors import FlowLeaseLostError
from edigw.journal.leases import HeldLease

if TYPE_CHECKING:
    from edigw.outbound.flow import ExportFlow


class LeadershipLost(EdigwError):
    """Another node leads the export flow now (several nodes): this node delivers nothing
    more of the run. The mark did not move, so the new leader's run exports the records."""


@dataclass(frozen=True, slots=True)
class LeaseFence:
    """The fence of a run on a node among several: the node's own view of its lease
    (called), and the lease in the journal that the delivery record is conditional on."""

    leads: Callable[[], bool]
    lease: HeldLease

    def __call__(self) -> bool:
        return self.leads()


def _lost(spec: ExportFlow) -> str:
    return (
        f"export {spec.partner}/{spec.flow}: another node leads it now; this run "
        "delivers nothing (its records go in that node's next run)"
    )


def check_fence(fence: Callable[[], bool] | None, spec: ExportFlow) -> None:
    """Raise :class:`LeadershipLost` unless this node still leads the flow in its own view
    (``fence``, given by the scheduler of a node among several)."""
    if fence is not None and not fence():
        raise LeadershipLost(_lost(spec))


def record_delivery(
    journal: Any,
    fence: Callable[[], bool] | None,
    spec: ExportFlow,
    run_id: int | None,
    **delivery: Any,
) -> None:
    """Journal the delivery about to be made (``Journal.record_export_delivery``) if this
    node still leads the flow: asked of its own view, then, with a :class:`LeaseFence`, of
    the journal in the transaction that writes the record. :class:`LeadershipLost` when
    not; nothing is recorded then."""
    check_fence(fence, spec)
    if isinstance(fence, LeaseFence):
        delivery["lease"] = fence.lease
    try:
        journal.record_export_delivery(run_id, **delivery)
    except FlowLeaseLostError as exc:
        msg = f"{_lost(spec)}: {exc}"
        raise LeadershipLost(msg) from exc

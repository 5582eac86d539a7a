"""Claims on source files, made before a file is touched, when several nodes share a journal.

Only the node leading a flow takes its files in, and only once the journal holds its claim
on that version of the source (``file_claims``): a later leader's claim wins over an
earlier one's, so a node that lost the flow never touches a file the next leader took. A
poll claims its files together, in one statement, before it takes the first one in; a file
it did not claim that way (a poll of one file, a journal that failed, an epoch that changed
since) is claimed on its own as it is taken.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from edigw.channels.base import IncomingFile
from edigw.errors import EdigwError
from edigw.journal import Journal
from edigw.pipeline.leadership import Leadership

log = logging.getLogger("edigw.pipeline")


@dataclass(frozen=True, slots=True)
class PollClaims:
    """The claims a poll made together: the epoch it led the flow with, and the source
    versions (path, size, mtime) the journal gave it."""

    epoch: int
    versions: set[tuple[str, int, float]]


def claim_poll(
    leader: Leadership, *, flow: str, journal: Journal, node: str, listed: list[IncomingFile]
) -> PollClaims | None:
    """The claims on a poll's files, made in one statement (each file's own claim would be a
    round trip on the intake's path). None when there is nothing to claim together (one
    node, one file, the flow not led) or the journal failed."""
    epoch = leader.epoch(flow)
    if not leader.shared or epoch is None or len(listed) < 2:
        return None
    try:
        versions = journal.claim_files(
            flow=flow,
            versions=[(f.remote_path, f.size, f.mtime) for f in listed],
            node=node,
            epoch=epoch,
        )
    except EdigwError as exc:
        log.warning("flow %s: the poll's files could not be claimed together: %s", flow, exc)
        return None
    return PollClaims(epoch, versions)


def may_take(
    leader: Leadership,
    *,
    flow: str,
    journal: Journal,
    node: str,
    incoming: IncomingFile,
    claims: PollClaims | None,
) -> bool:
    """May this node take ``incoming`` in? Only while it leads the flow; with several nodes,
    only once the journal holds its claim (the poll's, made under the epoch this node still
    leads with, or the file's own, made here). A lost claim means another node leads the
    flow now: this one gives the flow up (``leader.lost``) and stops acting on it."""
    epoch = leader.epoch(flow)
    if epoch is None:
        return False
    if not leader.shared:
        return True
    if claims is not None and claims.epoch == epoch:
        claimed = (incoming.remote_path, incoming.size, incoming.mtime) in claims.versions
    else:
        claimed = journal.claim_file(
            flow=flow,
            path=incoming.remote_path,
            size=incoming.size,
            mtime=incoming.mtime,
            node=node,
            epoch=epoch,
        )
    if not claimed:
        log.info("flow %s: %s claimed by another node", flow, incoming.name)
        leader.lost(flow)
    return claimed

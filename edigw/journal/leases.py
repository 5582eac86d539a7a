"""Leadership and file claims among several nodes on one PostgreSQL journal: the SQL.

Each statement that decides who may act is *one* statement, so two nodes can never both win:

* a flow's lease is taken or renewed by one ``INSERT ... ON CONFLICT (flow) DO UPDATE ...
  WHERE the lease has expired OR is mine ... RETURNING epoch``: a row back means the lease
  is held until ``now() + ttl``; none means another node holds it. The ``epoch`` grows each
  time the lease is taken anew (by another node, or by the same one after it lapsed);
* a source file version is claimed by ``INSERT ... ON CONFLICT (flow, path, size, mtime) DO
  UPDATE ... WHERE the claim is mine OR was made under an older epoch ... RETURNING``: the
  current leader always wins over a claim left by an earlier one, and an earlier leader that
  has not noticed yet that it lost the flow never wins over the current one.

Every time here is the database's ``now()``, never a node's clock, so nodes whose clocks
disagree still agree on who leads. These statements are PostgreSQL's (a SQLite journal has one
node, which leads every flow without asking: ``edigw.pipeline.leadership``). The functions
take a connection inside a transaction; ``Journal`` opens it and translates errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Float,
    String,
    Text,
    bindparam,
    case,
    delete,
    func,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import NullType

from edigw.journal.prepared import Prepared
from edigw.journal.schema import (
    UNFINISHED_DOC_STATES,
    documents,
    file_claims,
    flow_leases,
    nodes,
)

#: Seconds after which the row of a node not seen is deleted (it ended long ago).
FORGET_AFTER = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class SourceClaim:
    """A node's claim on one version of a source file (``file_claims``), as the node that
    disposed of the source forgets it."""

    flow: str
    path: str
    size: int
    mtime: float
    node: str

    def params(self) -> dict[str, Any]:
        """The claim as the parameters of the statements that forget it, named ``claim_*``."""
        return {
            "claim_flow": self.flow,
            "claim_path": self.path,
            "claim_size": self.size,
            "claim_mtime": self.mtime,
            "claim_node": self.node,
        }


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """One flow's lease as the journal has it; ``expired`` by the database's clock."""

    flow: str
    holder: str
    epoch: int
    expired: bool
    #: When its holder took it (a takeover's moment, on the database's clock).
    acquired_at: datetime


@dataclass(frozen=True, slots=True)
class HeldLease:
    """A flow's lease as one node believes it holds it: what a fenced journal write is
    conditional on (``edigw.outbound.fence``)."""

    flow: str
    node: str
    epoch: int


def _seconds(ttl: float) -> timedelta:
    return timedelta(seconds=ttl)


def heartbeat(conn: Connection, node: str, *, ttl: float) -> int:
    """Say ``node`` is alive; the number of live nodes (seen within ``ttl``), itself included."""
    statement = postgresql.insert(nodes).values(
        node=node, started_at=func.now(), seen_at=func.now()
    )
    conn.execute(
        statement.on_conflict_do_update(index_elements=[nodes.c.node], set_={"seen_at": func.now()})
    )
    forget_dead_nodes(conn, older_than=max(FORGET_AFTER, 10 * ttl))
    live = select(func.count()).where(nodes.c.seen_at > func.now() - _seconds(ttl))
    return int(conn.execute(live).scalar_one())


def leave(conn: Connection, node: str, *, claims_until: datetime) -> int:
    """``node`` stops: no longer counted live, its leases free at once for the others, and
    its claims on unfinished documents (a call still in flight when its stop timeout ran
    out) end at ``claims_until`` at the latest; how many were shortened.

    Its row goes, so the others would never find those claims among a dead node's
    (``dead_nodes``): left alone, they would wait out their document lease (minutes).
    ``claims_until`` (the stopping node's clock, like the claims) gives a call in flight
    the time a dead node's gets; the others then send the document again under its
    idempotency key, which Ecolix answers with the first call's result if it was made."""
    t = documents.c
    shortened = conn.execute(
        update(documents)
        .where(
            t.claimed_by == node,
            t.claimed_until > claims_until,
            t.state.in_([str(s) for s in UNFINISHED_DOC_STATES]),
        )
        .values(claimed_until=claims_until)
    ).rowcount
    conn.execute(delete(nodes).where(nodes.c.node == node))
    conn.execute(
        update(flow_leases)
        .where(flow_leases.c.holder == node)
        .values(expires_at=func.now() - _seconds(1))
    )
    return shortened or 0


def dead_nodes(conn: Connection, *, ttl: float) -> list[str]:
    """Nodes whose heartbeat is older than ``ttl`` (killed, or cut off from the database)."""
    query = select(nodes.c.node).where(nodes.c.seen_at <= func.now() - _seconds(ttl))
    return list(conn.execute(query).scalars())


@dataclass(frozen=True, slots=True)
class NodeRow:
    """A gateway process the journal has heard from; ``alive`` by the database's clock."""

    node: str
    started_at: datetime
    seen_at: datetime
    alive: bool


def node_rows(conn: Connection, *, ttl: float) -> list[NodeRow]:
    """Every node with a row, oldest first; ``alive``: seen within ``ttl`` seconds."""
    t = nodes.c
    alive = (t.seen_at > func.now() - _seconds(ttl)).label("alive")
    query = select(t.node, t.started_at, t.seen_at, alive).order_by(t.started_at, t.node)
    return [
        NodeRow(m["node"], m["started_at"], m["seen_at"], bool(m["alive"]))
        for m in conn.execute(query).mappings()
    ]


def forget_nodes(conn: Connection, names: Sequence[str]) -> int:
    """Delete these nodes' rows (an operator forgetting a node retired for good)."""
    return conn.execute(delete(nodes).where(nodes.c.node.in_(list(names)))).rowcount or 0


def forget_dead_nodes(conn: Connection, *, older_than: float) -> int:
    """Delete the rows of nodes not seen for ``older_than`` seconds (they ended long ago)."""
    result = conn.execute(delete(nodes).where(nodes.c.seen_at < func.now() - _seconds(older_than)))
    return result.rowcount or 0


def leases(conn: Connection, flows: list[str]) -> dict[str, LeaseRow]:
    """The leases of ``flows`` that exist (a flow never led has none)."""
    query = select(
        flow_leases.c.flow,
        flow_leases.c.holder,
        flow_leases.c.epoch,
        (flow_leases.c.expires_at < func.now()).label("expired"),
        flow_leases.c.acquired_at,
    ).where(flow_leases.c.flow.in_(flows))
    return {
        m["flow"]: LeaseRow(
            m["flow"], m["holder"], int(m["epoch"]), bool(m["expired"]), m["acquired_at"]
        )
        for m in conn.execute(query).mappings()
    }


def take(conn: Connection, flow: str, node: str, *, ttl: float) -> int | None:
    """Take or renew ``flow``'s lease for ``ttl`` seconds: its epoch, or ``None`` when another
    node holds it. Renewing an unexpired lease keeps its epoch; anything else makes a new one."""
    leases_now = flow_leases
    statement = postgresql.insert(flow_leases).values(
        flow=flow,
        holder=node,
        epoch=1,
        expires_at=func.now() + _seconds(ttl),
        acquired_at=func.now(),
    )
    kept = (leases_now.c.holder == statement.excluded.holder) & (
        leases_now.c.expires_at >= func.now()
    )
    upsert = statement.on_conflict_do_update(
        index_elements=[flow_leases.c.flow],
        set_={
            "holder": statement.excluded.holder,
            "epoch": case((kept, leases_now.c.epoch), else_=leases_now.c.epoch + 1),
            "acquired_at": case((kept, leases_now.c.acquired_at), else_=func.now()),
            "expires_at": statement.excluded.expires_at,
        },
        where=(leases_now.c.expires_at < func.now())
        | (leases_now.c.holder == statement.excluded.holder),
    ).returning(flow_leases.c.epoch)
    epoch = conn.execute(upsert).scalar()
    return None if epoch is None else int(epoch)


def still_held(conn: Connection, lease: HeldLease) -> bool:
    """Whether ``lease`` is the flow's lease in the journal now: held by that node, under that
    epoch, not expired (the database's clock). One statement, which also *share-locks* the
    lease row until the caller's transaction ends: a takeover (``take``, an update of the row)
    waits for that transaction, so what the caller writes in it under the lease is committed
    before another node can lead the flow, and that node sees it (a pending export delivery,
    ``edigw.outbound.pending``). A PostgreSQL lock; a SQLite journal has one node and
    serialises its writes anyway."""
    t = flow_leases.c
    query = (
        select(t.epoch)
        .where(
            t.flow == lease.flow,
            t.holder == lease.node,
            t.epoch == lease.epoch,
            t.expires_at > func.now(),
        )
        .with_for_update(read=True)
    )
    return conn.execute(query).first() is not None


def let_go(conn: Connection, flow: str, node: str, *, after: float) -> None:
    """Give ``flow`` up: another node may take it ``after`` seconds from now (time for what
    this node began on the flow to end), unless this node renews it first."""
    conn.execute(
        update(flow_leases)
        .where(flow_leases.c.flow == flow, flow_leases.c.holder == node)
        .values(expires_at=func.now() + _seconds(after))
    )


def _unless_claimed_later(statement: Any) -> Any:
    """A claim's insert that takes a version over only from an older epoch, or keeps it for
    the same node and epoch: a later leader's claim is never overwritten."""
    return statement.on_conflict_do_update(
        index_elements=[
            file_claims.c.flow,
            file_claims.c.path,
            file_claims.c.size,
            file_claims.c.mtime,
        ],
        set_={
            "holder": statement.excluded.holder,
            "epoch": statement.excluded.epoch,
            "claimed_at": statement.excluded.claimed_at,
        },
        where=(file_claims.c.epoch < statement.excluded.epoch)
        | (
            (file_claims.c.holder == statement.excluded.holder)
            & (file_claims.c.epoch == statement.excluded.epoch)
        ),
    )


def _claim_file_statement() -> Any:
    statement = postgresql.insert(file_claims).values(
        flow=bindparam("flow"),
        path=bindparam("path"),
        size=bindparam("size"),
        mtime=bindparam("mtime"),
        holder=bindparam("node"),
        epoch=bindparam("epoch"),
        claimed_at=func.now(),
    )
    return _unless_claimed_later(statement).returning(file_claims.c.epoch)


def _claim_files_statement() -> Any:
    """``_claim_file_statement`` for several versions of the flow's sources at once, given
    as arrays; returns the versions claimed."""
    versions = (
        func.unnest(
            bindparam("paths", type_=postgresql.ARRAY(Text())),
            bindparam("sizes", type_=postgresql.ARRAY(BigInteger())),
            bindparam("mtimes", type_=postgresql.ARRAY(Float())),
        )
        .table_valued("path", "size", "mtime")
        .render_derived()
        .alias("version")
    )
    statement = postgresql.insert(file_claims).from_select(
        ["flow", "path", "size", "mtime", "holder", "epoch", "claimed_at"],
        select(
            bindparam("flow", type_=String()),
            versions.c.path,
            versions.c.size,
            versions.c.mtime,
            bindparam("node", type_=String()),
            bindparam("epoch", type_=BigInteger()),
            func.now(),
        ),
    )
    return _unless_claimed_later(statement).returning(
        file_claims.c.path,
        file_claims.c.size,
        # as the driver reads it (a float8): SQLAlchemy's Float wants the column's type code
        type_coerce(file_claims.c.mtime, NullType()).label("mtime"),
    )


# Built once: a file's claim and its end are on every file's path (values as parameters).
_CLAIM_FILE = Prepared(_claim_file_statement())
_CLAIM_FILES = Prepared(_claim_files_statement())
#: Forgetting a claim (``SourceClaim.params``); also a part of PostgreSQL's merged record of
#: a source's disposal (``MergedStatements.channel_action_told_forgetting``).
DROP_FILE_CLAIM = delete(file_claims).where(
    file_claims.c.flow == bindparam("claim_flow"),
    file_claims.c.path == bindparam("claim_path"),
    file_claims.c.size == bindparam("claim_size"),
    file_claims.c.mtime == bindparam("claim_mtime"),
    file_claims.c.holder == bindparam("claim_node"),
)
_DROP_FILE_CLAIM = Prepared(DROP_FILE_CLAIM)


def claim_file(
    conn: Connection, *, flow: str, path: str, size: int, mtime: float, node: str, epoch: int
) -> bool:
    """Claim a source file version for ``node`` leading ``flow`` under ``epoch``; ``False``
    when a leader of a later epoch (or of the same epoch on another node) claimed it.
    One statement: the caller needs no transaction around it."""
    params = {"flow": flow, "path": path, "size": size, "mtime": mtime, "node": node}
    return conn.execute(_CLAIM_FILE, {**params, "epoch": epoch}).first() is not None


def claim_files(
    conn: Connection,
    *,
    flow: str,
    versions: Sequence[tuple[str, int, float]],
    node: str,
    epoch: int,
) -> set[tuple[str, int, float]]:
    """:func:`claim_file` for several source versions (path, size, mtime) in one statement;
    returns those claimed. One statement: the caller needs no transaction around it."""
    unique = list(dict.fromkeys(versions))  # a row may be claimed once per statement
    if not unique:
        return set()
    params = {
        "flow": flow,
        "node": node,
        "epoch": epoch,
        "paths": [path for path, _size, _mtime in unique],
        "sizes": [size for _path, size, _mtime in unique],
        "mtimes": [mtime for _path, _size, mtime in unique],
    }
    return {(row[0], int(row[1]), float(row[2])) for row in conn.execute(_CLAIM_FILES, params)}


def drop_file_claim(
    conn: Connection, *, flow: str, path: str, size: int, mtime: float, node: str
) -> None:
    """Forget ``node``'s claim once the source was disposed of (another's stays); one
    statement."""
    conn.execute(_DROP_FILE_CLAIM, SourceClaim(flow, path, size, mtime, node).params())

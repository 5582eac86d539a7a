"""A new file recorded in one turn at the journal (``Journal.add_file_if_new``), on both
databases: what it writes for the usual new file, and every case it leaves to the look
before ``add_file``."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from typing import Any

from edigw.journal import Journal

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CHANNEL = "local:inbox/webshop/orders"
_hashes = count(1)


def received(name: str = "orders-0302.csv", **overrides: Any) -> dict[str, Any]:
    sha = f"{next(_hashes):064x}"
    values: dict[str, Any] = {
        "partner": "webshop",
        "flow": "orders",
        "channel": CHANNEL,
        "original_name": name,
        "source_path": f"/srv/inbox/webshop/orders/{name}",
        "size": 1234,
        "sha256": sha,
        "archive_path": f"/data/archive/{sha}",
        "now": T0,
    }
    values.update(overrides)
    return values


def test_a_new_file_is_recorded_received_with_its_reader_and_its_event(journal: Journal) -> None:
    values = received()
    file_id = journal.add_file_if_new(**values, reader="gw:12:34", ordered=False)

    assert file_id is not None
    row = journal.file(file_id)
    assert (row.state, row.reader, row.sha256, row.size) == (
        "received",
        "gw:12:34",
        values["sha256"],
        1234,
    )
    assert (row.original_name, row.source_path, row.channel) == (
        "orders-0302.csv",
        "/srv/inbox/webshop/orders/orders-0302.csv",
        CHANNEL,
    )
    assert row.received_at == T0
    [event] = journal.events_of(file_id)
    assert (event.kind, event.detail) == (
        "received",
        f"orders-0302.csv (1234 bytes, sha256 {values['sha256']}) from {CHANNEL}",
    )


def test_it_records_what_add_file_records(journal: Journal) -> None:
    fast = journal.file(journal.add_file_if_new(**received("a.csv"), ordered=False) or 0)
    usual = journal.file(journal.add_file(**received("a.csv"), ordered=False))

    def same(row: Any) -> tuple[Any, ...]:
        return (row.partner, row.flow, row.channel, row.original_name, row.state, row.reader)

    assert same(fast) == same(usual)
    assert [e.kind for e in journal.events_of(fast.id)] == [
        e.kind for e in journal.events_of(usual.id)
    ]


def test_bytes_the_flow_already_has_are_left_to_the_look(journal: Journal) -> None:
    first = received()
    journal.add_file(**first)
    again = {**received("renamed.csv"), "sha256": first["sha256"]}

    assert journal.add_file_if_new(**again) is None
    assert (
        len(journal.files_with_content(partner="webshop", flow="orders", sha256=again["sha256"]))
        == 1
    )


def test_the_same_bytes_in_another_flow_are_a_new_file(journal: Journal) -> None:
    first = received()
    journal.add_file(**first)

    elsewhere = {**received(), "flow": "invoices", "sha256": first["sha256"]}
    assert journal.add_file_if_new(**elsewhere) is not None


def test_a_name_whose_transfer_was_cut_is_left_to_add_file_which_resolves_it(
    journal: Journal,
) -> None:
    cut = journal.add_file(**received("big.bin", sha256="", size=0, archive_path=""))
    journal.set_file_state(cut, "failed", now=T0, error="big.bin: download failed")

    assert journal.add_file_if_new(**received("big.bin")) is None
    assert journal.file(cut).state == "failed"  # nothing written
    journal.add_file(**received("big.bin"))
    assert journal.file(cut).state == "superseded"


def test_a_file_without_its_bytes_hashed_is_left_to_add_file(journal: Journal) -> None:
    assert journal.add_file_if_new(**received(sha256="")) is None
    assert journal.files() == []


def test_nothing_is_written_when_it_declines(journal: Journal) -> None:
    first = received()
    file_id = journal.add_file(**first)
    before = journal.events_of(file_id)

    assert journal.add_file_if_new(**{**received(), "sha256": first["sha256"]}) is None
    assert [f.id for f in journal.files()] == [file_id]
    assert journal.events_of(file_id) == before


def test_the_look_for_a_known_reception_seeks_by_bytes_not_through_the_whole_flow(
    journal: Journal,
) -> None:
    """Whether a file may not be new is two seeks in (partner, flow, sha256): it must not
    read every file the flow ever received, once per new file (a drop of N files would read
    N²/2 rows)."""
    for n in range(300):
        journal.add_file_if_new(**received(f"orders-{n:04d}.csv"))
    statement = journal._sql.reception_known.statement
    values = received("new.csv")
    params = {k: values[k] for k in ("partner", "flow", "sha256", "channel", "original_name")}

    with journal._engine.connect() as conn:
        compiled = statement.compile(dialect=conn.dialect)
        sql, bound = str(compiled), compiled.construct_params(params)
        if conn.dialect.name == "postgresql":
            plan = [r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE) " + sql, bound)]
            removed = [int(line.rsplit(":", 1)[1]) for line in plan if "Rows Removed" in line]
            assert not any("Seq Scan on files" in line for line in plan), plan
            assert sum(removed) == 0, plan
        else:
            positional = tuple(bound[name] for name in compiled.positiontup or ())
            plan = [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, positional)]
            searches = [line for line in plan if line.startswith(("SEARCH files", "SCAN files"))]
            assert searches and all("sha256=?" in line for line in searches), plan

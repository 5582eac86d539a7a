"""Nothing stays in the inbox until a restart: each case recovers on its own at the next poll,
through a running gateway; a second gateway on the same SQLite journal is refused at start."""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from edigw.ecolix.client import EcolixClient
from edigw.journal import Journal
from edigw.pipeline.assembly import open_parts
from edigw.pipeline.gateway_status import gateway_status
from edigw.pipeline.mover import mover_loop
from edigw.pipeline.poller import FlowPoller
from edigw.pipeline.senders import send_due
from edigw.pipeline.signals import Signals, utc_now
from tests.fixtures.gateway import (
    files_final,
    inbound_flow,
    running_gateway,
    wait_until,
    write_workspace,
)
from tests.support.orderfiles import OrderFactory, write_order_files
from tests.support.readonly import make_read_only, make_writable

ORDERS_MAPPING = "ecommerce-orders-csv.yaml"


@pytest.fixture
def ecolix(sandbox_factory: Any) -> Any:
    return sandbox_factory()


def orders_workspace(root: Path, ecolix: Any, *, journal: str | None = None) -> Any:
    return write_workspace(
        root,
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={"webshop": {"orders": inbound_flow(ORDERS_MAPPING, "webshop", "orders")}},
        journal=journal,
    )


def sandbox_refs(sandbox: Any, prefix: str) -> list[str]:
    with EcolixClient(sandbox.base_url, sandbox.token) as client:
        return sorted(
            str(o["external_reference"])
            for o in client.iter_list("orders.list")
            if str(o.get("external_reference", "")).startswith(prefix)
        )


def csv_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.csv"))


def write_orders(path: Path, numbers: list[str]) -> None:
    OrderFactory.from_seed().write_file(path, numbers, random.Random(3))


@contextmanager
def database(url: str) -> Iterator[Callable[[str], None]]:
    """Run SQL on the journal's database beside the gateway (a DBA's session)."""
    engine = create_engine(url)
    try:

        def run(statement: str) -> None:
            with engine.begin() as conn:
                conn.execute(text(statement))

        yield run
    finally:
        engine.dispose()


def refuse_when(run: Callable[[str], None], url: str, *, name: str, event: str, when: str) -> None:
    """A trigger that makes the journal refuse a write ``when`` (SQL on NEW) holds."""
    message = f"refused by the test trigger {name}"
    if make_url(url).get_backend_name() == "sqlite":
        run(
            f"CREATE TRIGGER {name} {event} FOR EACH ROW WHEN {when} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )
        return
    run(
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF {when} THEN "
        f"RAISE EXCEPTION '{message}' USING ERRCODE = 'character_not_in_repertoire'; "
        "END IF; RETURN NEW; END $$"
    )
    run(f"CREATE TRIGGER {name} {event} FOR EACH ROW EXECUTE FUNCTION {name}()")


def test_the_same_bytes_under_two_names_in_one_poll_are_both_disposed_of(
    tmp_path: Path, ecolix: Any
) -> None:
    ws = orders_workspace(tmp_path / "gw", ecolix)
    inbox = ws.inbox("webshop", "orders")
    numbers = write_order_files(inbox, files=1, orders_per_file=2, prefix="TWIN")
    [first] = inbox.glob("*.csv")
    shutil.copy2(first, inbox / "copy-of-the-orders.csv")  # same bytes, same mtime: one poll
    with running_gateway(ws) as parts:
        wait_until(files_final(parts, 2), what="both files final")
        wait_until(lambda: csv_files(inbox) == [], what="both sources moved")
        rows = parts.journal.files()
    assert sorted(r.state for r in rows) == ["done", "skipped_duplicate"]
    assert csv_files(inbox / "done") == sorted([first.name, "copy-of-the-orders.csv"])
    assert sandbox_refs(ecolix, "TWIN") == sorted(numbers)


def test_a_journal_error_when_a_file_is_finished_is_recovered_without_a_restart(
    tmp_path: Path, ecolix: Any, journal_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    ws = orders_workspace(tmp_path / "gw", ecolix, journal=journal_url)
    Journal.open(journal_url).close()
    inbox = ws.inbox("webshop", "orders")
    with database(journal_url) as run:
        run("CREATE TABLE hold_finish (x INTEGER)")
        run("INSERT INTO hold_finish VALUES (1)")
        refuse_when(
            run,
            journal_url,
            name="refuse_finish",
            event="BEFORE UPDATE OF state ON files",
            when="NEW.state = 'done' AND EXISTS (SELECT 1 FROM hold_finish)",
        )
        numbers = write_order_files(inbox, files=1, orders_per_file=2, prefix="FIN")
        with caplog.at_level(logging.ERROR), running_gateway(ws) as parts:
            wait_until(lambda: "refuse_finish" in caplog.text, what="finishing the file refused")
            [row] = parts.journal.files()
            assert {d.state for d in parts.journal.documents_of(row.id)} == {"done"}
            assert parts.journal.file(row.id).state == "parsed"
            run("DELETE FROM hold_finish")  # the journal works again
            wait_until(files_final(parts, 1), what="the file finished")
            wait_until(lambda: csv_files(inbox) == [], what="its source moved")
            assert parts.journal.file(row.id).state == "done"
    assert sandbox_refs(ecolix, "FIN") == sorted(numbers)


def test_a_journal_read_only_at_start_takes_files_in_once_it_is_writable(
    tmp_path: Path, ecolix: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ws = orders_workspace(tmp_path / "gw", ecolix)
    ws.journal().close()
    journal_file = Path(make_url(ws.load().journal_url).database or "")
    inbox = ws.inbox("webshop", "orders")
    numbers = write_order_files(inbox, files=1, orders_per_file=2, prefix="RO")
    make_read_only(journal_file)
    try:
        with caplog.at_level(logging.ERROR), running_gateway(ws) as parts:
            wait_until(lambda: "readonly database" in caplog.text, what="the journal refusing")
            make_writable(journal_file)
            wait_until(files_final(parts, 1), what="the file taken in and done")
            wait_until(lambda: csv_files(inbox) == [], what="its source moved")
            [row] = parts.journal.files()
    finally:
        make_writable(journal_file)
    assert row.state == "done"
    assert sandbox_refs(ecolix, "RO") == sorted(numbers)


def test_a_second_gateway_on_the_same_sqlite_journal_is_refused_at_start(
    tmp_path: Path,
) -> None:
    ws = write_workspace(
        tmp_path / "gw",
        base_url="http://127.0.0.1:9/api/v1",
        token="t",
        flows={"webshop": {"orders": inbound_flow(ORDERS_MAPPING, "webshop", "orders")}},
    )
    command = [sys.executable, "-m", "edigw.cli", "run", "-c", str(ws.config_path)]
    env = {**os.environ, "ECOLIX_TOKEN": "t"}
    log = tmp_path / "first.log"
    with log.open("wb") as out, subprocess.Popen(command, env=env, stdout=out, stderr=out) as first:
        try:
            wait_until(lambda: b"edigw running" in log.read_bytes(), timeout=60, what="start")
            second = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=60, check=False
            )
        finally:
            first.send_signal(signal.SIGTERM)
            first.wait(timeout=60)
    journal_file = make_url(ws.load().journal_url).database
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1] == (
        f"Error: another gateway (pid {first.pid}) is running on the journal {journal_file}: "
        "stop it first; one `edigw run` per SQLite journal (use PostgreSQL for several nodes)"
    )
    assert first.returncode == 0


def test_a_value_the_journal_refuses_fails_the_file_once_and_shows_in_status(
    tmp_path: Path, ecolix: Any, journal_url: str
) -> None:
    ws = orders_workspace(tmp_path / "gw", ecolix, journal=journal_url)
    Journal.open(journal_url).close()
    inbox = ws.inbox("webshop", "orders")
    with database(journal_url) as run:
        refuse_when(
            run,
            journal_url,
            name="refuse_poison",
            event="BEFORE INSERT ON documents",
            when="NEW.business_key LIKE '%POISON%'",
        )
    write_orders(inbox / "poisoned.csv", ["POISON-1", "GOOD-0"])
    with running_gateway(ws) as parts:
        wait_until(files_final(parts, 1), what="the poisoned file failed")
        wait_until(lambda: csv_files(inbox) == [], what="its source moved")
        write_orders(inbox / "good.csv", ["GOOD-1"])
        wait_until(files_final(parts, 2), what="the next file done")
        rows = {r.original_name: r for r in parts.journal.files()}
    poisoned = rows["poisoned.csv"]
    assert sorted(rows) == ["good.csv", "poisoned.csv"], "recorded once"
    assert (poisoned.state, rows["good.csv"].state) == ("failed", "done")
    assert poisoned.error is not None
    assert poisoned.error.startswith("poisoned.csv: could not be taken in")
    assert "refused by the test trigger refuse_poison" in poisoned.error
    assert csv_files(inbox / "error") == ["poisoned.csv"]
    assert (inbox / "error" / "poisoned.csv.error.txt").exists()
    status = gateway_status(ws.load())
    assert any(
        f"F-{poisoned.id}: poisoned.csv: could not be taken in" in e for e in status.last_errors
    )
    assert sandbox_refs(ecolix, "GOOD") == ["GOOD-1"]


@pytest.mark.postgres
def test_a_nul_character_never_loops_on_postgresql(
    tmp_path: Path, ecolix: Any, postgres_url: str
) -> None:
    ws = orders_workspace(tmp_path / "gw", ecolix, journal=postgres_url)
    inbox = ws.inbox("webshop", "orders")
    write_orders(inbox / "nul.csv", ["NUL\x00-1"])
    with running_gateway(ws) as parts:
        wait_until(files_final(parts, 1), what="the file failed")
        wait_until(lambda: csv_files(inbox) == [], what="its source moved")
        write_orders(inbox / "good.csv", ["NULGOOD-1"])
        wait_until(files_final(parts, 2), what="the next file done")
        rows = {r.original_name: r for r in parts.journal.files()}
    assert (rows["nul.csv"].state, rows["good.csv"].state) == ("failed", "done")
    assert "\x00" not in (rows["nul.csv"].error or "")
    assert csv_files(inbox / "error") == ["nul.csv"]
    status = gateway_status(ws.load())
    assert any(f"F-{rows['nul.csv'].id}" in e for e in status.last_errors)
    assert sandbox_refs(ecolix, "NUL") == ["NULGOOD-1"]


def test_a_finished_file_no_poller_holds_yet_is_disposed_of_once_one_does(
    tmp_path: Path, ecolix: Any
) -> None:
    """The mover hears of a finished file its poller does not hold (yet, or any more):
    it looks for the poller again rather than forgetting the source in the inbox."""
    ws = orders_workspace(tmp_path / "gw", ecolix)
    inbox = ws.inbox("webshop", "orders")
    write_order_files(inbox, files=1, orders_per_file=1, prefix="LATE")
    [source] = inbox.glob("*.csv")
    with open_parts(ws.load()) as parts:
        signals = Signals()
        poller = FlowPoller(parts.inbound["webshop/orders"], parts, signals, clock=utc_now)
        wait_until(lambda: bool(poller.poll_once()), what="the file taken in")
        [row] = parts.journal.files()
        incoming = poller.pending.pop(row.id)  # as if the poller did not hold it yet
        sent = send_due(parts, signals, clock=utc_now)
        assert sent is not None and sent.file_state == "done"
        mover = threading.Thread(target=mover_loop, args=([poller], signals))
        mover.start()
        try:
            time.sleep(1.5)  # the mover found no poller holding it
            assert source.exists()
            poller.pending[row.id] = incoming  # now it does
            wait_until(lambda: not source.exists(), what="the source disposed of")
        finally:
            signals.stop.set()
            signals.finish.set()
            mover.join(timeout=10)
    assert csv_files(inbox / "done") == [source.name]


def test_a_file_finished_before_its_poller_holds_it_is_disposed_of_without_waiting_a_round(
    tmp_path: Path, ecolix: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender may finish a file between its intake's commit and its poller holding it: the
    mover then finds no poller. The poller that comes to hold it hands it to the mover at
    once; the source does not wait for the mover's next round (an hour here)."""
    from edigw.pipeline import mover as mover_module
    from edigw.pipeline import poller as poller_module

    monkeypatch.setattr(mover_module, "IDLE_WAIT", 3600.0)  # no round rescues the file
    ws = orders_workspace(tmp_path / "gw", ecolix)
    inbox = ws.inbox("webshop", "orders")
    write_order_files(inbox, files=1, orders_per_file=1, prefix="EARLY")
    [source] = inbox.glob("*.csv")
    signals = Signals()
    found_unowned = threading.Event()
    real_settle, real_ingest = mover_module.settle, poller_module.ingest

    def settle(pollers: Any, file_id: int) -> Any:
        outcome = real_settle(pollers, file_id)
        if outcome == "unowned":
            found_unowned.set()
        return outcome

    with open_parts(ws.load()) as parts:

        def ingest(*args: Any, **kwargs: Any) -> Any:
            ingested = real_ingest(*args, **kwargs)
            # a sender finishes the file before the poller holds it; the mover looks for it
            sent = send_due(parts, signals, clock=utc_now)
            assert sent is not None and sent.file_state == "done"
            assert found_unowned.wait(30), "the mover never looked for the file"
            return ingested

        monkeypatch.setattr(mover_module, "settle", settle)  # called by the mover
        monkeypatch.setattr(poller_module, "ingest", ingest)  # called by the poller
        poller = FlowPoller(parts.inbound["webshop/orders"], parts, signals, clock=utc_now)
        mover = threading.Thread(target=mover_loop, args=([poller], signals))
        mover.start()
        try:
            wait_until(lambda: bool(poller.poll_once()), what="the file taken in")
            wait_until(lambda: not source.exists(), what="the source disposed of")
        finally:
            signals.stop.set()
            signals.finish.set()
            signals.finished_files.put(None)
            mover.join(timeout=10)
    assert csv_files(inbox / "done") == [source.name]


def test_a_changed_flow_leaves_a_file_its_old_poller_holds_to_it_and_takes_the_next_one(
    tmp_path: Path, ecolix: Any
) -> None:
    """``edigw.yaml`` reloaded with a flow changed while one of its files is sending: the old
    poller keeps that file, for the mover to dispose of; the new poller, on the same folder,
    does not take it in a second time (it would hold it for ever, and a later file of the
    same name would never be taken in)."""
    from edigw.channels.base import JournalSeenFiles
    from edigw.pipeline.assembly import InboundRuntime, inbound_channel
    from edigw.pipeline.mover import settle
    from edigw.pipeline.runtime import Gateway

    flow = inbound_flow(
        ORDERS_MAPPING, "webshop", "orders", readiness={"mode": "done_file", "suffix": ".ok"}
    )
    ws = write_workspace(
        tmp_path / "gw",
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={"webshop": {"orders": flow}},
    )
    inbox = ws.inbox("webshop", "orders")
    write_orders(inbox / "orders.csv", ["CHG-1"])
    (inbox / "orders.csv.ok").touch()
    with open_parts(ws.load()) as parts:
        old = parts.inbound["webshop/orders"]
        gateway = Gateway(parts, senders=0)  # its loops never start: the test drives them
        gateway.add_flow(old)
        [first] = gateway.pollers
        [taken] = first.poll_once()  # its document waits for a sender
        assert first.held_ids() == [taken.file_id]

        gateway.remove_flow("webshop/orders", timeout=1)  # the flow changed: a new channel
        channel = inbound_channel(
            old.config,
            seen=JournalSeenFiles(parts.journal),
            data_dir=Path(parts.config.data_dir),
            sftp=None,
        )
        try:
            gateway.add_flow(InboundRuntime(old.config, old.context, channel))
            second = gateway.pollers[1]
            assert second.poll_once() == []
            assert second.held_ids() == []

            sent = send_due(parts, gateway.signals, clock=utc_now)
            assert sent is not None and sent.file_state == "done"
            assert settle(gateway.pollers, taken.file_id) == "done"
            assert csv_files(inbox) == []
            assert csv_files(inbox / "done") == ["orders.csv"]

            write_orders(inbox / "orders.csv", ["CHG-2"])  # the next file of that name
            (inbox / "orders.csv.ok").touch()
            [later] = second.poll_once()
            assert later.file_id != taken.file_id
        finally:
            channel.close()

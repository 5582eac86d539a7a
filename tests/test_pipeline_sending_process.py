"""``processes: 2``: the senders in a process of their own, the rest in the intake process.

Against a real sandbox, with real processes: every document is sent once and from the
sending process, every source is disposed of, the usage counts both processes' calls, a
killed sending process is replaced and its documents resume, and each process ends when
the other is gone or the gateway is stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from edigw.config import GatewayConfig
from edigw.ecolix.host_ledger import HostLedger
from edigw.journal.store import Journal
from edigw.pipeline.assembly import open_parts
from edigw.pipeline.runtime import Gateway
from edigw.pipeline.service import RunOutcome, serve
from tests.fixtures.gateway import Workspace, inbound_flow, wait_until, write_workspace
from tests.support.orderfiles import write_order_files

SUPERVISOR = {"max_restarts": 5, "window": "10m", "first_delay": 0.05, "max_delay": 0.2}


def orders_workspace(root: Path, ecolix: Any) -> Workspace:
    flow = inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders")
    workspace = write_workspace(
        root, base_url=ecolix.base_url, token=ecolix.token, flows={"webshop": {"orders": flow}}
    )
    text = workspace.config_path.read_text()
    workspace.config_path.write_text(text + f"processes: 2\nsupervisor: {json.dumps(SUPERVISOR)}\n")
    return workspace


class TwoProcesses:
    """``serve`` with ``processes: 2`` in a thread of the test until the block ends."""

    def __init__(self, config: GatewayConfig) -> None:
        self.stop = threading.Event()
        self.started = threading.Event()
        self.gateway: Gateway | None = None
        self.outcome: RunOutcome | None = None
        self.thread = threading.Thread(target=self._run, args=(config,), name="serve")

    def _run(self, config: GatewayConfig) -> None:
        self.outcome = serve(config, senders=2, stop=self.stop, on_start=self._on_start)

    def _on_start(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.started.set()

    @property
    def sending_pid(self) -> int | None:
        assert self.gateway is not None and self.gateway.sending is not None
        return self.gateway.sending.pid

    def __enter__(self) -> TwoProcesses:
        self.thread.start()
        assert self.started.wait(30), "serve did not start"
        wait_until(lambda: self.sending_pid is not None, what="the sending process")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()


def all_moved(workspace: Workspace, count: int) -> Callable[[], bool]:
    inbox = workspace.inbox("webshop", "orders")
    return lambda: (
        len(list((inbox / "done").glob("*.csv"))) == count and not list(inbox.glob("*.csv"))
    )


def senders_of(workspace: Workspace) -> set[str]:
    """The nodes (host:pid) that made the attempts recorded in the journal."""
    journal = workspace.journal()
    try:
        details = [
            event.detail
            for row in journal.files()
            for event in journal.events_of(row.id)
            if event.kind == "sent"
        ]
    finally:
        journal.close()
    return {detail.rsplit(" by ", 1)[1] for detail in details}


def test_every_document_is_sent_once_by_the_sending_process_and_every_source_moved(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ecolix = sandbox_factory()
    workspace = orders_workspace(tmp_path / "gw", ecolix)
    before = ecolix.counts()["order"]
    numbers = write_order_files(
        workspace.inbox("webshop", "orders"), files=20, orders_per_file=2, prefix="TWO"
    )
    with TwoProcesses(workspace.load()) as served:
        wait_until(all_moved(workspace, 20), what="20 files done")
        sending_pid = served.sending_pid
    assert served.outcome == RunOutcome()
    assert ecolix.counts()["order"] - before == len(numbers) == 40
    assert ecolix.calls()["orders.create"] == {"201": 40}
    [node] = senders_of(workspace)
    assert node.endswith(f":{sending_pid}") and sending_pid != os.getpid()


def test_the_published_usage_counts_the_calls_of_the_sending_process(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ecolix = sandbox_factory()
    workspace = orders_workspace(tmp_path / "gw", ecolix)
    write_order_files(workspace.inbox("webshop", "orders"), files=3, orders_per_file=2)
    with TwoProcesses(workspace.load()) as served:
        wait_until(all_moved(workspace, 3), what="3 files done")
        assert served.gateway is not None
        wait_until(lambda: served.gateway.usage().calls == 6, what="6 calls reported")
    usage = json.loads((Path(workspace.load().data_dir) / "usage.json").read_text())
    assert usage["calls"] == 6
    assert usage["by_operation"] == {"orders.create": 6}


def test_a_killed_sending_process_is_replaced_and_its_documents_resume_at_once(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ecolix = sandbox_factory(latency="100ms")
    workspace = orders_workspace(tmp_path / "gw", ecolix)
    before = ecolix.counts()["order"]
    numbers = write_order_files(
        workspace.inbox("webshop", "orders"), files=30, orders_per_file=2, prefix="KILL"
    )
    with TwoProcesses(workspace.load()) as served:
        first = served.sending_pid
        assert first is not None
        wait_until(lambda: sum(ecolix.calls().get("orders.create", {}).values()) >= 5)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: served.sending_pid not in (None, first), what="another sending process")
        wait_until(all_moved(workspace, 30), timeout=60, what="30 files done")
        assert served.gateway is not None
        [loop] = [h for h in served.gateway.health().loops if h.name == "sending process"]
    assert loop.restarts == 1
    assert loop.last_error is not None and f"sending process {first} ended" in loop.last_error
    assert ecolix.counts()["order"] - before == len(numbers) == 60  # once each: idempotency


def run_gateway(workspace: Workspace, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "edigw.cli", "run", "-c", str(workspace.config_path)],
            env={**os.environ, **workspace.environ},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def sending_child(process: subprocess.Popen[bytes]) -> psutil.Process:
    def found() -> bool:
        return any(
            "spawn_main" in " ".join(c.cmdline()) for c in psutil.Process(process.pid).children()
        )

    wait_until(found, what="the sending process started")
    [child] = [
        c for c in psutil.Process(process.pid).children() if "spawn_main" in " ".join(c.cmdline())
    ]
    return child


def test_sigterm_stops_both_processes_cleanly(tmp_path: Path, sandbox_factory: Any) -> None:
    ecolix = sandbox_factory()
    workspace = orders_workspace(tmp_path / "gw", ecolix)
    log = tmp_path / "run.log"
    process = run_gateway(workspace, log)
    try:
        child = sending_child(process)
        wait_until(lambda: b"sending process" in log.read_bytes(), what="it said so")
        write_order_files(workspace.inbox("webshop", "orders"), files=2, orders_per_file=1)
        wait_until(all_moved(workspace, 2), what="2 files done")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    text = log.read_text(errors="replace")
    assert process.returncode == 0, text[-3000:]
    assert "in a process of their own" in text
    assert "Traceback" not in text
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_the_sending_process_ends_when_the_intake_process_is_killed(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ecolix = sandbox_factory()
    workspace = orders_workspace(tmp_path / "gw", ecolix)
    log = tmp_path / "run.log"
    process = run_gateway(workspace, log)
    try:
        child = sending_child(process)
        process.kill()
        process.wait(timeout=30)
        child.wait(timeout=30)  # psutil.TimeoutExpired if it outlived its intake process
    finally:
        if process.poll() is None:
            process.kill()
    assert "the intake process is gone" in log.read_text(errors="replace")


def test_a_restarted_gateway_sends_what_a_killed_one_left(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ecolix = sandbox_factory(latency="500ms")
    workspace = orders_workspace(tmp_path / "gw", ecolix)
    before = ecolix.counts()["order"]
    numbers = write_order_files(
        workspace.inbox("webshop", "orders"), files=40, orders_per_file=2, prefix="RE"
    )
    first = run_gateway(workspace, tmp_path / "first.log")
    try:
        child = sending_child(first)
        wait_until(lambda: sum(ecolix.calls().get("orders.create", {}).values()) >= 5)
        child.kill()
        first.kill()
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert ecolix.counts()["order"] - before < len(numbers), "killed after the work was done"
    log = tmp_path / "second.log"
    second = run_gateway(workspace, log)
    try:
        wait_until(lambda: b"edigw running" in log.read_bytes(), what="the second gateway")
        wait_until(all_moved(workspace, 40), timeout=60, what="40 files done")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    assert second.returncode == 0
    assert ecolix.counts()["order"] - before == len(numbers) == 80
    journal = Journal.open(workspace.load().journal_url)
    try:
        assert {row.state for row in journal.files()} == {"done"}
    finally:
        journal.close()


@pytest.mark.parametrize("processes", [1, 2])
def test_processes_is_a_setting_of_edigw_yaml(tmp_path: Path, processes: int) -> None:
    workspace = write_workspace(
        tmp_path / "gw", base_url="http://127.0.0.1:1/api", token="t", flows={}
    )
    text = workspace.config_path.read_text()
    workspace.config_path.write_text(text + f"processes: {processes}\n")
    assert workspace.load().processes == processes


def test_the_processes_of_one_host_take_their_calls_from_one_budget(tmp_path: Path) -> None:
    workspace = write_workspace(
        tmp_path / "gw",
        base_url="http://127.0.0.1:1/api",
        token="t",
        flows={},
        calls_per_minute=3,
    )
    config = workspace.load()
    with open_parts(config) as intake, open_parts(config, with_channels=False) as sending:
        ours, theirs = intake.client.limiter.ledger, sending.client.limiter.ledger
        assert isinstance(ours, HostLedger) and isinstance(theirs, HostLedger)
        assert ours.path == theirs.path
        assert ours.path.parent == Path(config.data_dir) / "call-budget"
        granted = [ours.take(3, 60).granted, theirs.take(3, 60).granted, ours.take(3, 60).granted]
        assert granted == [True, True, True]
        assert not theirs.take(3, 60).granted
        assert not ours.take(3, 60).granted

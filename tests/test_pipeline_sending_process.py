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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from edigw.ecolix.host_ledger import HostLedger
from edigw.journal.store import Journal
from edigw.pipeline.assembly import open_parts
from edigw.pipeline.service import RunOutcome, process_count
from tests.fixtures.gateway import Workspace, inbound_flow, wait_until, write_workspace
from tests.support.orderfiles import write_order_files
from tests.support.served import Served

SUPERVISOR = {"max_restarts": 5, "window": "10m", "first_delay": 0.05, "max_delay": 0.2}


def orders_workspace(root: Path, ecolix: Any) -> Workspace:
    flow = inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders")
    workspace = write_workspace(
        root, base_url=ecolix.base_url, token=ecolix.token, flows={"webshop": {"orders": flow}}
    )
    text = workspace.config_path.read_text()
    workspace.config_path.write_text(text + f"processes: 2\nsupervisor: {json.dumps(SUPERVISOR)}\n")
    return workspace


class TwoProcesses(Served):
    """``serve`` with ``processes: 2`` in a thread of the test until the block ends."""

    @property
    def sending_pid(self) -> int | None:
        assert self.gateway is not None and self.gateway.sending is not None
        return self.gateway.sending.pid

    def __enter__(self) -> TwoProcesses:
        super().__enter__()
        wait_until(lambda: self.sending_pid is not None, what="the sending process")
        return self


@dataclass
class Drop:
    """Order files in the inbox of a gateway on a sandbox, and the orders it held before."""

    ecolix: Any
    workspace: Workspace
    numbers: list[str]
    before: int

    def created(self) -> int:
        """Orders created in the sandbox since the files were dropped."""
        return int(self.ecolix.counts()["order"]) - self.before

    def calls(self) -> int:
        return sum(self.ecolix.calls().get("orders.create", {}).values())


def dropped(
    root: Path, sandbox_factory: Any, *, files: int, latency: str | None = None, prefix: str = "T"
) -> Drop:
    """A ``processes: 2`` workspace on a fresh sandbox (answering ``latency`` late), with
    ``files`` files of 2 orders in its inbox."""
    ecolix = sandbox_factory(latency=latency)
    workspace = orders_workspace(root / "gw", ecolix)
    before = int(ecolix.counts()["order"])
    numbers = write_order_files(
        workspace.inbox("webshop", "orders"), files=files, orders_per_file=2, prefix=prefix
    )
    return Drop(ecolix, workspace, numbers, before)


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
    drop = dropped(tmp_path, sandbox_factory, files=20)
    with TwoProcesses(drop.workspace.load()) as served:
        wait_until(all_moved(drop.workspace, 20), what="20 files done")
        sending_pid = served.sending_pid
    assert served.outcome == RunOutcome()
    assert drop.created() == len(drop.numbers) == 40
    assert drop.ecolix.calls()["orders.create"] == {"201": 40}
    [node] = senders_of(drop.workspace)
    assert node.endswith(f":{sending_pid}") and sending_pid != os.getpid()


def test_the_published_usage_counts_the_calls_of_the_sending_process(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    drop = dropped(tmp_path, sandbox_factory, files=3)
    with TwoProcesses(drop.workspace.load()) as served:
        wait_until(all_moved(drop.workspace, 3), what="3 files done")
        assert served.gateway is not None
        wait_until(lambda: served.gateway.usage().calls == 6, what="6 calls reported")
    usage = json.loads((Path(drop.workspace.load().data_dir) / "usage.json").read_text())
    assert usage["calls"] == 6
    assert usage["by_operation"] == {"orders.create": 6}


@pytest.mark.parametrize(
    ("how", "said"), [(signal.SIGKILL, "ended (exit code -9)"), (signal.SIGTERM, "ended")]
)
def test_a_sending_process_that_ends_is_replaced_and_its_documents_resume_at_once(
    tmp_path: Path, sandbox_factory: Any, how: signal.Signals, said: str
) -> None:
    drop = dropped(tmp_path, sandbox_factory, files=30, latency="100ms")
    with TwoProcesses(drop.workspace.load()) as served:
        first = served.sending_pid
        assert first is not None
        wait_until(lambda: drop.calls() >= 5, what="calls made")
        os.kill(first, how)
        wait_until(lambda: served.sending_pid not in (None, first), what="another sending process")
        wait_until(all_moved(drop.workspace, 30), timeout=60, what="30 files done")
        assert served.gateway is not None
        [loop] = [h for h in served.gateway.health().loops if h.name == "sending process"]
    assert loop.restarts == 1
    assert loop.last_error is not None and f"sending process {first} {said}" in loop.last_error
    assert drop.created() == len(drop.numbers) == 60  # once each: idempotency


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
    drop = dropped(tmp_path, sandbox_factory, files=2)
    log = tmp_path / "run.log"
    process = run_gateway(drop.workspace, log)
    try:
        child = sending_child(process)
        wait_until(all_moved(drop.workspace, 2), what="2 files done")
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
    drop = dropped(tmp_path, sandbox_factory, files=0)
    log = tmp_path / "run.log"
    process = run_gateway(drop.workspace, log)
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
    drop = dropped(tmp_path, sandbox_factory, files=40, latency="500ms")
    first = run_gateway(drop.workspace, tmp_path / "first.log")
    try:
        child = sending_child(first)
        wait_until(lambda: drop.calls() >= 5, what="calls made")
        child.kill()
        first.kill()
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert drop.created() < len(drop.numbers), "killed after the work was done"
    log = tmp_path / "second.log"
    second = run_gateway(drop.workspace, log)
    try:
        wait_until(lambda: b"edigw running" in log.read_bytes(), what="the second gateway")
        wait_until(all_moved(drop.workspace, 40), timeout=60, what="40 files done")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
    assert second.returncode == 0
    assert drop.created() == len(drop.numbers) == 80
    journal = Journal.open(drop.workspace.load().journal_url)
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


@pytest.mark.parametrize(
    ("usable", "expected"),
    [({0}, 1), ({0, 1}, 2), ({0, 1, 2, 3}, 2)],
    ids=["one core: one process", "two cores: two", "four cores: two"],
)
def test_auto_is_two_processes_when_edigw_may_use_two_cores_or_more(
    monkeypatch: pytest.MonkeyPatch, usable: set[int], expected: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: usable)
    assert process_count("auto") == expected


@pytest.mark.parametrize("chosen", [1, 2])
def test_a_chosen_number_of_processes_is_kept_whatever_the_cores(
    monkeypatch: pytest.MonkeyPatch, chosen: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    assert process_count(chosen) == chosen

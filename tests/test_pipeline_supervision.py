"""The gateway's real loops under the supervisor, against a real sandbox.

A crash is injected into each kind of loop through the parts it uses (a method of the real
channel, journal or client that raises once); the loop comes back, and files still flow.
Trouble that belongs to no file shows as a condition. A stop drains the queued moves.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from edigw.config import GatewayConfig
from edigw.ecolix.client import EcolixClient
from edigw.errors import JournalError
from edigw.journal.store import Journal
from edigw.pipeline import reload, runtime, service
from edigw.pipeline.assembly import Parts, open_parts
from edigw.pipeline.health import Condition, HealthSnapshot, LoopHealth, read_health
from edigw.pipeline.runtime import Gateway
from edigw.pipeline.service import RunOutcome, serve
from edigw.pipeline.signals import utc_now
from edigw.pipeline.supervisor import SupervisorPolicy
from tests.fixtures.gateway import (
    ROOT,
    Workspace,
    files_final,
    inbound_flow,
    wait_until,
    write_workspace,
)
from tests.support.orderfiles import write_order_files
from tests.support.served import Served

FLOW = "webshop/orders"
FAST = SupervisorPolicy(max_restarts=5, window=600, first_delay=0.05, max_delay=0.2)
SUPERVISOR = {"max_restarts": 5, "window": "10m", "first_delay": 0.05, "max_delay": 0.2}


@pytest.fixture
def ecolix(sandbox_factory: Any) -> Any:
    return sandbox_factory()


def orders_workspace(root: Path, ecolix: Any, **options: Any) -> Workspace:
    flow = inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders", **options)
    return write_workspace(
        root, base_url=ecolix.base_url, token=ecolix.token, flows={"webshop": {"orders": flow}}
    )


@pytest.fixture
def workspace(tmp_path: Path, ecolix: Any) -> Workspace:
    return orders_workspace(tmp_path / "gw", ecolix)


@contextmanager
def supervised(
    workspace: Workspace, *, policy: SupervisorPolicy = FAST
) -> Iterator[tuple[Parts, Gateway]]:
    with open_parts(workspace.load()) as parts:
        gateway = Gateway(parts, senders=2, policy=policy)
        gateway.start()
        try:
            yield parts, gateway
        finally:
            gateway.join(timeout=30)


def raising_once(real: Callable[..., Any], error: BaseException) -> Callable[..., Any]:
    """``real``, except that its first call raises ``error``."""
    calls = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise error
        return real(*args, **kwargs)

    return wrapper


def loop(gateway: Gateway, name: str) -> LoopHealth:
    [found] = [item for item in gateway.health().loops if item.name == name]
    return found


def restarted(gateway: Gateway, name: str) -> Callable[[], bool]:
    def check() -> bool:
        health = loop(gateway, name)
        return health.restarts == 1 and health.state == "running"

    return check


def crash_records(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(f"loop {name} crashed")]


def drop_orders(workspace: Workspace, prefix: str, files: int = 1) -> None:
    write_order_files(
        workspace.inbox("webshop", "orders"), files=files, orders_per_file=1, prefix=prefix
    )


def moved_to_done(workspace: Workspace, count: int) -> Callable[[], bool]:
    inbox = workspace.inbox("webshop", "orders")
    return lambda: (
        len(list((inbox / "done").glob("*.csv"))) == count and not list(inbox.glob("*.csv"))
    )


# --------------------------------------------------------------------------- one crash per kind


def test_a_crashed_poller_is_restarted_and_its_flow_goes_on(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO), supervised(workspace) as (parts, gateway):
        channel = parts.inbound[FLOW].channel
        assert channel is not None
        monkeypatch.setattr(channel, "poll", raising_once(channel.poll, RuntimeError("poll bug")))
        wait_until(restarted(gateway, f"poller {FLOW}"), what="the poller back")
        drop_orders(workspace, "POLL")
        wait_until(files_final(parts, 1), what="a file taken in after the crash")
        health = loop(gateway, f"poller {FLOW}")
    assert health.last_error == "RuntimeError: poll bug"
    [record] = crash_records(caplog, f"poller {FLOW}")
    assert record.exc_info is not None


def test_a_crashed_watcher_is_restarted_and_wakes_its_poller_again(
    tmp_path: Path, ecolix: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = orders_workspace(
        tmp_path / "gw", ecolix, poll_interval=60, readiness={"mode": "done_file", "suffix": ".ok"}
    )
    with supervised(ws) as (parts, gateway):
        channel = parts.inbound[FLOW].channel
        assert channel is not None
        monkeypatch.setattr(
            channel, "watching", raising_once(channel.watching, RuntimeError("watch bug"))
        )
        wait_until(restarted(gateway, f"watcher {FLOW}"), what="the watcher back")
        wait_until(channel.watching, what="the folder watched")
        drop_orders(ws, "WATCH")
        for dropped in ws.inbox("webshop", "orders").glob("*.csv"):
            dropped.with_name(dropped.name + ".ok").touch()
        # The poller looks every 60 s: only the watcher can bring the file in this soon.
        wait_until(files_final(parts, 1), what="the file, woken by the watcher")
        health = loop(gateway, f"watcher {FLOW}")
    assert health.last_error == "RuntimeError: watch bug"


def test_a_crashed_sender_is_restarted_and_documents_still_go_out(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    with supervised(workspace) as (parts, gateway):
        journal = parts.journal
        monkeypatch.setattr(
            journal,
            "claim_for_sending",
            raising_once(journal.claim_for_sending, RuntimeError("claim bug")),
        )
        wait_until(
            lambda: (
                sum(item.restarts for item in gateway.health().loops if item.kind == "sender") == 1
            ),
            what="a sender restarted",
        )
        drop_orders(workspace, "SEND", files=2)
        wait_until(files_final(parts, 2), what="both files sent")
        states = {row.state for row in parts.journal.files()}
    assert states == {"done"}


def test_a_crashed_mover_is_restarted_and_moves_its_file_and_later_ones(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file in hand when the mover crashed is handed to the restarted mover: its source
    does not wait in the inbox for the next start."""
    with supervised(workspace) as (parts, gateway):
        channel = parts.inbound[FLOW].channel
        assert channel is not None
        monkeypatch.setattr(
            channel, "complete", raising_once(channel.complete, RuntimeError("move bug"))
        )
        drop_orders(workspace, "MOVE1")
        wait_until(restarted(gateway, "mover"), what="the mover back")
        drop_orders(workspace, "MOVE2")
        wait_until(moved_to_done(workspace, 2), what="both files moved")
        health = loop(gateway, "mover")
    assert health.last_error == "RuntimeError: move bug"


def test_a_crashed_archive_probe_is_restarted(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        runtime, "not_writable", raising_once(runtime.not_writable, RuntimeError("probe bug"))
    )
    with supervised(workspace) as (_, gateway):
        wait_until(restarted(gateway, "archive probe"), what="the probe back")
        assert gateway.health().healthy


def test_a_crashed_reloader_is_restarted(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reload, "changed", raising_once(reload.changed, RuntimeError("stat bug")))
    with supervised(workspace) as (_, gateway):
        wait_until(restarted(gateway, "reloader"), what="the reloader back")
        assert gateway.health().healthy


# --------------------------------------------------------------------------- serve: exporter, publisher


def with_supervisor(workspace: Workspace, settings: dict[str, Any], **extra: Any) -> GatewayConfig:
    data = yaml.safe_load(workspace.config_path.read_text(encoding="utf-8"))
    data["supervisor"] = settings
    data.update(extra)
    workspace.config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return workspace.load()


def export_flow(outbox: Path) -> dict[str, Any]:
    """Articles every second: a run that failed is followed by the next one a second later."""
    return {
        "direction": "outbound",
        "query": {"resource": "articles.list"},
        "template": str(ROOT / "templates" / "webshop-articles.csv.j2"),
        "filename": "{partner}_{flow}_{seq:05d}.csv",
        "channel": {"type": "local", "path": str(outbox)},
        "schedule": {"every": 1},
    }


def test_a_crashed_exporter_is_restarted_and_the_export_runs(
    tmp_path: Path, ecolix: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = tmp_path / "outbox"
    ws = write_workspace(
        tmp_path / "gw",
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={"webshop": {"articles": export_flow(outbox)}},
    )
    config = with_supervisor(ws, SUPERVISOR)
    monkeypatch.setattr(
        EcolixClient,
        "iter_list",
        raising_once(EcolixClient.iter_list, RuntimeError("export bug")),
    )
    with Served(config) as served:
        assert served.gateway is not None
        gateway = served.gateway
        wait_until(restarted(gateway, "exporter"), what="the exporter back")
        wait_until(lambda: len(list(outbox.glob("*.csv"))) == 1, what="the export delivered")
    assert loop(gateway, "exporter").last_error == "RuntimeError: export bug"


def test_a_crashed_publisher_is_restarted_and_health_is_published(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = with_supervisor(workspace, SUPERVISOR)
    monkeypatch.setattr(
        service, "write_health", raising_once(service.write_health, RuntimeError("publish bug"))
    )
    with Served(config) as served:
        assert served.gateway is not None
        wait_until(restarted(served.gateway, "publisher"), what="the publisher back")
        # The restarted publisher writes at once; its first run's write raised.
        wait_until(
            lambda: read_health(Path(config.data_dir), now=utc_now()).snapshot is not None,
            what="health.json written",
        )
        published = read_health(Path(config.data_dir), now=utc_now())
        assert published.snapshot is not None
        assert not published.stale
        assert published.snapshot.state == "running"
    assert served.outcome == RunOutcome()
    final = read_health(Path(config.data_dir), now=utc_now())
    assert final.snapshot is not None and final.snapshot.state == "stopped"
    [publisher] = [item for item in final.snapshot.loops if item.name == "publisher"]
    assert (publisher.restarts, publisher.last_error) == (1, "RuntimeError: publish bug")


def test_a_loop_that_keeps_crashing_stops_the_gateway_cleanly_with_the_reason(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = with_supervisor(
        workspace, {"max_restarts": 2, "window": "10m", "first_delay": 0.01, "max_delay": 0.01}
    )
    from edigw.channels.local import LocalInboundChannel

    def broken(self: Any, *, now: float) -> Any:
        raise RuntimeError("always broken")

    monkeypatch.setattr(LocalInboundChannel, "poll", broken)
    with caplog.at_level(logging.INFO):
        outcome = serve(config, senders=2)
    assert outcome.failure is not None
    assert outcome.failure.startswith(f"loop poller {FLOW} crashed 3 times within 10 min")
    assert outcome.still_busy == ()
    assert "edigw stopped: loop poller" in caplog.text
    final = read_health(Path(config.data_dir), now=utc_now())
    assert final.snapshot is not None
    assert final.snapshot.state == "failed"
    states = {item.name: item.state for item in final.snapshot.loops}
    assert states.pop(f"poller {FLOW}") == "failed"
    assert set(states.values()) == {"stopped"}


# --------------------------------------------------------------------------- conditions


def test_a_missing_inbox_is_a_condition_of_its_flow_until_it_is_back(workspace: Workspace) -> None:
    inbox = workspace.inbox("webshop", "orders")
    with supervised(workspace) as (parts, gateway):
        wait_until(lambda: gateway.health().healthy, what="healthy")
        shutil.rmtree(inbox)

        def channel_conditions() -> list[Condition]:
            return [
                c
                for c in gateway.health().conditions
                if c.flow == FLOW and c.name.startswith("channel")
            ]

        # the watcher may say first that it lost the folder: wait for the poller's word
        wait_until(lambda: bool(channel_conditions()), what="the flow's channel condition")
        assert FLOW in gateway.health().flow_problems()
        [condition] = channel_conditions()
        inbox.mkdir()
        wait_until(lambda: gateway.health().healthy, what="healthy again")
        drop_orders(workspace, "BACK")
        wait_until(files_final(parts, 1), what="a file taken in from the new folder")
    assert condition.name == f"channel {FLOW}"
    assert str(inbox) in condition.message


def test_an_sftp_server_that_does_not_answer_is_a_condition_of_its_flow(
    tmp_path: Path, ecolix: Any
) -> None:
    from tests.fixtures.sandbox import free_port

    flow = inbound_flow(
        "supplier-invoices-csv.yaml",
        "supplier",
        "invoices",
        channel={"type": "sftp", "endpoint": "down", "path": "/out"},
    )
    ws = write_workspace(
        tmp_path / "gw",
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={"supplier": {"invoices": flow}},
    )
    port = free_port()
    with_supervisor(
        ws,
        SUPERVISOR,
        sftp_endpoints={
            "down": {
                "host": "127.0.0.1",
                "port": port,
                "username": "edi",
                "password": "x",
                "known_hosts": str(tmp_path / "known_hosts"),
            }
        },
    )
    with supervised(ws) as (_, gateway):
        wait_until(lambda: bool(gateway.health().conditions), what="a condition")
        [condition] = gateway.health().conditions
    assert condition.name == "channel supplier/invoices"
    assert condition.flow == "supplier/invoices"
    assert f"cannot connect to 127.0.0.1:{port}" in condition.message
    assert not any(item.kind == "watcher" for item in gateway.health().loops)


@pytest.mark.sftp
def test_an_sftp_host_key_that_changed_is_a_condition_of_its_flow(
    tmp_path: Path, ecolix: Any, sshd: Any
) -> None:
    from tests.fixtures.sshd import write_ed25519_key

    impostor = write_ed25519_key(tmp_path / "impostor")  # "ssh-ed25519 AAAA..."
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {impostor}\n", encoding="utf-8")
    flow = inbound_flow(
        "supplier-invoices-csv.yaml",
        "supplier",
        "invoices",
        channel={"type": "sftp", "endpoint": "lefort", "path": str(tmp_path)},
    )
    ws = write_workspace(
        tmp_path / "gw",
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={"supplier": {"invoices": flow}},
    )
    with_supervisor(
        ws,
        SUPERVISOR,
        sftp_endpoints={
            "lefort": {
                "host": sshd.host,
                "port": sshd.port,
                "username": sshd.user,
                "key_file": str(sshd.client_key),
                "known_hosts": str(known_hosts),
            }
        },
    )
    with supervised(ws) as (_, gateway):
        wait_until(lambda: bool(gateway.health().conditions), what="a condition")
        [condition] = gateway.health().conditions
    assert condition.name == "channel supplier/invoices"
    assert "host key" in condition.message.lower()


def test_a_journal_that_refuses_claims_is_a_condition_until_it_accepts_them(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    with supervised(workspace) as (parts, gateway):
        real = parts.journal.claim_for_sending
        refusing = threading.Event()
        refusing.set()

        def claim(*args: Any, **kwargs: Any) -> Any:
            if refusing.is_set():
                raise JournalError("journal: database is locked")
            return real(*args, **kwargs)

        monkeypatch.setattr(parts.journal, "claim_for_sending", claim)
        wait_until(
            lambda: any(c.name == "journal" for c in gateway.health().conditions),
            what="the condition",
        )
        [condition] = gateway.health().conditions
        refusing.clear()
        wait_until(lambda: gateway.health().healthy, what="healthy again")
        senders = [item for item in gateway.health().loops if item.kind == "sender"]
    assert condition.message == "journal: database is locked"
    assert all(item.restarts == 0 for item in senders), "a refused claim is no crash"


def test_an_archive_that_cannot_be_written_is_a_condition(workspace: Workspace) -> None:
    archive = Path(workspace.load().data_dir) / "archive"
    archive.mkdir(parents=True)
    if not _immutable(archive):
        pytest.skip("chattr +i is not available here")
    try:
        with supervised(workspace) as (_, gateway):
            wait_until(
                lambda: any(c.name == "archive" for c in gateway.health().conditions),
                what="the archive condition",
            )
            [condition] = gateway.health().conditions
    finally:
        _immutable(archive, on=False)
    assert condition.message.startswith(f"cannot write into the archive {archive}:")


def _immutable(path: Path, *, on: bool = True) -> bool:
    import subprocess

    flag = "+i" if on else "-i"
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False)
    return done.returncode == 0


def test_a_thread_that_dies_outside_the_loops_is_a_condition_of_the_running_gateway(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    config = with_supervisor(workspace, SUPERVISOR)
    with Served(config) as served:
        assert served.gateway is not None

        def dies() -> None:
            raise ValueError("helper thread bug")

        helper = threading.Thread(target=dies, name="helper")
        helper.start()
        helper.join()
        conditions = served.gateway.health().conditions
    assert [(c.name, c.message) for c in conditions] == [
        ("thread helper", "died: ValueError: helper thread bug")
    ]
    assert "helper thread bug" not in capsys.readouterr().err


# --------------------------------------------------------------------------- stopping


def test_a_stop_makes_the_source_moves_still_queued(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mover drains its queue before it ends: no done file stays in its inbox."""
    with supervised(workspace) as (parts, gateway):
        channel = parts.inbound[FLOW].channel
        assert channel is not None
        real = channel.complete

        def slow_complete(*args: Any, **kwargs: Any) -> Any:
            time.sleep(0.3)  # a slow share: moves queue up behind this one
            return real(*args, **kwargs)

        monkeypatch.setattr(channel, "complete", slow_complete)
        drop_orders(workspace, "QUEUED", files=4)
        wait_until(files_final(parts, 4), what="four files done in the journal")
        gateway.stop()
        assert gateway.join(timeout=30) == []
    assert moved_to_done(workspace, 4)()


def test_a_stop_waits_no_longer_than_the_stop_timeout(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    with open_parts(workspace.load()) as parts:
        real = parts.client.write

        def stuck_write(*args: Any, **kwargs: Any) -> Any:
            release.wait(30)  # a call on the wire that does not come back
            return real(*args, **kwargs)

        monkeypatch.setattr(parts.client, "write", stuck_write)
        gateway = Gateway(parts, senders=1, policy=FAST)
        gateway.start()
        try:
            drop_orders(workspace, "STUCK")
            wait_until(lambda: parts.journal.files() != [], what="the file taken in")
            wait_until(_document_sent(parts.journal), what="the call in flight")
            gateway.stop()
            still = gateway.join(timeout=5)  # 4 s for the sender, then 1 s for the mover
        finally:
            release.set()
            gateway.join(timeout=30)
    assert still == ["sender 0"]


def _document_sent(journal: Journal) -> Callable[[], bool]:
    def check() -> bool:
        return any(
            d.state == "sent" for row in journal.files() for d in journal.documents_of(row.id)
        )

    return check


def test_a_healthy_gateway_reports_itself_healthy(workspace: Workspace) -> None:
    with supervised(workspace) as (_, gateway):
        wait_until(lambda: gateway.health().healthy, what="healthy")
        snapshot: HealthSnapshot = gateway.health()
    kinds = sorted({item.kind for item in snapshot.loops})
    assert kinds == ["mover", "poller", "probe", "reloader", "sender", "watcher"]
    assert snapshot.state == "running"
    assert gateway.health().state == "stopped"

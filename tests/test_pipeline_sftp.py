"""SFTP as a channel of the gateway: partner files fetched from a real sshd, exports delivered to it."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from edigw.ecolix.client import EcolixClient
from edigw.pipeline.exports import export_now
from edigw.pipeline.signals import utc_now
from tests.fixtures.gateway import (
    ROOT,
    files_final,
    inbound_flow,
    running_gateway,
    wait_until,
    write_workspace,
)

INVOICES = ROOT / "samples" / "supplier" / "supplier-invoices-csv"

pytestmark = pytest.mark.sftp


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    folder = tmp_path / "remote"
    (folder / "out").mkdir(parents=True)
    (folder / "in").mkdir()
    return folder


@pytest.fixture
def workspace(tmp_path: Path, sandbox_factory: Any, sshd: Any, remote: Path) -> Any:
    ecolix = sandbox_factory()
    ws = write_workspace(
        tmp_path / "gw",
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={
            "supplier": {
                "invoices": inbound_flow(
                    "supplier-invoices-csv.yaml",
                    "supplier",
                    "invoices",
                    channel={"type": "sftp", "endpoint": "lefort", "path": str(remote / "out")},
                    readiness={"mode": "stable", "interval": 0.2},
                ),
                "purchase-orders": {
                    "direction": "outbound",
                    "query": {"resource": "purchase_orders.list"},
                    "template": str(ROOT / "templates" / "supplier-purchase-orders.xml.j2"),
                    "settings": {"company_name": "Outillage Durand SAS"},  # the buyer
                    "filename": "{partner}_{flow}_{seq:05d}.xml",
                    "channel": {"type": "sftp", "endpoint": "lefort", "path": str(remote / "in")},
                    "schedule": {"every": 3600},
                },
            }
        },
    )
    known_hosts = ws.root / "known_hosts"
    known_hosts.write_text(sshd.known_hosts_line, encoding="utf-8")
    config = yaml.safe_load(ws.config_path.read_text(encoding="utf-8"))
    config["sftp_endpoints"] = {
        "lefort": {
            "host": sshd.host,
            "port": sshd.port,
            "username": sshd.user,
            "key_file": str(sshd.client_key),
            "known_hosts": str(known_hosts),
        }
    }
    ws.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return ws, ecolix


def test_an_invoice_file_on_the_partners_sftp_becomes_ecolix_invoices(
    workspace: Any, remote: Path
) -> None:
    workspace, ecolix = workspace
    sample = next(INVOICES.glob("*.csv"))
    shutil.copyfile(sample, remote / "out" / sample.name)
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, 1), what="the SFTP file's outcome")
        row = parts.journal.files()[0]
        docs = parts.journal.documents_of(row.id)
    assert row.state == "done", row.error
    assert row.channel.startswith("sftp:lefort:")
    assert not (remote / "out" / sample.name).exists()
    assert (remote / "out" / "done" / sample.name).exists()
    with EcolixClient(ecolix.base_url, ecolix.token) as client:
        numbers = {i["number"] for i in client.iter_list("supplier_invoices.list")}
    assert docs and {d.state for d in docs} == {"done"}
    assert {d.payload["number"] for d in docs if d.payload} <= numbers


def test_a_small_sftp_file_is_archived_from_memory_byte_for_byte(
    workspace: Any, remote: Path
) -> None:
    workspace, _ = workspace
    sample = next(INVOICES.glob("*.csv"))
    data = sample.read_bytes()
    assert len(data) < 32 << 10  # small enough to be handed over in memory
    (remote / "out" / sample.name).write_bytes(data)
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, 1), what="the SFTP file's outcome")
        row = parts.journal.files()[0]
        archived = parts.archive.path_of(row.sha256)
        assert parts.archive.verify(row.sha256)
    assert row.state == "done", row.error
    assert (row.sha256, row.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert archived.read_bytes() == data
    assert row.source_path == str(remote / "out" / sample.name)
    assert (remote / "out" / "done" / sample.name).read_bytes() == data


def test_an_export_is_delivered_to_the_partners_sftp_under_its_final_name(
    workspace: Any, remote: Path
) -> None:
    config = workspace[0].load()
    flow = config.flow("supplier/purchase-orders")
    from edigw.pipeline.assembly import open_parts

    with open_parts(config, with_channels=False) as parts:
        result = export_now(parts, flow, now=utc_now())
    assert result.state == "delivered"
    delivered = sorted(p.name for p in (remote / "in").iterdir())
    assert delivered == ["supplier_purchase-orders_00001.xml"]
    assert b"<" in (remote / "in" / delivered[0]).read_bytes()


# paramiko's read-ahead thread dies with its own EOFError when the connection is cut while it
# still sends read requests; the download itself fails cleanly, which is what is checked here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_transfer_cut_midway_is_superseded_once_the_file_is_fetched_whole(
    workspace: Any, remote: Path, sshd: Any
) -> None:
    workspace, _ = workspace
    data = os.urandom(1 << 20) * 32  # not invoices: the whole file then fails, on its own row
    staging = workspace.root / "data" / "staging"
    killed = threading.Event()

    def kill_when_download_started() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for path in staging.rglob("*big.csv"):
                try:
                    if path.stat().st_size >= 1 << 20:
                        sshd.kill_sessions()
                        killed.set()
                        return
                except FileNotFoundError:
                    pass
            time.sleep(0.001)

    def fetched_whole() -> bool:
        rows = parts.journal.files()
        return any(r.sha256 and r.state in ("done", "failed") for r in rows)

    (remote / "out" / "big.csv").write_bytes(data)
    killer = threading.Thread(target=kill_when_download_started)
    killer.start()
    with running_gateway(workspace) as parts:
        wait_until(fetched_whole, timeout=120, what="the file fetched whole after the cut")
        killer.join()
        cut, whole = sorted(parts.journal.files(), key=lambda r: r.id)
        [status] = parts.journal.status_counts()
        events = parts.journal.events_of(cut.id)
    assert killed.is_set()
    assert cut.state == "superseded"
    assert "will fetch again" in (cut.error or "")
    assert events[-1].detail == f"taken in whole as F-{whole.id}"
    assert whole.sha256 == hashlib.sha256(data).hexdigest()
    assert status.files == {"superseded": 1, whole.state: 1}
    assert all(e.ref != f"F-{cut.id}" for e in status.last_errors)


def test_a_reload_removing_the_last_flows_of_an_endpoint_closes_its_session(
    workspace: Any, sshd: Any
) -> None:
    from tests.test_pipeline_reload import rewrite, serving

    workspace, _ = workspace
    before = set(sshd.session_pids())
    reload = threading.Event()
    with serving(workspace, reload=reload) as gateway:
        assert gateway.parts.sftp is not None
        lefort = gateway.parts.sftp.connection("lefort")
        wait_until(lambda: lefort.alive, what="the poller connected to lefort")
        ours = set(sshd.session_pids()) - before
        assert ours  # the server holds our session

        rewrite(
            workspace,
            {"shop": {"orders": inbound_flow("ecommerce-orders-csv.yaml", "shop", "orders")}},
        )
        reload.set()

        wait_until(
            lambda: not ours & set(sshd.session_pids()), what="the server closing our session"
        )
        assert not lefort.opened


def test_a_reload_removing_one_flow_of_an_endpoint_keeps_its_session_for_the_others(
    workspace: Any, sshd: Any, remote: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.test_pipeline_reload import rewrite, serving

    workspace, _ = workspace
    config = yaml.safe_load(workspace.config_path.read_text(encoding="utf-8"))
    invoices = config["partners"]["supplier"]["flows"]["invoices"]
    before = set(sshd.session_pids())
    reload = threading.Event()
    with caplog.at_level(logging.INFO), serving(workspace, reload=reload) as gateway:
        assert gateway.parts.sftp is not None
        lefort = gateway.parts.sftp.connection("lefort")
        wait_until(lambda: lefort.alive, what="the poller connected to lefort")
        ours = set(sshd.session_pids()) - before

        rewrite(workspace, {"supplier": {"invoices": invoices}})  # the export goes
        reload.set()
        wait_until(lambda: "reloaded: " in caplog.text, what="the reload")

        assert lefort.alive
        assert ours <= set(sshd.session_pids())
        assert "no flow uses it any more" not in caplog.text

"""A file whose reading kills `edigw run` does not kill it again at every restart.

The journal records the reading process before a byte is read. At the next start, a file
left ``received`` by a dead reader is read once more in an isolated child process: an
innocent file (the gateway was killed for another reason) goes through; a file that kills
that child too is failed, its source moved to the error folder, and never read again.
The gateway runs in a subprocess and is killed with SIGKILL while it reads a slow file; the
isolated reader is killed with SIGABRT, as a native reader aborting would be.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from edigw.ecolix.client import EcolixClient
from edigw.errors import JournalError
from edigw.journal import FileRow, Journal
from tests.fixtures.gateway import ROOT, inbound_flow, wait_until, write_workspace
from tests.support.orderfiles import write_order_files
from tests.support.slowfiles import slow_mapping, write_slow_file

pytestmark = pytest.mark.slow


def slow_workspace(root: Path, ecolix: Any) -> Any:
    mapping = slow_mapping(root / "mappings")
    flow = inbound_flow(
        str(mapping), "webshop", "orders", readiness={"mode": "min_age", "seconds": 0}
    )
    return write_workspace(
        root / "gw",
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={"webshop": {"orders": flow}},
    )


@contextmanager
def gateway(ws: Any, token: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`edigw run` in a subprocess (its own folder, so a core dump lands nowhere it matters)."""
    env = {**os.environ, "ECOLIX_TOKEN": token}
    command = [sys.executable, "-m", "edigw.cli", "run", "-c", str(ws.config_path)]
    with (
        log.open("ab") as out,
        subprocess.Popen(command, env=env, stdout=out, stderr=out, cwd=ws.root) as process,
    ):
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()


def journal_files(ws: Any) -> list[FileRow]:
    try:
        journal = Journal.open(ws.load().journal_url, create=False)
    except JournalError:  # not created yet, or being migrated by the gateway
        return []
    try:
        return sorted(journal.files(), key=lambda r: r.id)
    finally:
        journal.close()


def being_read(ws: Any) -> bool:
    return any(r.state == "received" and r.reader for r in journal_files(ws))


def isolated_readers(parent: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(parent).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if "edigw.pipeline.isolated" in " ".join(c.cmdline())]


def killed_while_reading(ws: Any, token: str, log: Path) -> FileRow:
    """Start the gateway, SIGKILL it while it reads the slow file; the file as left."""
    with gateway(ws, token, log) as first:
        wait_until(lambda: being_read(ws), timeout=120, what="the slow file being read")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    [row] = journal_files(ws)
    assert (row.state, row.reader) == ("received", row.reader) and row.reader
    return row


def sandbox_refs(ecolix: Any, prefix: str) -> list[str]:
    with EcolixClient(ecolix.base_url, ecolix.token) as client:
        return sorted(
            str(o["external_reference"])
            for o in client.iter_list("orders.list")
            if str(o.get("external_reference", "")).startswith(prefix)
        )


def test_a_file_whose_reading_was_cut_by_an_unrelated_kill_goes_through_after_a_restart(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ecolix = sandbox_factory()
    ws = slow_workspace(tmp_path, ecolix)
    inbox = ws.inbox("webshop", "orders")
    write_slow_file(inbox / "big.csv", "CUT-1")
    log = tmp_path / "gateway.log"
    killed_while_reading(ws, ecolix.token, log)

    with gateway(ws, ecolix.token, log):
        wait_until(
            lambda: [r.state for r in journal_files(ws)] == ["done"],
            timeout=180,
            what="the file read again and done",
        )
        wait_until(lambda: not (inbox / "big.csv").exists(), what="its source moved")

    assert b"is read again in an isolated process" in log.read_bytes()
    assert sandbox_refs(ecolix, "CUT-") == ["CUT-1"]
    assert [p.name for p in (inbox / "done").iterdir()] == ["big.csv"]


def test_a_file_whose_reading_kills_the_gateway_is_failed_and_never_read_again(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ecolix = sandbox_factory()
    ws = slow_workspace(tmp_path, ecolix)
    inbox = ws.inbox("webshop", "orders")
    write_slow_file(inbox / "killer.csv", "KILL-1")
    log = tmp_path / "gateway.log"
    row = killed_while_reading(ws, ecolix.token, log)

    with gateway(ws, ecolix.token, log) as second:
        wait_until(lambda: isolated_readers(second.pid) != [], timeout=120, what="a reader")
        for reader in isolated_readers(second.pid):
            reader.send_signal(signal.SIGABRT)  # it kills its reader again
        wait_until(
            lambda: [r.state for r in journal_files(ws)] == ["failed"],
            timeout=60,
            what="the file failed",
        )
        wait_until(lambda: not (inbox / "killer.csv").exists(), what="its source moved")
        write_order_files(inbox, files=1, orders_per_file=2, prefix="AFTER")
        wait_until(
            lambda: [r.state for r in journal_files(ws)] == ["failed", "done"],
            timeout=120,
            what="the next file done: the gateway runs on",
        )
        assert second.poll() is None

    failed = journal_files(ws)[0]
    began = row.received_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert failed.error == (
        "reading this file stopped the gateway (killed by a signal or out of memory) at "
        f"{began}, and reading it again in an isolated process was killed by signal 6 "
        f"(SIGABRT); it is not read again: fix the file, or `edigw replay F-{row.id}` once "
        "the cause is fixed"
    )
    assert [p.name for p in sorted((inbox / "error").iterdir())] == [
        "killer.csv",
        "killer.csv.error.txt",
    ]
    assert sandbox_refs(ecolix, "KILL-") == []
    assert len(sandbox_refs(ecolix, "AFTER")) == 2

    # Dropped again, the same bytes are not read again: the gateway stays up.
    (inbox / "error" / "killer.csv").rename(inbox / "killer-again.csv")
    with gateway(ws, ecolix.token, log) as third:
        wait_until(lambda: len(journal_files(ws)) == 3, timeout=120, what="the copy journalled")
        wait_until(lambda: not (inbox / "killer-again.csv").exists(), what="the copy moved")
        time.sleep(0.5)
        assert isolated_readers(third.pid) == []
        assert third.poll() is None
    copy = journal_files(ws)[2]
    assert copy.state == "skipped_duplicate"
    assert copy.error is not None and f"same content as F-{row.id}" in copy.error


def hostile_workbook(path: Path) -> Path:
    """4.9 KB of Excel declaring a cell at XFD1048576: a dense reader allocates 512 GiB."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Comptes"
    sheet["A1"] = "Code client"
    sheet["XFD1048576"] = "x"
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def test_an_excel_file_that_aborts_the_reader_kills_the_gateway_once_at_most(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    """The file of the issue. Whichever guard catches it (a reader that refuses it, or the
    crash recognised at the restart), it ends failed, alone, and the gateway runs on."""
    ecolix = sandbox_factory()
    flow = inbound_flow(
        "crm-customers-xlsx.yaml",
        "crm",
        "customers",
        readiness={"mode": "min_age", "seconds": 0},
        include=["*.xlsx"],
    )
    ws = write_workspace(
        tmp_path / "gw",
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={"crm": {"customers": flow}},
    )
    inbox = ws.inbox("crm", "customers")
    hostile_workbook(inbox / "comptes.xlsx")
    log = tmp_path / "gateway.log"
    deaths = []
    for _ in range(2):  # a service manager restarts it once
        with gateway(ws, ecolix.token, log) as process:
            wait_until(
                lambda: (
                    process.poll() is not None or [r.state for r in journal_files(ws)] == ["failed"]
                ),
                timeout=180,
                what="the gateway dead or the file failed",
            )
            if process.poll() is not None:
                deaths.append(process.returncode)
                continue
            wait_until(lambda: not (inbox / "comptes.xlsx").exists(), what="its source moved")
            good = ROOT / "samples/crm/crm-customers-xlsx/export_comptes_crm_20261128.xlsx"
            (inbox / "good.xlsx").write_bytes(good.read_bytes())
            wait_until(
                lambda: [r.state for r in journal_files(ws)][1:] == ["done"],
                timeout=120,
                what="the next file done",
            )
            assert process.poll() is None, "the gateway runs on"
            break
    assert deaths in ([], [-signal.SIGABRT]), deaths
    hostile = journal_files(ws)[0]
    assert hostile.state == "failed"
    if deaths:
        assert hostile.error is not None
        assert hostile.error.startswith("reading this file stopped the gateway")
        assert "killed by signal 6 (SIGABRT)" in hostile.error
    assert [p.name for p in sorted((inbox / "error").iterdir())] == [
        "comptes.xlsx",
        "comptes.xlsx.error.txt",
    ]

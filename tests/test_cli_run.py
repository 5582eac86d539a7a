"""`edigw run` as an operator meets it: init, run, drop a file, status, SIGTERM; exit statuses."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from edigw.cli import EXIT_GAVE_UP, EXIT_STOP_TIMEOUT, main
from edigw.config import load_config
from edigw.journal.store import Journal
from tests.fixtures.gateway import ROOT, inbound_flow, wait_until, write_workspace
from tests.support.orderfiles import write_order_files

SAMPLE = ROOT / "samples" / "ecommerce" / "ecommerce-orders-csv" / "commandes_20261128.csv"


def edigw(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edigw.cli", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_init_then_run_takes_in_a_dropped_sample_and_stops_cleanly_on_sigterm(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ecolix = sandbox_factory()
    env = {"ECOLIX_TOKEN": ecolix.token, "ECOLIX_URL": ecolix.base_url}
    gateway_dir = tmp_path / "gateway"
    assert edigw("init", str(gateway_dir), cwd=tmp_path, env=env).returncode == 0
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "edigw.cli", "run"],
            cwd=gateway_dir,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: b"edigw running" in log.read_bytes(), what="the gateway running")
        inbox = gateway_dir / "inbox" / "webshop" / "orders"
        shutil.copyfile(SAMPLE, inbox / SAMPLE.name)
        wait_until(lambda: (inbox / "done" / SAMPLE.name).exists(), what="the sample done")
        status = edigw("status", cwd=gateway_dir, env={"ECOLIX_TOKEN": ecolix.token})
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    text = log.read_text(errors="replace")
    assert process.returncode == 0, text[-3000:]
    assert f"created folder {inbox} (inbox of webshop/orders)" in text
    assert "edigw stopped" in text
    assert "Traceback" not in text
    assert "Gateway: healthy" in status.stdout, status.stdout + status.stderr
    config = load_config(gateway_dir / "edigw.yaml", environ=env)
    journal = Journal.open(config.journal_url)
    try:
        [row] = journal.files()
    finally:
        journal.close()
    assert (row.original_name, row.state) == (SAMPLE.name, "done")
    assert not (inbox / SAMPLE.name).exists()


# --------------------------------------------------------------------------- exit statuses


def workspace_with(tmp_path: Path, ecolix: Any, supervisor: dict[str, Any]) -> Path:
    ws = write_workspace(
        tmp_path / "gw",
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={
            "webshop": {"orders": inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders")}
        },
    )
    data = yaml.safe_load(ws.config_path.read_text(encoding="utf-8"))
    data["supervisor"] = supervisor
    ws.config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return ws.config_path


def test_run_exits_3_when_a_loop_keeps_crashing(
    tmp_path: Path, sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edigw.channels.local import LocalInboundChannel

    def broken(self: Any, *, now: float) -> Any:
        raise RuntimeError("always broken")

    monkeypatch.setattr(LocalInboundChannel, "poll", broken)
    config = workspace_with(
        tmp_path, sandbox, {"max_restarts": 1, "first_delay": 0.01, "max_delay": 0.01}
    )
    result = CliRunner().invoke(
        main, ["run", "-c", str(config)], env={"ECOLIX_TOKEN": sandbox.token}
    )
    assert result.exit_code == EXIT_GAVE_UP == 3, result.output
    assert "crashed 2 times within 10 min" in result.output


def test_run_exits_4_when_a_call_is_still_in_flight_at_the_stop_timeout(
    tmp_path: Path, sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edigw.ecolix.client import EcolixClient

    release = threading.Event()
    in_flight = threading.Event()
    real_write = EcolixClient.write

    def stuck_write(self: EcolixClient, *args: Any, **kwargs: Any) -> Any:
        in_flight.set()
        release.wait(60)  # a call on the wire that does not come back
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(EcolixClient, "write", stuck_write)
    config = workspace_with(tmp_path, sandbox, {"stop_timeout": 1})
    write_order_files(
        config.parent / "inbox" / "webshop" / "orders", files=1, orders_per_file=1, prefix="T4"
    )

    def sigterm_once_in_flight() -> None:
        if in_flight.wait(60):
            os.kill(os.getpid(), signal.SIGTERM)  # `run` handles it in this (main) thread

    killer = threading.Thread(target=sigterm_once_in_flight)
    killer.start()
    try:
        # One process: the stuck write is patched into this process's client.
        result = CliRunner().invoke(
            main,
            ["run", "-c", str(config), "--senders", "1", "--processes", "1"],
            env={"ECOLIX_TOKEN": sandbox.token},
        )
    finally:
        release.set()
        killer.join()
    assert result.exit_code == EXIT_STOP_TIMEOUT == 4, result.output
    assert "stop timeout reached: sender 0 still busy" in result.output


def test_run_exits_4_when_the_sending_process_has_a_call_in_flight_at_the_stop_timeout(
    tmp_path: Path,
) -> None:
    # An Ecolix that takes the request and never answers: the connection is queued by the
    # kernel, the request sent, the answer awaited up to the client's 10 s read timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        ecolix = SimpleNamespace(
            base_url=f"http://127.0.0.1:{silent.getsockname()[1]}/api/v1", token="t"
        )
        config = workspace_with(tmp_path, ecolix, {"stop_timeout": 1})
        write_order_files(
            config.parent / "inbox" / "webshop" / "orders", files=1, orders_per_file=1, prefix="P"
        )
        journal_url = load_config(config, environ={"ECOLIX_TOKEN": "t"}).journal_url

        def in_flight() -> bool:
            journal = Journal.open(journal_url)
            try:
                return any(d.state == "sent" for d in journal.documents())
            finally:
                journal.close()

        log = tmp_path / "run.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "edigw.cli", "run", "-c", str(config), "--processes", "2"],
                env={**os.environ, "ECOLIX_TOKEN": "t"},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(in_flight, timeout=60, what="the order's call in flight")
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = log.read_text(errors="replace")
    assert process.returncode == EXIT_STOP_TIMEOUT == 4, text[-3000:]
    assert "stop timeout reached: sending process still busy" in text, text[-3000:]

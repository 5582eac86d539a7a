"""`edigw run` allows two glibc malloc arenas, itself and in the processes it starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from edigw.malloc_arenas import VARIABLE, limit_malloc_arenas
from tests.fixtures.gateway import inbound_flow, wait_until, write_workspace


def without_the_variable() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != VARIABLE}


def test_the_arenas_are_limited_and_written_for_the_processes_started_later() -> None:
    probe = (
        "import os\n"
        "from edigw.malloc_arenas import limit_malloc_arenas\n"
        "print(limit_malloc_arenas(os.environ), os.environ.get('MALLOC_ARENA_MAX'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=without_the_variable(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.split() == ["True", "2"]


def test_an_operators_own_setting_is_left_as_it_is() -> None:
    environ = {VARIABLE: "4"}
    assert limit_malloc_arenas(environ) is False
    assert environ == {VARIABLE: "4"}


def test_edigw_run_starts_its_sending_process_with_two_arenas(tmp_path: Path) -> None:
    ws = write_workspace(
        tmp_path / "gw",
        base_url="http://127.0.0.1:9/api/v1",  # never called: nothing is dropped
        token="t",
        flows={
            "webshop": {"orders": inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders")}
        },
    )
    log = tmp_path / "run.log"
    command = [sys.executable, "-m", "edigw.cli", "run", "-c", str(ws.config_path)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--processes", "2"],
            env={**without_the_variable(), "ECOLIX_TOKEN": "t"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        gateway = psutil.Process(process.pid)

        def sending_process() -> psutil.Process | None:
            for child in gateway.children():
                try:
                    if "multiprocessing" in " ".join(child.cmdline()):
                        return child
                except psutil.Error:
                    continue
            return None

        wait_until(lambda: sending_process() is not None, timeout=60, what="a sending process")
        child = sending_process()
        assert child is not None
        assert child.environ().get(VARIABLE) == "2", log.read_text(errors="replace")[-2000:]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

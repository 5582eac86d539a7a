"""Logs: text lines, or one JSON object a line naming the flow, file and document."""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from edigw.logs import ContextIds, JsonFormatter, configure_logging, log_context
from tests.fixtures.gateway import ROOT, Workspace, inbound_flow, write_workspace

GOOD = ROOT / "samples" / "ecommerce" / "ecommerce-customers-csv" / "clients_export_20261128.csv"


def formatted(*, exc_info: Any = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON line a record logged now (inside any log_context) becomes."""
    record = logging.getLogger("edigw.runtime").makeRecord(
        "edigw.runtime",
        logging.INFO,
        __file__,
        1,
        "D-%d -> %s",
        (40, "done"),
        exc_info,
        extra=extra,
    )
    ContextIds().filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data: dict[str, Any] = json.loads(line)
    return data


def test_a_json_line_has_time_level_logger_and_message() -> None:
    data = formatted()

    assert sorted(data) == ["level", "logger", "message", "thread", "time"]
    assert (data["level"], data["logger"], data["message"]) == (
        "info",
        "edigw.runtime",
        "D-40 -> done",
    )
    assert data["time"].endswith("+00:00")


def test_the_ids_of_the_work_in_hand_are_on_every_line_logged_inside() -> None:
    with log_context(flow="webshop/orders", file="F-12"), log_context(document="D-40"):
        data = formatted()

    assert (data["flow"], data["file"], data["document"]) == ("webshop/orders", "F-12", "D-40")
    assert "document" not in formatted()


def test_a_record_may_name_its_own_ids() -> None:
    with log_context(flow="webshop/orders", file="F-12"):
        data = formatted(extra={"file": "F-13"})

    assert (data["flow"], data["file"]) == ("webshop/orders", "F-13")


def test_each_thread_keeps_its_own_ids() -> None:
    seen: list[dict[str, Any]] = []
    with log_context(file="F-1"):
        thread = threading.Thread(target=lambda: seen.append(formatted()))
        thread.start()
        thread.join()

    assert "file" not in seen[0]


def test_an_exception_is_a_field_of_the_one_line() -> None:
    try:
        raise RuntimeError("the poller broke")
    except RuntimeError:
        data = formatted(exc_info=sys.exc_info())

    assert data["exception"].startswith("Traceback (most recent call last):")
    assert data["exception"].endswith("RuntimeError: the poller broke")


def test_json_logging_covers_edigw_and_the_libraries_it_calls(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # tests/fixtures/isolation.py puts the process's logging set-up back afterwards.
    configure_logging("json")

    with log_context(flow="supplier/invoices"):
        logging.getLogger("edigw.runtime").info("polled")
        logging.getLogger("paramiko.transport").warning("connection reset")
        logging.getLogger("paramiko.transport").info("not shown: libraries from warnings on")

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(d["logger"], d["message"], d["flow"]) for d in lines] == [
        ("edigw.runtime", "polled", "supplier/invoices"),
        ("paramiko.transport", "connection reset", "supplier/invoices"),
    ]


# ------------------------------------------------------------------ edigw run


def gateway_logs(ws: Workspace, *args: str, until: str) -> list[str]:
    """Run ``edigw run`` until a stderr line contains ``until``, then stop it (SIGTERM)."""
    env = {**os.environ, **ws.environ}
    process = subprocess.Popen(
        [sys.executable, "-m", "edigw.cli", "run", "-c", str(ws.config_path), *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    stderr = process.stderr

    def read() -> None:
        for line in stderr:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and not any(until in line for line in seen):
            try:
                seen.append(lines.get(timeout=0.5).rstrip("\n"))
            except queue.Empty:
                continue
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join(timeout=10)
        stderr.close()
    while not lines.empty():
        seen.append(lines.get().rstrip("\n"))
    assert any(until in line for line in seen), "\n".join(seen)
    return seen


def shop(tmp_path: Path, sandbox: Any, **top: Any) -> Workspace:
    ws = write_workspace(
        tmp_path / "gw",
        base_url=sandbox.base_url,
        token=sandbox.token,
        flows={
            "webshop": {
                "customers": inbound_flow("ecommerce-customers-csv.yaml", "webshop", "customers")
            }
        },
    )
    data = yaml.safe_load(ws.config_path.read_text(encoding="utf-8"))
    ws.config_path.write_text(yaml.safe_dump({**data, **top}, sort_keys=False), encoding="utf-8")
    (ws.inbox("webshop", "customers") / GOOD.name).write_bytes(GOOD.read_bytes())
    return ws


def test_run_with_log_format_json_in_the_configuration_names_flow_file_and_document(
    tmp_path: Path, sandbox: Any
) -> None:
    ws = shop(tmp_path, sandbox, log_format="json")

    lines = gateway_logs(ws, until='"document": "D-4"')

    records = [json.loads(line) for line in lines]  # every line is one JSON object
    sent = next(r for r in records if r["message"].startswith("D-1 -> done"))
    assert (sent["flow"], sent["file"], sent["document"]) == ("webshop/customers", "F-1", "D-1")
    taken = next(r for r in records if "F-1 clients_export_20261128.csv -> parsed" in r["message"])
    assert (taken["flow"], taken["file"]) == ("webshop/customers", "F-1")


def test_the_log_format_option_overrides_the_configuration(tmp_path: Path, sandbox: Any) -> None:
    ws = shop(tmp_path, sandbox, log_format="json")

    lines = gateway_logs(ws, "--log-format", "text", until="D-4 -> done")

    assert not any(line.startswith("{") for line in lines)
    assert any(" INFO    edigw.runtime: D-1 -> done" in line for line in lines)

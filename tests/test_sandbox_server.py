"""Running the sandbox: in a thread (as ``edigw demo`` does) and from the command line."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from edigw.cli import main
from edigw.errors import ConfigError
from edigw.sandbox.app import create_app
from edigw.sandbox.operations import parse_rate_limit
from edigw.sandbox.server import run_in_thread, server_config
from tests.fixtures.sandbox import SEED
from tests.support.ports import LOWEST, ephemeral_ports, free_port


def test_run_in_thread_serves_on_a_free_port_until_the_block_ends(tmp_path: Path) -> None:
    with run_in_thread(tmp_path / "s.sqlite", token="T", seed=SEED) as base_url:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/api/v1")
        response = httpx.get(
            f"{base_url}/customers/CUS-0001", headers={"Authorization": "Bearer T"}
        )
        assert response.json()["code"] == "CUS-0001"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base_url}/articles", timeout=2)


def test_the_sandbox_runs_on_uvicorns_c_parser_and_event_loop(tmp_path: Path) -> None:
    """httptools, and uvloop where it installs: the CPU the sandbox saves goes to the gateway
    beside it (``docs/benchmarks.md``); a missing package would silently fall back."""
    config = server_config(create_app(tmp_path / "s.sqlite", token="T", rate_limit="60/minute"))
    config.load()
    assert config.http_protocol_class.__name__ == "HttpToolsProtocol"  # type: ignore[union-attr]
    if sys.platform != "win32":
        loop = config.get_loop_factory()
        assert loop is not None and loop.__module__.startswith("uvloop")


def test_a_database_is_seeded_once_and_then_kept(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    headers = {"Authorization": "Bearer T", "Idempotency-Key": "k-1"}
    body = {
        "code": "KEPT",
        "name": "Kept across restarts",
        "billing_address": {
            "line1": "1 rue A",
            "postal_code": "69001",
            "city": "Lyon",
            "country": "FR",
        },
    }
    with run_in_thread(db, token="T", seed=SEED) as base_url:
        httpx.put(f"{base_url}/customers/KEPT", json=body, headers=headers).raise_for_status()
    with run_in_thread(db, token="T", seed=SEED) as base_url:
        customers = httpx.get(
            f"{base_url}/customers", params={"limit": 1000}, headers=headers
        ).json()["items"]
    assert len(customers) == 51
    assert customers[-1]["code"] == "KEPT"


@pytest.mark.parametrize(
    ("text", "amount", "seconds"),
    [
        pytest.param("600/min", 600, 60, id="min"),
        pytest.param("600/minute", 600, 60, id="minute"),
        pytest.param("10/s", 10, 1, id="s"),
        pytest.param("5000/hour", 5000, 3600, id="hour"),
    ],
)
def test_rate_limits_are_written_n_per_unit(text: str, amount: int, seconds: int) -> None:
    item = parse_rate_limit(text)
    assert (item.amount, item.get_expiry()) == (amount, seconds)


def test_a_malformed_rate_limit_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"invalid rate limit 'lots': expected N/second"):
        parse_rate_limit("lots")


def test_the_sandbox_command_has_help_with_an_example() -> None:
    result = CliRunner().invoke(main, ["sandbox", "--help"])
    assert result.exit_code == 0
    assert "Example: edigw sandbox --port 8800" in result.output
    for option in ("--host", "--port", "--db", "--token", "--rate-limit", "--seed"):
        assert option in result.output


def test_the_sandbox_command_refuses_a_bad_rate_limit_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edigw.cli",
            "sandbox",
            "--db",
            str(tmp_path / "s.sqlite"),
            "--token",
            "T",
            "--rate-limit",
            "often",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert not (tmp_path / "s.sqlite").exists()
    assert result.stderr.splitlines()[-1] == (
        "Error: invalid rate limit 'often': expected N/second, N/minute or N/hour (e.g. 600/min)"
    )


def test_the_servers_of_tests_listen_outside_the_ephemeral_range() -> None:
    """A client connecting to a stopped server's port never gets that port as its own (TCP
    self-connect), which would take the port from the server restarted on it."""
    ephemeral = ephemeral_ports()
    ports = {free_port() for _ in range(50)}
    if ephemeral.start > LOWEST or ephemeral.stop <= 65535:
        assert not any(port in ephemeral for port in ports), sorted(ports)
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # free indeed

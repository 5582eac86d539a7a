"""`edigw run --http`: /healthz, /readyz and /metrics of a real gateway, asked over HTTP.

The gateway runs ``serve`` in a thread against a real sandbox; the endpoints are asked with
httpx on loopback, as a monitoring system would.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from edigw.channels.local import LocalInboundChannel
from edigw.config import GatewayConfig
from edigw.pipeline.metrics import METRIC_NAMES
from edigw.pipeline.runtime import Gateway
from edigw.pipeline.service import RunOutcome, serve
from tests.fixtures.gateway import Workspace, inbound_flow, wait_until, write_workspace
from tests.fixtures.sandbox import SandboxProcess, free_port
from tests.support.cli import edigw
from tests.support.orderfiles import write_order_files

FLOW = "webshop/orders"
#: Restarts quick enough for a test, slow enough that a crashed loop is seen restarting.
SUPERVISOR = {"max_restarts": 50, "window": "10m", "first_delay": 2, "max_delay": 2}


@pytest.fixture
def ecolix(sandbox_factory: Any) -> SandboxProcess:
    server: SandboxProcess = sandbox_factory()
    return server


@pytest.fixture
def workspace(tmp_path: Path, ecolix: SandboxProcess) -> Workspace:
    flow = inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders")
    ws = write_workspace(
        tmp_path / "gw",
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={"webshop": {"orders": flow}},
    )
    data = yaml.safe_load(ws.config_path.read_text(encoding="utf-8"))
    data["supervisor"] = SUPERVISOR
    data["http"] = {"listen": f"127.0.0.1:{free_port()}", "ecolix_check_every": 0.2}
    ws.config_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return ws


class Served:
    """``serve`` in a thread, with an httpx client on its health endpoints."""

    def __init__(self, config: GatewayConfig, processes: int | None = None) -> None:
        assert config.http.listen is not None
        self.config = config
        self.processes = processes
        self.stop = threading.Event()
        self.started = threading.Event()
        self.gateway: Gateway | None = None
        self.outcome: RunOutcome | None = None
        self.thread = threading.Thread(target=self._run, name="serve")
        self.http = httpx.Client(base_url=f"http://{config.http.listen}", timeout=10)

    def _run(self) -> None:
        self.outcome = serve(
            self.config,
            senders=2,
            stop=self.stop,
            on_start=self._started,
            processes=self.processes,
        )

    def _started(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.started.set()

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def ready(self) -> bool:
        return self.get("/readyz").status_code == 200

    def not_ready(self) -> dict[str, str]:
        response = self.get("/readyz")
        if response.status_code != 503:
            return {}
        found: dict[str, str] = response.json()["not_ready"]
        return found


@pytest.fixture
def served(workspace: Workspace, request: pytest.FixtureRequest) -> Iterator[Served]:
    """The gateway as configured (one process), or as ``ARRANGEMENTS`` says."""
    running = Served(workspace.load(), getattr(request, "param", None))
    running.thread.start()
    assert running.started.wait(30), "serve did not start"
    try:
        yield running
    finally:
        running.stop.set()
        running.thread.join(60)
        running.http.close()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics body by (name, labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


#: The metrics are the same whether the senders run in the serving process or in their own.
ARRANGEMENTS = pytest.mark.parametrize(
    "served", [1, 2], indirect=True, ids=["one process", "two processes"]
)


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


# --------------------------------------------------------------------------- healthz, readyz


def test_healthz_answers_200_while_the_process_runs(served: Served) -> None:
    response = served.get("/healthz")
    assert response.status_code == 200
    assert response.json()["alive"] is True


def test_readyz_is_200_once_journal_loops_and_ecolix_are_fine(served: Served) -> None:
    wait_until(served.ready, what="ready")
    body = served.get("/readyz").json()
    assert body == {
        "ready": True,
        "checks": {"journal": "ok", "loops": "ok", "ecolix": "ok"},
        "not_ready": {},
    }


def test_readyz_is_503_naming_ecolix_while_the_sandbox_is_stopped(
    served: Served, ecolix: SandboxProcess
) -> None:
    wait_until(served.ready, what="ready")
    ecolix.stop()
    wait_until(lambda: "ecolix" in served.not_ready(), what="ecolix not ready")
    not_ready = served.not_ready()
    assert list(not_ready) == ["ecolix"]
    assert not_ready["ecolix"].startswith("Ecolix does not answer: cannot reach Ecolix")
    ecolix.start()
    wait_until(served.ready, what="ready again")


def test_readyz_is_503_naming_a_loop_that_is_restarting(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    wait_until(served.ready, what="ready")

    def broken(self: LocalInboundChannel, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("poll bug")

    monkeypatch.setattr(LocalInboundChannel, "poll", broken)
    seen: list[dict[str, str]] = []  # the poller crashes again at once after each restart

    def loops_not_ready() -> bool:
        seen.append(served.not_ready())
        return "loops" in seen[-1]

    wait_until(loops_not_ready, what="loops not ready")
    assert seen[-1] == {
        "loops": f"loop poller {FLOW}: restarting, last error: RuntimeError: poll bug"
    }


def test_the_status_command_shows_what_readyz_names(
    served: Served, ecolix: SandboxProcess, workspace: Workspace
) -> None:
    wait_until(served.ready, what="ready")
    ecolix.stop()
    wait_until(lambda: "ecolix" in served.not_ready(), what="ecolix not ready")
    why = served.not_ready()["ecolix"]
    result = edigw(workspace, "status", "--json")
    assert result.exit_code == 0, result.output
    wait_until(
        lambda: why in edigw(workspace, "status", columns=400).output,
        what="status showing the ecolix condition",
    )


def test_an_unknown_path_is_404(served: Served) -> None:
    assert served.get("/nothing").status_code == 404


# --------------------------------------------------------------------------- metrics


@ARRANGEMENTS
def test_metrics_count_a_processed_file_by_flow_and_state(
    served: Served, workspace: Workspace
) -> None:
    write_order_files(workspace.inbox("webshop", "orders"), files=1, orders_per_file=2, prefix="M")
    inbox = workspace.inbox("webshop", "orders")
    wait_until(lambda: len(list((inbox / "done").glob("*.csv"))) == 1, what="file done")

    def counted() -> bool:
        # A sending process (--processes 2) reports its send times every second.
        text = served.get("/metrics").text
        return value(text, "edigw_files", flow=FLOW, state="done") == 1 and (
            value(text, "edigw_send_duration_seconds_count", flow=FLOW) is not None
        )

    wait_until(counted, what="the done file and its send times in /metrics")
    response = served.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert value(text, "edigw_documents", flow=FLOW, state="done") == 2
    assert value(text, "edigw_retry_queue_documents", flow=FLOW) == 0
    assert value(text, "edigw_oldest_waiting_document_age_seconds", flow=FLOW) == 0
    assert value(text, "edigw_journal_up") == 1
    assert value(text, "edigw_send_duration_seconds_count", flow=FLOW) == 2
    polls = value(text, "edigw_poll_duration_seconds_count", flow=FLOW)
    assert polls is not None and polls >= 1
    assert value(text, "edigw_loop_up", loop=f"poller {FLOW}", kind="poller", flow=FLOW) == 1
    restarts = {"loop": f"poller {FLOW}", "kind": "poller", "flow": FLOW}
    assert value(text, "edigw_loop_restarts_total", **restarts) == 0
    assert value(text, "edigw_ecolix_throttled_total") == 0
    assert value(text, "edigw_ecolix_calls_per_minute_limit") == 100_000
    assert value(text, "edigw_healthy") == 1


@ARRANGEMENTS
def test_metrics_count_calls_per_operation_and_answers_per_status(
    served: Served, workspace: Workspace
) -> None:
    inbox = workspace.inbox("webshop", "orders")
    write_order_files(inbox, files=1, orders_per_file=1, prefix="C")
    wait_until(lambda: len(list((inbox / "done").glob("*.csv"))) == 1, what="file done")
    wait_until(
        lambda: (
            value(served.get("/metrics").text, "edigw_ecolix_responses_total", status="201")
            is not None
        ),
        what="the sending process's calls reported",
    )
    text = served.get("/metrics").text
    assert value(text, "edigw_ecolix_calls_total", operation="orders.create") == 1
    assert value(text, "edigw_ecolix_responses_total", status="201") == 1
    # the readiness check's own read, made while no document was sent
    probes = value(text, "edigw_ecolix_calls_total", operation="articles.list")
    assert probes is not None and probes >= 1


@ARRANGEMENTS
def test_metrics_count_a_loop_restart(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = LocalInboundChannel.poll

    def once(self: LocalInboundChannel, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("poll bug")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(LocalInboundChannel, "poll", once)
    labels = {"loop": f"poller {FLOW}", "kind": "poller", "flow": FLOW}
    wait_until(
        lambda: value(served.get("/metrics").text, "edigw_loop_restarts_total", **labels) == 1,
        what="one restart counted",
    )


# --------------------------------------------------------------------------- starting


def test_run_refuses_an_address_in_use_in_one_line(workspace: Workspace) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = edigw(workspace, "run", "--http", f"127.0.0.1:{port}")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: cannot serve health and metrics on 127.0.0.1:{port}: Address already in use "
        "(http.listen in edigw.yaml or --http: choose a free port)"
    )


def test_run_refuses_an_address_without_a_port(workspace: Workspace) -> None:
    result = edigw(workspace, "run", "--http", "localhost")
    assert result.exit_code == 1
    assert result.output == (
        "Error: --http / http.listen: expected HOST:PORT, e.g. 127.0.0.1:9464, got 'localhost'\n"
    )


# --------------------------------------------------------------------------- dashboard, docs

DOCS = Path(__file__).resolve().parents[1] / "docs"
HISTOGRAM_PARTS = re.compile(r"_(bucket|count|sum)$")


def dashboard_metric_names() -> set[str]:
    """Every ``edigw_*`` name the shipped Grafana dashboard's queries use."""
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    exprs.append(
        next(v for v in dashboard["templating"]["list"] if v["name"] == "flow")["definition"]
    )
    return {name for expr in exprs for name in re.findall(r"\bedigw_[a-z_]+", expr)}


def test_every_metric_the_grafana_dashboard_uses_is_served(served: Served) -> None:
    text = served.get("/metrics").text
    used = dashboard_metric_names()
    assert len(used) >= 12
    for name in sorted(used):
        family = HISTOGRAM_PARTS.sub("", name)
        assert f"# TYPE {name} " in text or f"# TYPE {family} histogram" in text, name


def test_every_metric_served_is_listed_and_documented(served: Served) -> None:
    types = re.findall(r"^# TYPE (\S+) ", served.get("/metrics").text, re.M)
    # prometheus_client adds a *_created series (start time) to each histogram
    assert {name for name in types if not name.endswith("_created")} == set(METRIC_NAMES)
    operations = (DOCS / "operations.md").read_text(encoding="utf-8")
    assert [n for n in METRIC_NAMES if f"`{n}" not in operations] == []


@ARRANGEMENTS
def test_the_senders_in_flight_limit_is_served(served: Served) -> None:
    wait_until(
        lambda: "edigw_senders_in_flight_limit 2.0" in served.get("/metrics").text,
        what="the limit of --senders 2, as the senders report it",
    )
    text = served.get("/metrics").text
    assert re.search(r"^edigw_senders_in_flight [0-2]\.0$", text, re.M), text

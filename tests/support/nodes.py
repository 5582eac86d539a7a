"""Several `edigw run` nodes on one PostgreSQL journal, as subprocesses a test can kill.

Each node has its own folder (its ``edigw.yaml`` and ``data_dir``) and shares with the others
the journal, the inboxes and the Ecolix agreement, as docs/scale-out.md says nodes must. A node
started again under the same name is a new process (a new node name, ``host:pid``) writing a new
log, so the log of the incarnation that was killed stays to be read.

Used by ``tests/test_nodes_failover.py`` and ``tests/test_nodes_chaos.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from edigw.ecolix.client import EcolixClient
from edigw.journal import Journal
from edigw.journal.leases import LeaseRow

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings"
TEMPLATES = ROOT / "templates"
PARTNER = "shop"
#: A file's states once nothing more will happen to it.
FINAL = {"done", "partially_failed", "failed", "skipped_duplicate", "superseded"}


def order_inbox_flow(inbox: Path) -> dict[str, Any]:
    """An inbound flow of web-shop order files polled from ``inbox`` (a shared folder)."""
    return {
        "direction": "inbound",
        "channel": {"type": "local", "path": str(inbox)},
        "mapping": str(MAPPINGS / "ecommerce-orders-csv.yaml"),
        "readiness": {"mode": "stable", "interval": 0.3},
        "poll_interval": 0.2,
    }


def node_config(
    root: Path,
    *,
    flows: dict[str, dict[str, Any]],
    journal: str,
    ecolix: Any,
    takeover: float,
    calls_per_minute: int = 100_000,
    extra: dict[str, Any] | None = None,
) -> Path:
    """A node's own folder and edigw.yaml: its own data_dir, the shared journal and flows."""
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "ecolix": {
            "base_url": ecolix.base_url,
            "token": "${ECOLIX_TOKEN}",
            "calls_per_minute": calls_per_minute,
            "timeouts": {"connect": 2, "read": 10},
        },
        "data_dir": "data",
        "journal": journal,
        "nodes": {"takeover": takeover},
        "retry": {"max_attempts": 6, "first_delay": 0.2, "max_delay": 1},
        **(extra or {}),
        "partners": {PARTNER: {"flows": flows}},
    }
    (root / "edigw.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return root


class Node:
    """One `edigw run` subprocess, logging into ``log_name`` in its folder."""

    def __init__(
        self,
        root: Path,
        token: str,
        *,
        log_name: str = "run.log",
        run_args: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.log = root / log_name
        env = {**os.environ, "ECOLIX_TOKEN": token, "PYTHONPATH": str(ROOT)}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edigw.cli", "run", *run_args],
                cwd=root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.name = f"{os.uname().nodename}:{self.process.pid}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def running(self) -> bool:
        return "edigw running" in self.text()

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a power cut would: nothing is finished, nothing is freed."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


class Cluster:
    """Nodes started on one journal, one sandbox and one set of flows; killed at the end.

    ``start(name)`` again after a node died starts a new incarnation in the same folder;
    ``run_args`` are added to each node's ``edigw run`` command line."""

    def __init__(
        self,
        root: Path,
        ecolix: Any,
        journal: str,
        flows: dict[str, dict[str, Any]],
        *,
        run_args: tuple[str, ...] = (),
        **settings: Any,
    ) -> None:
        self.root = root
        self.run_args = run_args
        self.ecolix = ecolix
        self.journal = journal
        self.flows = flows
        self.settings = settings
        self.started: list[Node] = []

    def start(self, name: str) -> Node:
        folder = node_config(
            self.root / name,
            flows=self.flows,
            journal=self.journal,
            ecolix=self.ecolix,
            **self.settings,
        )
        incarnation = sum(1 for node in self.started if node.root == folder) + 1
        log_name = "run.log" if incarnation == 1 else f"run-{incarnation}.log"
        node = Node(folder, self.ecolix.token, log_name=log_name, run_args=self.run_args)
        self.started.append(node)
        return node

    def kill_all(self) -> None:
        for node in self.started:
            if node.alive():
                node.kill()


def flow_names(flows: Iterable[str]) -> list[str]:
    """``partner/flow`` of each flow, as leases name them."""
    return [f"{PARTNER}/{name}" for name in flows]


def lease_rows(journal_url: str, flows: list[str]) -> dict[str, LeaseRow]:
    journal = Journal.open(journal_url, create=False)
    try:
        return journal.flow_leases(flows)
    finally:
        journal.close()


def leases(journal_url: str, flows: list[str]) -> dict[str, str]:
    """flow -> holder, for the leases not expired."""
    return {
        flow: row.holder for flow, row in lease_rows(journal_url, flows).items() if not row.expired
    }


def all_final(journal_url: str, expected: int) -> bool:
    """At least ``expected`` files journalled, and every one of them final."""
    journal = Journal.open(journal_url, create=False)
    try:
        rows = journal.files(limit=100_000)
    finally:
        journal.close()
    return len(rows) >= expected and all(r.state in FINAL for r in rows)


def unfinished(journal_url: str) -> list[str]:
    """The files not final yet, one line each (what a timed-out wait prints)."""
    journal = Journal.open(journal_url, create=False)
    try:
        rows = journal.files(limit=100_000)
        lines = []
        for r in rows:
            if r.state in FINAL:
                continue
            docs = Counter(
                f"{d.state}@{d.claimed_by}" if d.claimed_by else d.state
                for d in journal.documents_of(r.id)
            )
            lines.append(
                f"{r.ref} {r.flow} {r.original_name} {r.state} reader={r.reader} docs={dict(docs)}"
            )
        return lines
    finally:
        journal.close()


def created_orders(ecolix: Any) -> Counter[str]:
    """How many orders Ecolix holds under each external reference."""
    with EcolixClient(ecolix.base_url, ecolix.token) as client:
        return Counter(
            str(o.get("external_reference", "")) for o in client.iter_list("orders.list")
        )


def error_lines(text: str) -> list[str]:
    """The log lines at ERROR level, and tracebacks: none is expected from a race."""
    return [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]

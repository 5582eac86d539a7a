"""Crash safety: `edigw run` killed with SIGKILL at random moments loses nothing and posts nothing twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from edigw.ecolix.client import EcolixClient
from tests.fixtures.gateway import webshop_orders_workspace
from tests.support.orderfiles import write_order_files

FILES = 60
ORDERS_PER_FILE = 5
KILLS = 5


def start_gateway(config: Path, token: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ECOLIX_TOKEN": token}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "edigw.cli", "run", "-c", str(config), "--senders", "3"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_posts_nothing_twice(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    ecolix = sandbox_factory()
    ws = webshop_orders_workspace(
        tmp_path / "gw",
        ecolix,
        retry={"max_attempts": 50, "first_delay": 0.1, "max_delay": 0.5},
        readiness={"mode": "min_age", "seconds": 0},
    )
    numbers = write_order_files(
        ws.inbox("webshop", "orders"), files=FILES, orders_per_file=ORDERS_PER_FILE, prefix="CRASH"
    )
    log = tmp_path / "gateway.log"
    rng = random.Random(20261128)
    for _ in range(KILLS):
        process = start_gateway(ws.config_path, ecolix.token, log)
        time.sleep(rng.uniform(0.4, 2.0))
        process.send_signal(signal.SIGKILL)
        process.wait()

    offset = log.stat().st_size
    process = start_gateway(ws.config_path, ecolix.token, log)
    try:
        deadline = time.monotonic() + 180
        # A SIGTERM before the gateway installed its handlers would kill it outright.
        while b"edigw running" not in log.read_bytes()[offset:] and time.monotonic() < deadline:
            time.sleep(0.1)
        while time.monotonic() < deadline:
            journal = ws.journal()
            try:
                rows = journal.files(limit=1000)
                finished = len(rows) >= FILES and all(
                    r.state in ("done", "failed", "partially_failed") for r in rows
                )
            finally:
                journal.close()
            if finished:
                break
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

    journal = ws.journal()
    try:
        rows = journal.files(limit=1000)
        docs = [d for r in rows for d in journal.documents_of(r.id)]
    finally:
        journal.close()
    with EcolixClient(ecolix.base_url, ecolix.token) as client:
        refs = Counter(
            o["external_reference"]
            for o in client.iter_list("orders.list")
            if str(o.get("external_reference", "")).startswith("CRASH")
        )

    assert process.returncode == 0, log.read_text(errors="replace")[-3000:]
    assert len(rows) == FILES, "every file was taken exactly once"
    assert {r.state for r in rows} == {"done"}, [
        (r.id, r.state, r.error) for r in rows if r.state != "done"
    ]
    assert Counter(d.business_key for d in docs) == Counter(numbers), (
        "one journal document per order"
    )
    assert {d.state for d in docs} == {"done"}
    assert set(refs) == set(numbers), "zero lost"
    assert max(refs.values()) == 1, "zero twice"
    assert len(list((ws.inbox("webshop", "orders") / "done").glob("*.csv"))) == FILES

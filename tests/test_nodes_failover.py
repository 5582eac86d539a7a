"""Two `edigw run` nodes on one PostgreSQL journal, one shared inbox per flow, one Ecolix:
the flows are split between them, a node killed with SIGKILL has its flows taken over, and
every order dropped across the kill is created exactly once, with nothing left behind."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.gateway import wait_until
from tests.support.nodes import (
    Cluster,
    all_final,
    created_orders,
    error_lines,
    flow_names,
    lease_rows,
    leases,
    order_inbox_flow,
    unfinished,
)
from tests.support.orderfiles import write_order_files

pytestmark = pytest.mark.postgres

FLOWS = [f"orders{n}" for n in range(6)]
LED = flow_names(FLOWS)
TAKEOVER = 2.0  # seconds: short, for the test (15 s by default)


@pytest.fixture
def cluster(tmp_path: Path, sandbox_factory: Any, postgres_url: str) -> Iterator[Cluster]:
    inboxes = tmp_path / "inbox"
    flows = {name: order_inbox_flow(inboxes / name) for name in FLOWS}
    for name in FLOWS:
        (inboxes / name).mkdir(parents=True)
    started = Cluster(tmp_path, sandbox_factory(), postgres_url, flows, takeover=TAKEOVER)
    try:
        yield started
    finally:
        started.kill_all()


def inbox_files(inboxes: Path) -> list[str]:
    return sorted(p.name for name in FLOWS for p in (inboxes / name).glob("*.csv"))


def drop(inboxes: Path, *, prefix: str, files: int) -> list[str]:
    """``files`` order files of 4 orders in each flow's inbox; the order numbers."""
    numbers: list[str] = []
    for n, name in enumerate(FLOWS):
        numbers += write_order_files(
            inboxes / name, files=files, orders_per_file=4, prefix=f"{prefix}{n}x", seed=n
        )
    return numbers


def test_two_nodes_split_the_flows_and_one_takes_over_when_the_other_is_killed(
    cluster: Cluster,
) -> None:
    journal_url, inboxes = cluster.journal, cluster.root / "inbox"
    a = cluster.start("node-a")
    wait_until(a.running, what="node a running")
    b = cluster.start("node-b")
    wait_until(b.running, what="node b running")

    def split_evenly() -> bool:
        held = Counter(leases(journal_url, LED).values())
        return sorted(held.values()) == [3, 3] and set(held) == {a.name, b.name}

    wait_until(split_evenly, timeout=30, what="the six flows split 3 and 3")
    print(f"\nflows led: {dict(Counter(leases(journal_url, LED).values()))}")

    first = drop(inboxes, prefix="A", files=2)
    wait_until(
        lambda: not inbox_files(inboxes) and all_final(journal_url, 12),
        what="the first files done",
    )

    second = drop(inboxes, prefix="B", files=3)
    time.sleep(0.5)  # some of them in hand when the node dies
    a_flows = sorted(f for f, holder in leases(journal_url, LED).items() if holder == a.name)
    a.process.send_signal(signal.SIGKILL)
    killed = datetime.now(UTC)
    a.process.wait(timeout=10)

    wait_until(
        lambda: all(leases(journal_url, LED).get(f) == b.name for f in a_flows),
        timeout=30,
        what="node b leading node a's flows",
    )
    rows = lease_rows(journal_url, LED)
    took_over = max((rows[f].acquired_at - killed).total_seconds() for f in a_flows)
    print(f"takeover of {len(a_flows)} flows after SIGKILL: {took_over:.2f} s (bound {TAKEOVER} s)")

    try:
        wait_until(
            lambda: not inbox_files(inboxes) and all_final(journal_url, 12 + 18),
            timeout=40,
            what="every file done, none left in an inbox",
        )
    except pytest.fail.Exception:
        print("in the inboxes:", inbox_files(inboxes))
        print("not final:", *unfinished(journal_url), sep="\n  ")
        print("node b's log (tail):", *b.text().splitlines()[-60:], sep="\n  ")
        raise
    assert b.stop() == 0

    created = created_orders(cluster.ecolix)
    assert {n: created[n] for n in first + second} == dict.fromkeys(first + second, 1)
    assert error_lines(b.text()) == []
    assert error_lines(a.text()) == []
    assert inbox_files(inboxes) == []

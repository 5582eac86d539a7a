"""Three `edigw run` nodes on one PostgreSQL journal, killed at random (issue 14).

One shared inbox per inbound flow, one Ecolix sandbox whose rate limit is the agreement
(600 calls a minute, which every node's ``calls_per_minute`` says too), order exports every
two seconds into shared outboxes, the archive in the journal database (``kind: postgresql``).
Files are dropped in waves while a random node is killed with SIGKILL, its flows taken over,
and the node started again, until every file has an outcome. Then:

- every order is in Ecolix exactly once;
- every exported record (an order at one ``updated_at``) is in exactly one partner file of
  each export, and every order Ecolix holds is in one (no boundary duplicate, none lost);
- no node's log, of any incarnation, holds an ERROR line or a traceback: none is allowed
  (a duplicate key, a failed move, a lost claim would each be a race);
- Ecolix answered no call with 429;
- the takeover times measured after each kill are printed (database clock: lease
  ``acquired_at`` minus the moment of the kill).

The issue's figure is 1,000 files; the default here is 120 so that the test stays under
about a minute and a half. Run the full figure with::

    EDIGW_CHAOS_FILES=1000 pytest -s tests/test_nodes_chaos.py

A node killed in the few milliseconds between delivering an export file and journalling it
leaves its recorded delivery behind (``export_deliveries``); the next leader completes it
before running the flow, so the file's records are not delivered again
(``test_a_node_killed_between_delivering_a_file_and_moving_the_mark_sends_no_record_twice``).

``EDIGW_CHAOS_SEED`` repeats a run's choice of nodes to kill and of delays (printed); the default
is one fixed seed, ``random`` draws one.
"""

from __future__ import annotations

import csv
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edigw.ecolix.client import EcolixClient
from tests.fixtures.gateway import wait_until
from tests.support.nodes import (
    TEMPLATES,
    Cluster,
    Node,
    all_final,
    created_orders,
    error_lines,
    flow_names,
    lease_rows,
    leases,
    order_inbox_flow,
)
from tests.support.orderfiles import write_order_files

FILES = int(os.environ.get("EDIGW_CHAOS_FILES", "120"))
#: The run's time grows with the files (about 0.4 s a file): the suite's 300 s would cut a
#: 1,000-file run short.
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(max(300, 2 * FILES))]

#: One fixed choice of kills and delays by default, so that CI repeats one scenario (thread
#: timing still varies); ``EDIGW_CHAOS_SEED=random`` draws a new one, printed to repeat it.
_SEED = os.environ.get("EDIGW_CHAOS_SEED", "729999")
SEED = random.SystemRandom().randrange(10**6) if _SEED == "random" else int(_SEED)
ORDERS_PER_FILE = 4
WAVES = 6
AGREEMENT = 600  # calls a minute: the sandbox's limit and every node's budget
TAKEOVER = 2.0  # seconds: short, for the test (15 s by default)
INBOUND = [f"orders{n}" for n in range(4)]
EXPORTS = ["export-a", "export-b"]
NODES = ["node-a", "node-b", "node-c"]
LED = flow_names(INBOUND + EXPORTS)


def orders_export(outbox: Path) -> dict[str, Any]:
    """A delta export of Ecolix's orders, one CSV line per order, every two seconds."""
    return {
        "direction": "outbound",
        "query": {"resource": "orders.list"},
        "template": str(TEMPLATES / "crm-orders.csv.j2"),
        "filename": "{partner}_{flow}_{seq:05d}.csv",
        "channel": {"type": "local", "path": str(outbox)},
        "schedule": {"every": 2},
    }


@pytest.fixture
def cluster(tmp_path: Path, sandbox_factory: Any, postgres_url: str) -> Iterator[Cluster]:
    flows = {name: order_inbox_flow(tmp_path / "inbox" / name) for name in INBOUND}
    flows |= {name: orders_export(tmp_path / "outbox" / name) for name in EXPORTS}
    for name in INBOUND:
        (tmp_path / "inbox" / name).mkdir(parents=True)
    for name in EXPORTS:
        (tmp_path / "outbox" / name).mkdir(parents=True)
    started = Cluster(
        tmp_path,
        sandbox_factory(rate_limit=f"{AGREEMENT}/minute"),
        postgres_url,
        flows,
        takeover=TAKEOVER,
        calls_per_minute=AGREEMENT,
        extra={"archive": {"kind": "postgresql"}},
    )
    try:
        yield started
    finally:
        started.kill_all()


def drop_wave(inboxes: Path, wave: int, files: int) -> list[str]:
    """``files`` order files spread over the inbound flows' inboxes; the order numbers."""
    numbers: list[str] = []
    for n, name in enumerate(INBOUND):
        share = files // len(INBOUND) + (1 if n < files % len(INBOUND) else 0)
        if share:
            numbers += write_order_files(
                inboxes / name,
                files=share,
                orders_per_file=ORDERS_PER_FILE,
                prefix=f"W{wave}F{n}x",
                seed=wave * 100 + n,
            )
    return numbers


def inbox_files(inboxes: Path) -> list[str]:
    return sorted(p.name for name in INBOUND for p in (inboxes / name).glob("*.csv"))


def exported(outbox: Path) -> Counter[tuple[str, str]]:
    """(order number, updated_at) of every line of every partner file of one export."""
    lines: Counter[tuple[str, str]] = Counter()
    for path in sorted(outbox.glob("shop_*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter=";"):
                lines[(row["number"], row["updated_at"])] += 1
    return lines


def references(outbox: Path) -> set[str]:
    """The external references (the shop's order numbers) in one export's partner files."""
    found: set[str] = set()
    for path in sorted(outbox.glob("shop_*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            found |= {row["external_reference"] for row in csv.DictReader(f, delimiter=";")}
    return found


def ecolix_orders(ecolix: Any) -> set[str]:
    """The number of every order Ecolix holds (the seeded ones and those the nodes created)."""
    with EcolixClient(ecolix.base_url, ecolix.token) as client:
        return {str(order["number"]) for order in client.iter_list("orders.list")}


def by_status(calls: dict[str, dict[str, int]]) -> Counter[str]:
    """Calls Ecolix answered, by HTTP status, every operation together."""
    found: Counter[str] = Counter()
    for statuses in calls.values():
        found.update(statuses)
    return found


class Chaos:
    """Kills a random node, measures how long its flows wait, starts it again."""

    def __init__(self, cluster: Cluster, rng: random.Random) -> None:
        self.cluster = cluster
        self.rng = rng
        self.nodes: dict[str, Node] = {}
        self.takeovers: list[float] = []

    def start(self, name: str) -> None:
        self.nodes[name] = self.cluster.start(name)
        wait_until(self.nodes[name].running, timeout=60, what=f"{name} running")

    def kill_one(self) -> None:
        name = self.rng.choice(sorted(self.nodes))
        victim = self.nodes[name]
        held = [
            f for f, holder in leases(self.cluster.journal, LED).items() if holder == victim.name
        ]
        victim.kill()
        killed = datetime.now(UTC)

        def taken_over() -> bool:
            now = leases(self.cluster.journal, LED)
            return all(now.get(f) not in (None, victim.name) for f in held)

        wait_until(taken_over, timeout=10 * TAKEOVER, what=f"{name}'s flows {held} taken over")
        rows = lease_rows(self.cluster.journal, LED)
        for flow in held:
            self.takeovers.append((rows[flow].acquired_at - killed).total_seconds())
        time.sleep(self.rng.uniform(0, TAKEOVER))  # down a while, then back
        self.start(name)


def test_three_nodes_killed_at_random_take_every_file_in_once_and_export_every_order_once(
    cluster: Cluster,
) -> None:
    print(f"\nchaos: {FILES} files of {ORDERS_PER_FILE} orders, seed {SEED}")
    inboxes, outboxes = cluster.root / "inbox", cluster.root / "outbox"
    chaos = Chaos(cluster, random.Random(SEED))
    for name in NODES:
        chaos.start(name)
    began = time.monotonic()

    dropped: list[str] = []
    for wave in range(WAVES):
        files = FILES // WAVES + (1 if wave < FILES % WAVES else 0)
        dropped += drop_wave(inboxes, wave, files)
        time.sleep(chaos.rng.uniform(0.2, 1.5))  # some of them in hand when a node dies
        chaos.kill_one()
    while not (not inbox_files(inboxes) and all_final(cluster.journal, FILES)):
        time.sleep(chaos.rng.uniform(1, 3))
        if not inbox_files(inboxes) and all_final(cluster.journal, FILES):
            break
        chaos.kill_one()
        assert time.monotonic() - began < 60 + FILES * ORDERS_PER_FILE * 60 / AGREEMENT * 2

    for name in EXPORTS:
        wait_until(
            lambda name=name: set(dropped) <= references(outboxes / name),  # type: ignore[misc]
            timeout=30,
            what=f"every order created exported by shop/{name}",
        )
    for node in chaos.nodes.values():
        assert node.stop() == 0
    calls = cluster.ecolix.calls()  # before the checks' own reads below
    holds = ecolix_orders(cluster.ecolix)

    answered = by_status(calls)
    took = sorted(chaos.takeovers)
    print(
        f"{len(dropped) // ORDERS_PER_FILE} files in {time.monotonic() - began:.0f} s, "
        f"{len(cluster.started) - len(NODES)} kills; takeover of a killed node's flow: "
        f"min {took[0]:.2f} s, median {took[len(took) // 2]:.2f} s, max {took[-1]:.2f} s "
        f"over {len(took)} flows (bound {TAKEOVER} s); Ecolix answered {dict(answered)}"
    )
    created = created_orders(cluster.ecolix)
    assert {n: created[n] for n in dropped} == dict.fromkeys(dropped, 1)
    for name in EXPORTS:
        lines = exported(outboxes / name)
        assert [line for line, n in lines.items() if n > 1] == [], f"shop/{name} duplicates"
        assert {n for n, _ in lines} >= holds, f"shop/{name} lost records"
    assert {
        node.log.relative_to(cluster.root).as_posix(): error_lines(node.text())
        for node in cluster.started
    } == {node.log.relative_to(cluster.root).as_posix(): [] for node in cluster.started}
    assert answered["429"] == 0
    assert inbox_files(inboxes) == []

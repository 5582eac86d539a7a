"""The inbound pipeline end to end: local drop folder → journal → mapping → real sandbox."""

from __future__ import annotations

import logging
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from edigw.ecolix.client import EcolixClient
from edigw.pipeline.assembly import open_parts
from edigw.pipeline.runtime import Gateway
from tests.fixtures.gateway import (
    ROOT,
    files_final,
    inbound_flow,
    running_gateway,
    wait_until,
    webshop_orders_workspace,
    write_workspace,
)
from tests.support.orderfiles import HEADER, OrderFactory, write_order_files

ORDERS_MAPPING = "ecommerce-orders-csv.yaml"


def sandbox_orders(sandbox: Any, prefix: str) -> list[dict[str, Any]]:
    with EcolixClient(sandbox.base_url, sandbox.token) as client:
        return [
            o
            for o in client.iter_list("orders.list")
            if str(o.get("external_reference", "")).startswith(prefix)
        ]


@pytest.fixture
def ecolix(sandbox_factory: Any) -> Any:
    return sandbox_factory()


orders_workspace = webshop_orders_workspace


@pytest.fixture
def workspace(tmp_path: Path, ecolix: Any) -> Any:
    return orders_workspace(tmp_path / "gw", ecolix)


def test_dropped_order_files_become_ecolix_orders_and_sources_move_to_done(
    workspace: Any, ecolix: Any
) -> None:
    inbox = workspace.inbox("webshop", "orders")
    numbers = write_order_files(inbox, files=3, orders_per_file=2, prefix="DROP")
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, 3), what="three files done")
        states = {r.original_name: r.state for r in parts.journal.files()}
    assert set(states.values()) == {"done"}
    assert sorted(o["external_reference"] for o in sandbox_orders(ecolix, "DROP")) == sorted(
        numbers
    )
    assert sorted(p.name for p in (inbox / "done").iterdir()) == sorted(states)
    assert not list(inbox.glob("*.csv"))


def test_a_source_is_moved_only_after_its_archived_copy_is_on_disk(
    workspace: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive's fsyncs are deferred off the intake path, never past the source's move."""
    happened: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        happened.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        happened.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    inbox = workspace.inbox("webshop", "orders")
    write_order_files(inbox, files=1, orders_per_file=1, prefix="SYNC")
    [source] = inbox.glob("*.csv")
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, 1), what="the file done")
        wait_until(lambda: not source.exists(), what="the source moved")
        [row] = parts.journal.files()
    moved = happened.index(("replace", str(source)))
    assert ("fsync", row.archive_path) in happened[:moved]
    assert ("fsync", str(Path(row.archive_path).parent)) in happened[:moved]


def test_a_file_that_could_not_be_archived_is_taken_in_once_the_archive_works(
    workspace: Any, ecolix: Any, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = workspace.root / "data" / "archive" / ".tmp"  # the archive's temp folder
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the archive needs a folder")
    inbox = workspace.inbox("webshop", "orders")
    numbers = write_order_files(inbox, files=1, orders_per_file=2, prefix="LATER")
    with caplog.at_level(logging.ERROR), running_gateway(workspace) as parts:
        wait_until(lambda: "cannot create" in caplog.text, what="the intake failing")
        assert parts.journal.files() == []
        blocker.unlink()
        wait_until(files_final(parts, 1), what="the file taken in and done")
        states = [r.state for r in parts.journal.files()]
    assert states == ["done"]
    assert sorted(o["external_reference"] for o in sandbox_orders(ecolix, "LATER")) == sorted(
        numbers
    )


def test_one_bad_order_does_not_sink_its_neighbours(workspace: Any, ecolix: Any) -> None:
    inbox = workspace.inbox("webshop", "orders")
    factory = OrderFactory.from_seed()
    rng = random.Random(3)
    good = factory.order_rows("MIX-1", rng)
    bad = [row.replace("CUS-", "NOBODY-") for row in factory.order_rows("MIX-2", rng)]
    also_good = factory.order_rows("MIX-3", rng)
    (inbox / "mixed.csv").write_text(
        "\r\n".join([HEADER, *good, *bad, *also_good]) + "\r\n", encoding="utf-8-sig"
    )
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, 1), what="the file's outcome")
        row = parts.journal.files()[0]
        docs = {d.business_key: d for d in parts.journal.documents_of(row.id)}
    assert row.state == "partially_failed"
    assert docs["MIX-1"].state == "done" and docs["MIX-3"].state == "done"
    assert docs["MIX-2"].state == "failed"
    assert "NOBODY-" in (docs["MIX-2"].error or "")
    assert sorted(o["external_reference"] for o in sandbox_orders(ecolix, "MIX")) == [
        "MIX-1",
        "MIX-3",
    ]
    report = inbox / "error" / "mixed.csv.error.txt"
    assert report.exists()
    assert f"F-{row.id}" in report.read_text(encoding="utf-8")


def test_identical_content_dropped_again_is_not_sent_twice(workspace: Any, ecolix: Any) -> None:
    inbox = workspace.inbox("webshop", "orders")
    write_order_files(inbox, files=1, orders_per_file=2, prefix="TWICE")
    original = next(inbox.glob("*.csv"))
    copy = workspace.root / "copy.csv"
    shutil.copyfile(original, copy)
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, 1), what="first file")
        shutil.copyfile(copy, inbox / "again.csv")
        wait_until(files_final(parts, 2), what="second file")
        states = sorted(r.state for r in parts.journal.files())
    assert states == ["done", "skipped_duplicate"]
    assert len(sandbox_orders(ecolix, "TWICE")) == 2


def test_content_that_failed_before_is_skipped_with_the_replay_to_use_not_stuck(
    workspace: Any,
) -> None:
    inbox = workspace.inbox("webshop", "orders")
    factory = OrderFactory.from_seed()
    rows = factory.order_rows("AGAIN-1", random.Random(5))
    content = "\r\n".join([HEADER, *(r.replace("CUS-", "NOBODY-") for r in rows)]) + "\r\n"
    (inbox / "first.csv").write_text(content, encoding="utf-8-sig")
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, 1), what="first file")
        (inbox / "again.csv").write_text(content, encoding="utf-8-sig")
        wait_until(files_final(parts, 2), what="second file")
        wait_until(lambda: not (inbox / "again.csv").exists(), what="the copy moved away")
        first, again = sorted(parts.journal.files(), key=lambda r: r.id)
    assert first.state == "failed"
    assert again.state == "skipped_duplicate"
    assert again.error is not None and f"edigw replay F-{first.id}" in again.error


def test_duplicates_process_sends_identical_content_again_under_new_keys(
    tmp_path: Path, ecolix: Any
) -> None:
    ws = orders_workspace(tmp_path / "gw", ecolix, duplicates="process")
    inbox = ws.inbox("webshop", "orders")
    write_order_files(inbox, files=1, orders_per_file=1, prefix="PROC")
    content = next(inbox.glob("*.csv")).read_bytes()
    with running_gateway(ws) as parts:
        wait_until(files_final(parts, 1), what="first file")
        (inbox / "again.csv").write_bytes(content)
        wait_until(files_final(parts, 2), what="second file")
        first, again = sorted(parts.journal.files(), key=lambda r: r.id)
        [doc_1] = parts.journal.documents_of(first.id)
        [doc_2] = parts.journal.documents_of(again.id)
    assert first.state == "done"
    assert again.state != "skipped_duplicate"
    assert doc_2.state in ("done", "failed")  # sent: Ecolix's own rules decide
    assert doc_2.idempotency_key != doc_1.idempotency_key
    assert doc_2.attempts >= 1


def test_documents_wait_while_ecolix_is_down_then_all_go_through_in_file_order(
    tmp_path: Path, ecolix: Any
) -> None:
    workspace = orders_workspace(tmp_path / "gw", ecolix, ordered=True)  # file order asserted
    inbox = workspace.inbox("webshop", "orders")
    ecolix.stop()
    numbers = write_order_files(inbox, files=2, orders_per_file=4, prefix="DOWN")
    with running_gateway(workspace) as parts:
        wait_until(
            lambda: any(
                d.state == "retry_wait"
                for r in parts.journal.files()
                for d in parts.journal.documents_of(r.id)
            ),
            what="a document waiting for a retry",
        )
        time.sleep(1.0)  # a few more failed attempts while Ecolix stays down
        ecolix.start()
        wait_until(files_final(parts, 2), timeout=60, what="all files done after Ecolix returns")
        rows = parts.journal.files()
        docs = [d for r in rows for d in parts.journal.documents_of(r.id)]
    assert {r.state for r in rows} == {"done"}
    assert {d.attempts for d in docs} == {1}  # the tries refused while Ecolix was down never left
    assert max(d.not_sent for d in docs) >= 1
    orders = sandbox_orders(ecolix, "DOWN")
    assert sorted(o["external_reference"] for o in orders) == sorted(numbers)
    by_ref = {o["external_reference"]: o["number"] for o in orders}
    for f in range(2):
        in_file = [by_ref[f"DOWN{f:04d}-{n}"] for n in range(4)]
        assert in_file == sorted(in_file), "Ecolix numbers follow the order of the file"


def test_documents_wait_while_ecolix_answers_503(workspace: Any, ecolix: Any) -> None:
    ecolix.inject_faults(503, 12)
    inbox = workspace.inbox("webshop", "orders")
    numbers = write_order_files(inbox, files=1, orders_per_file=3, prefix="SVC")
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, 1), timeout=60, what="the file done")
        row = parts.journal.files()[0]
    assert row.state == "done"
    assert sorted(o["external_reference"] for o in sandbox_orders(ecolix, "SVC")) == sorted(numbers)


def test_stopping_does_not_wait_for_the_call_budget_and_gives_back_what_was_not_sent(
    tmp_path: Path, ecolix: Any
) -> None:
    flow = inbound_flow(ORDERS_MAPPING, "webshop", "orders")
    workspace = write_workspace(
        tmp_path / "gw",
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={"webshop": {"orders": flow}},
        calls_per_minute=1,  # after the first call, the next one waits about a minute
    )
    write_order_files(
        workspace.inbox("webshop", "orders"), files=1, orders_per_file=3, prefix="CAP"
    )
    with open_parts(workspace.load()) as parts:
        gateway = Gateway(parts, senders=2)
        gateway.start()
        try:
            wait_until(lambda: parts.client.usage.calls == 1, what="the minute's one call")
            wait_until(lambda: parts.client.usage.waited_seconds > 0, what="a call waiting")
        finally:
            gateway.stop()
            gateway.join(timeout=10)
        assert not any(thread.is_alive() for thread in gateway.threads)
        [row] = parts.journal.files()
        docs = sorted((d.state, d.attempts) for d in parts.journal.documents_of(row.id))
    assert docs == [("done", 1), ("pending", 0), ("pending", 0)]
    assert len(sandbox_orders(ecolix, "CAP")) == 1


def test_a_file_written_slowly_is_not_read_before_it_is_complete(
    workspace: Any, ecolix: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer adds 80 bytes before each look at the folder, however long the looks are
    apart (a writer paced by the clock would outlast the readiness interval on a loaded
    machine): the file grows between any two looks, until it is whole."""
    from edigw.channels.local import LocalInboundChannel

    staging = tmp_path / "staging"
    write_order_files(staging, files=1, orders_per_file=6, prefix="SLOW")
    content = next(staging.glob("*.csv")).read_bytes()
    target = workspace.inbox("webshop", "orders") / "slow.csv"
    chunks = [content[i : i + 80] for i in range(0, len(content), 80)]
    real_poll = LocalInboundChannel.poll

    def poll(self: LocalInboundChannel, *, now: float) -> Any:
        if chunks:
            with target.open("ab") as out:
                out.write(chunks.pop(0))
        return real_poll(self, now=now)

    monkeypatch.setattr(LocalInboundChannel, "poll", poll)
    with running_gateway(workspace) as parts:
        wait_until(files_final(parts, 1), what="the slow file")
        rows = parts.journal.files()
    assert chunks == []
    assert len(rows) == 1
    assert rows[0].size == len(content)
    assert rows[0].state == "done"
    assert len(sandbox_orders(ecolix, "SLOW")) == 6


def test_replay_with_a_corrected_mapping_sends_only_what_failed(
    tmp_path: Path, ecolix: Any
) -> None:
    mapping_dir = tmp_path / "mapping"
    shutil.copytree(ROOT / "mappings", mapping_dir)
    ws = orders_workspace(tmp_path / "gw", ecolix, mapping=str(mapping_dir / ORDERS_MAPPING))
    inbox = ws.inbox("webshop", "orders")
    factory = OrderFactory.from_seed()
    rng = random.Random(5)
    good = factory.order_rows("RPL-1", rng)
    odd_payment = [
        r.replace("Carte bancaire", "Paiement fantaisie") for r in factory.order_rows("RPL-2", rng)
    ]
    (inbox / "replay.csv").write_text(
        "\r\n".join([HEADER, *good, *odd_payment]) + "\r\n", encoding="utf-8-sig"
    )
    with running_gateway(ws) as parts:
        wait_until(files_final(parts, 1), what="first outcome")
    journal = ws.journal()
    row = journal.files()[0]
    docs = {d.business_key: d for d in journal.documents_of(row.id)}
    assert row.state == "partially_failed"
    assert docs["RPL-2"].state == "failed"
    assert "Paiement fantaisie" in (docs["RPL-2"].error or "")

    lookups = [p for p in mapping_dir.rglob("*.csv") if "Carte bancaire" in p.read_text("utf-8")]
    assert lookups, "the orders mapping keeps payment methods in a lookup table"
    table = lookups[0]
    first = table.read_text("utf-8").splitlines()[1]
    cb_code = first.split(",")[1] if "," in first else first.split(";")[1]
    sep = "," if "," in first else ";"
    with table.open("a", encoding="utf-8") as out:
        out.write(f"Paiement fantaisie{sep}{cb_code}\n")

    from edigw.pipeline.replay import ReplayItem, replay_items

    results = list(replay_items(ws.load(), [ReplayItem("F", row.id)], dry_run=False))
    journal.close()
    journal = ws.journal()
    lines = results[0].lines()
    assert any("already done" in line and "RPL-1" in line for line in lines)
    assert any("sent again" in line and "RPL-2" in line for line in lines)
    assert journal.file(row.id).state == "done"
    assert sorted(o["external_reference"] for o in sandbox_orders(ecolix, "RPL")) == [
        "RPL-1",
        "RPL-2",
    ]
    # Replaying a done file again creates nothing.
    again = list(replay_items(ws.load(), [ReplayItem("F", row.id)], dry_run=False))
    assert all("sent again" not in line for line in again[0].lines())
    assert len(sandbox_orders(ecolix, "RPL")) == 2
    journal.close()


def test_a_document_that_keeps_failing_temporarily_fails_after_its_attempts(
    tmp_path: Path, ecolix: Any
) -> None:
    ws = orders_workspace(
        tmp_path / "gw", ecolix, retry={"max_attempts": 2, "first_delay": 0.1, "max_delay": 0.2}
    )
    ecolix.inject_faults(503, 1000)  # Ecolix answers, unavailable: every call is an attempt
    write_order_files(ws.inbox("webshop", "orders"), files=1, orders_per_file=1, prefix="GIVEUP")
    with running_gateway(ws) as parts:
        wait_until(files_final(parts, 1), timeout=60, what="the file to fail")
        row = parts.journal.files()[0]
        [doc] = parts.journal.documents_of(row.id)
    assert row.state == "failed"
    assert doc.state == "failed"
    assert doc.attempts == 2
    assert (doc.error or "").startswith("gave up after 2 attempts; last error:")

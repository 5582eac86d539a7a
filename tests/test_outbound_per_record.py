"""Exports that write one file per record (``split: record``), against the real sandbox.

One status change, one file, named from the record: each is its own journal run, the mark
moves after each delivered file, so no change is sent twice and none is lost, even when a
delivery fails halfway through a run.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edigw.channels.base import Delivered, UploadSettings
from edigw.channels.local import LocalOutboundChannel, LocalOutboundSettings
from edigw.errors import ChannelError
from edigw.outbound.flow import ExportFlow
from tests.test_outbound_export import NOW, TEMPLATES, Gateway, _gateway

PATTERN = "{record[order_number]}_{record[status]}_{seq:04d}.csv"


@pytest.fixture
def fresh(sandbox_factory, tmp_path) -> Iterator[Gateway]:
    yield from _gateway(sandbox_factory(), tmp_path)


def states_flow(**changes: Any) -> ExportFlow:
    flow = ExportFlow(
        partner="shop",
        flow="order-states",
        resource="order_states.list",
        template=TEMPLATES / "ecommerce-order-states.csv.j2",
        filename=PATTERN,
        timezone="Europe/Paris",
        split="record",
    )
    return replace(flow, **changes)


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")), delimiter=";"))


class FailingOnce:
    """A channel whose ``n``-th delivery fails (a partner's server going away mid-run)."""

    def __init__(self, inner: LocalOutboundChannel, n: int) -> None:
        self.inner, self.n, self.count = inner, n, 0

    def deliver(self, local_file: Path, name: str) -> Delivered:
        self.count += 1
        if self.count == self.n:
            msg = "connection reset by the partner's server"
            raise ChannelError(msg)
        return self.inner.deliver(local_file, name)


def test_each_state_change_is_its_own_file_named_from_its_fields(fresh):
    changes = fresh.listing("/order-states")
    assert len(changes) >= 2
    result = fresh.run(states_flow())
    names = [f"{c['order_number']}_{c['status']}_{i:04d}.csv" for i, c in enumerate(changes, 1)]
    assert result.state == "delivered"
    assert list(result.files) == names
    assert sorted(p.name for p in fresh.outbox.iterdir()) == sorted(names)
    for name, change in zip(names, changes, strict=True):
        (row,) = rows(fresh.outbox / name)
        assert (row["order_number"], row["status"]) == (change["order_number"], change["status"])


def test_each_file_is_a_journal_run_of_its_own_with_its_record(fresh):
    changes = fresh.listing("/order-states")
    result = fresh.run(states_flow())
    runs = fresh.journal.export_runs(limit=1000)
    assert len(runs) == len(changes)
    assert {r.state for r in runs} == {"delivered"}
    assert {r.records for r in runs} == {1}
    assert sorted(r.file_name for r in runs) == sorted(result.files)
    assert result.run_id == max(r.id for r in runs)


def test_a_second_run_without_changes_writes_nothing_and_a_new_change_one_file(fresh):
    first = fresh.run(states_flow())
    again = fresh.run(states_flow())
    assert again.state == "empty"
    assert again.files == ()
    assert len(list(fresh.outbox.iterdir())) == len(first.files)
    latest = {c["order_number"]: c["status"] for c in fresh.listing("/order-states")}
    order = next(number for number, status in latest.items() if status != "cancelled")
    status = fresh.sandbox.set_order_status(order, "cancelled")["status"]
    third = fresh.run(states_flow())
    assert third.files == (f"{order}_{status}_{len(first.files) + 1:04d}.csv",)
    assert len(list(fresh.outbox.iterdir())) == len(first.files) + 1


def test_a_failed_delivery_keeps_what_went_and_the_next_run_sends_the_rest_once(fresh):
    changes = fresh.listing("/order-states")
    channel = FailingOnce(fresh.channel(), n=2)
    with pytest.raises(ChannelError):
        fresh.run(states_flow(), channel=channel)
    assert len(list(fresh.outbox.iterdir())) == 1
    runs = fresh.journal.export_runs(limit=10)
    assert sorted(r.state for r in runs) == ["delivered", "failed"]
    rest = fresh.run(states_flow())
    assert len(rest.files) == len(changes) - 1
    sent = [rows(p)[0] for p in fresh.outbox.iterdir()]
    assert sorted((r["order_number"], r["status"]) for r in sent) == sorted(
        (c["order_number"], c["status"]) for c in changes
    )


def test_a_dry_run_names_every_file_and_moves_nothing(fresh, tmp_path):
    changes = fresh.listing("/order-states")
    preview = fresh.run(states_flow(), dry_run=True, to_dir=tmp_path / "preview")
    assert preview.state == "dry-run"
    assert len(preview.files) == len(changes)
    assert sorted(p.name for p in (tmp_path / "preview").iterdir()) == sorted(preview.files)
    assert fresh.journal.export_runs(limit=10) == []
    assert fresh.run(states_flow()).records == len(changes)


def test_the_template_sees_the_record_as_record(fresh, tmp_path):
    template = tmp_path / "one.txt.j2"
    template.write_text("{{ record.order_number }}={{ record.status }}\n", encoding="utf-8")
    result = fresh.run(states_flow(template=template, filename="{seq:03d}.txt"))
    first = fresh.listing("/order-states")[0]
    assert (fresh.outbox / "001.txt").read_text() == (
        f"{first['order_number']}={first['status']}\n"
    )
    assert result.records == len(result.files)


def test_a_record_field_missing_from_the_record_fails_the_run_naming_it(fresh):
    from edigw.errors import ConfigError

    with pytest.raises(ConfigError, match=r"the record has no field \[invoice\]"):
        fresh.run(states_flow(filename="{record[invoice]}.csv"))
    assert [r.state for r in fresh.journal.export_runs(limit=10)] == ["failed"]
    assert fresh.journal.cursor("shop", "order-states") is None


def test_now_is_the_run_instant(fresh):
    result = fresh.run(states_flow(filename="{now:%Y%m%d}_{seq:04d}.csv"))
    assert result.files[0] == f"{NOW:%Y%m%d}_0001.csv"


def test_an_upload_policy_refusing_overwrites_still_applies_to_each_file(fresh):
    channel = LocalOutboundChannel(
        LocalOutboundSettings(fresh.outbox, UploadSettings(if_exists="fail"))
    )
    fresh.outbox.mkdir(parents=True, exist_ok=True)
    first = fresh.listing("/order-states")[0]
    (fresh.outbox / f"{first['order_number']}_{first['status']}_0001.csv").write_text("x")
    with pytest.raises(ChannelError):
        fresh.run(states_flow(), channel=channel)
    assert fresh.journal.cursor("shop", "order-states") is None

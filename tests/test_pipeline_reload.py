"""Edits picked up by a running gateway: lookup tables, mappings (and their versions)."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from edigw.alerts.events import Alert
from edigw.cli import main
from edigw.ecolix.client import EcolixClient
from edigw.errors import ConfigError
from edigw.journal.rows import DocumentRow
from edigw.mapping.versions import content_version
from edigw.pipeline import mover
from edigw.pipeline.assembly import open_parts
from edigw.pipeline.gateway_status import status_with_health
from edigw.pipeline.health import Conditions, read_health
from edigw.pipeline.reconfigure import ConfigChanges, compare
from edigw.pipeline.reload import Reloader
from edigw.pipeline.runtime import Gateway
from edigw.pipeline.service import RunOutcome, serve
from tests.fixtures.gateway import (
    ROOT,
    Workspace,
    files_final,
    inbound_flow,
    wait_until,
    write_workspace,
)
from tests.support.orderfiles import HEADER, OrderFactory

FLOW = "webshop/orders"
MAPPING = "ecommerce-orders-csv.yaml"
NEW_METHOD = "Carte Bleue Pro"
REFUSED = ROOT / "samples" / "bad" / "ecommerce-orders-csv" / "commandes_refusees_20261128.csv"


@pytest.fixture
def workspace(tmp_path: Path, sandbox_factory: Any) -> Workspace:
    """One flow, webshop/orders, whose mapping and lookup tables are copies we may edit."""
    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings" / "lookups", mappings / "lookups")
    shutil.copyfile(ROOT / "mappings" / MAPPING, mappings / MAPPING)
    ecolix = sandbox_factory()
    flow = {**inbound_flow(MAPPING, "webshop", "orders"), "mapping": str(mappings / MAPPING)}
    return write_workspace(
        tmp_path / "gw",
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={"webshop": {"orders": flow}},
    )


def mapping_path(workspace: Workspace) -> Path:
    return workspace.root.parent / "mappings" / MAPPING


def payment_methods(workspace: Workspace) -> Path:
    return workspace.root.parent / "mappings" / "lookups" / "payment-methods.csv"


@dataclass
class Recorded:
    """An alert sink that keeps what it is told."""

    alerts: list[Alert]

    def notify(self, alert: Alert) -> None:
        self.alerts.append(alert)


@contextmanager
def serving(
    workspace: Workspace, *, reload: threading.Event | None = None, processes: int | None = None
) -> Iterator[Gateway]:
    """``edigw run`` (its ``serve``) in a thread: publisher and reloader included;
    ``reload`` set does what SIGHUP does; ``processes`` as ``edigw run --processes``."""
    started: list[Gateway] = []
    outcome: list[RunOutcome] = []
    stop = threading.Event()

    def run() -> None:
        outcome.append(
            serve(
                workspace.load(),
                senders=2,
                stop=stop,
                on_start=started.append,
                config_path=workspace.config_path,
                environ=workspace.environ,
                reload=reload,
                processes=processes,
            )
        )

    thread = threading.Thread(target=run, name="serve")
    thread.start()
    try:
        wait_until(lambda: bool(started) or not thread.is_alive(), what="the gateway started")
        assert started, "the gateway did not start"
        yield started[0]
    finally:
        stop.set()
        thread.join(timeout=60)
    assert outcome == [RunOutcome()]


def drop_orders(workspace: Workspace, name: str, number: str, *, method: str) -> None:
    rows = OrderFactory.from_seed().order_rows(number, random.Random(number))
    rows = [row.replace(";Carte bancaire;", f";{method};") for row in rows]
    text = "\r\n".join([HEADER, *rows]) + "\r\n"
    (workspace.inbox("webshop", "orders") / name).write_text(text, encoding="utf-8-sig")


def version_of(gateway: Gateway) -> str:
    return gateway.parts.inbound[FLOW].context.mapping_version


def file_state(gateway: Gateway, name: str) -> str | None:
    rows = [r for r in gateway.parts.journal.files() if r.original_name == name]
    return rows[0].state if rows else None


def documents(gateway: Gateway, name: str) -> list[DocumentRow]:
    [row] = [r for r in gateway.parts.journal.files() if r.original_name == name]
    return gateway.parts.journal.documents_of(row.id)


def reload_problems(workspace: Workspace) -> list[str]:
    """What ``edigw status`` says is wrong, about reloads."""
    status, _ = status_with_health(workspace.load())
    return [line for line in status.health_problems if line.startswith("reload ")]


def test_a_lookup_edit_is_picked_up_and_the_next_file_passes_without_a_restart(
    workspace: Workspace,
) -> None:
    with serving(workspace) as gateway:
        drop_orders(workspace, "before.csv", "LOOK-1", method=NEW_METHOD)
        wait_until(files_final(gateway.parts, 1), what="the first file final")
        assert file_state(gateway, "before.csv") == "failed"
        [doc] = documents(gateway, "before.csv")
        assert NEW_METHOD in (doc.error or "")  # not in the lookup table (yet)
        first = version_of(gateway)

        with payment_methods(workspace).open("a", encoding="utf-8") as table:
            table.write(f"{NEW_METHOD};CARD\n")
        wait_until(lambda: version_of(gateway) != first, what="the lookup edit picked up")

        drop_orders(workspace, "after.csv", "LOOK-2", method=NEW_METHOD)
        wait_until(files_final(gateway.parts, 2), what="the second file final")
        assert file_state(gateway, "after.csv") == "done"


@pytest.mark.parametrize("processes", [1, 2], ids=["one process", "two processes"])
def test_a_broken_mapping_edit_keeps_the_running_version_and_shows_until_fixed(
    workspace: Workspace, processes: int
) -> None:
    path = mapping_path(workspace)
    good = path.read_text(encoding="utf-8")
    with serving(workspace, processes=processes) as gateway:
        running = version_of(gateway)
        path.write_text(good + "\nunknown_key: 1\n", encoding="utf-8")
        condition = f"reload {FLOW}"
        wait_until(
            lambda: gateway.signals.conditions.get(condition) is not None, what="the refusal"
        )
        refused = gateway.signals.conditions.get(condition)
        assert refused is not None
        assert refused.flow == FLOW
        assert str(path) in refused.message
        assert "unknown key 'unknown_key'" in refused.message
        assert f"still running version {running}" in refused.message
        wait_until(lambda: bool(reload_problems(workspace)), what="the refusal in status")
        assert str(path) in reload_problems(workspace)[0]

        drop_orders(workspace, "meanwhile.csv", "KEEP-1", method="Carte bancaire")
        wait_until(files_final(gateway.parts, 1), what="the file final")
        assert file_state(gateway, "meanwhile.csv") == "done"
        assert {d.mapping_version for d in documents(gateway, "meanwhile.csv")} == {running}

        path.write_text(good, encoding="utf-8")
        wait_until(lambda: gateway.signals.conditions.get(condition) is None, what="the fix")
        wait_until(lambda: not reload_problems(workspace), what="status clear again")
        assert version_of(gateway) == running


def test_documents_keep_the_mapping_version_they_were_mapped_with(
    workspace: Workspace,
) -> None:
    with serving(workspace) as gateway:
        first = version_of(gateway)
        files = gateway.parts.inbound[FLOW].context.mapping.files  # type: ignore[attr-defined]
        assert first == content_version(files)
        assert payment_methods(workspace).resolve() in files
        drop_orders(workspace, "one.csv", "VER-1", method="Carte bancaire")
        wait_until(files_final(gateway.parts, 1), what="the first file done")

        with payment_methods(workspace).open("a", encoding="utf-8") as table:
            table.write("Bon d achat;GIFT_CARD\n")
        wait_until(lambda: version_of(gateway) != first, what="the edit picked up")
        second = version_of(gateway)
        drop_orders(workspace, "two.csv", "VER-2", method="Carte bancaire")
        wait_until(files_final(gateway.parts, 2), what="the second file done")

        assert {d.mapping_version for d in documents(gateway, "one.csv")} == {first}
        assert {d.mapping_version for d in documents(gateway, "two.csv")} == {second}
        [old] = documents(gateway, "one.csv")
    shown = CliRunner().invoke(
        main, ["show", old.ref, "-c", str(workspace.config_path)], env=workspace.environ
    )
    assert shown.exit_code == 0, shown.output
    assert f"version {first}" in shown.output


# --------------------------------------------------------------------------- edigw.yaml


@contextmanager
def running_process(
    workspace: Workspace, log: Path, *args: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``edigw run *args`` in a process of its own, in the workspace; SIGTERM on the way out."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "edigw.cli", "run", *args],
            cwd=workspace.root,
            env={**os.environ, **workspace.environ},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: b"edigw running" in log.read_bytes(), what="the gateway running")
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert process.returncode == 0, log.read_text(errors="replace")[-3000:]


def edigw_status(workspace: Workspace) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "edigw.cli", "status"],
        cwd=workspace.root,
        env={**os.environ, **workspace.environ},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return done.stdout + done.stderr


def published_refusals(workspace: Workspace) -> list[str]:
    """The ``reload edigw.yaml`` condition in the health the gateway published."""
    published = read_health(workspace.root / "data", now=datetime.now(UTC))
    return [line for line in published.problems() if line.startswith("reload edigw.yaml")]


def rewrite(workspace: Workspace, flows: dict[str, dict[str, dict[str, Any]]]) -> None:
    config = yaml.safe_load(workspace.config_path.read_text(encoding="utf-8"))
    config["partners"] = {p: {"flows": f} for p, f in flows.items()}
    workspace.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def test_sighup_adds_a_flow_and_removes_one(workspace: Workspace, tmp_path: Path) -> None:
    mapping = str(mapping_path(workspace))
    shop = {**inbound_flow(MAPPING, "shop", "orders"), "mapping": mapping}
    log = tmp_path / "run.log"
    with running_process(workspace, log) as process:
        rewrite(workspace, {"shop": {"orders": shop}})
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: b"reloaded: added shop/orders" in log.read_bytes(), what="reload")
        assert b"removed webshop/orders" in log.read_bytes()

        drop_orders(workspace, "left.csv", "GONE-1", method="Carte bancaire")
        shop_inbox = workspace.root / "inbox" / "shop" / "orders"
        assert shop_inbox.is_dir()  # created by the reload, logged
        rows = OrderFactory.from_seed().order_rows("NEW-1", random.Random(1))
        (shop_inbox / "new.csv").write_text("\r\n".join([HEADER, *rows]) + "\r\n")
        wait_until(lambda: (shop_inbox / "done" / "new.csv").exists(), what="new flow's file")
    text = log.read_text(errors="replace")
    assert f"created folder {shop_inbox} (inbox of shop/orders)" in text
    assert "Traceback" not in text
    # the removed flow's poller had stopped: its inbox is no longer read
    assert (workspace.inbox("webshop", "orders") / "left.csv").exists()
    journal = workspace.journal()
    try:
        assert [(r.partner, r.original_name, r.state) for r in journal.files()] == [
            ("shop", "new.csv", "done")
        ]
    finally:
        journal.close()


def test_a_flow_added_on_sighup_has_its_refused_values_located_by_the_sending_process(
    workspace: Workspace, tmp_path: Path
) -> None:
    """The sending process tells where in the file a value Ecolix refused came from, with
    the flow's mapping: a flow added by a reload reaches it too."""
    mapping = str(mapping_path(workspace))
    shop = {**inbound_flow(MAPPING, "shop", "orders"), "mapping": mapping}
    log = tmp_path / "run.log"
    with running_process(workspace, log, "--processes", "2") as process:
        rewrite(workspace, {"shop": {"orders": shop}})
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: b"reloaded: added shop/orders" in log.read_bytes(), what="reload")
        wait_until(lambda: b"flow shop/orders: mapping" in log.read_bytes(), what="sending side")
        shop_inbox = workspace.root / "inbox" / "shop" / "orders"
        shutil.copyfile(REFUSED, shop_inbox / REFUSED.name)
        wait_until(lambda: (shop_inbox / "error" / REFUSED.name).exists(), what="refused file")
    journal = workspace.journal()
    try:
        errors = {d.business_key: d.error or "" for d in journal.documents()}
    finally:
        journal.close()
    assert f"{REFUSED.name}:2:9 field montant_paye_ttc" in errors["WEB-6195"], errors
    assert "Traceback" not in log.read_text(errors="replace")


def test_a_broken_edigw_yaml_on_sighup_changes_nothing_and_says_why(
    workspace: Workspace, tmp_path: Path
) -> None:
    good = workspace.config_path.read_text(encoding="utf-8")
    log = tmp_path / "run.log"
    with running_process(workspace, log) as process:
        workspace.config_path.write_text(good + "\nunknown_setting: 1\n", encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: b"not reloaded" in log.read_bytes(), what="the refusal logged")
        # what `edigw status` shows of the running gateway (status itself cannot read the
        # broken file: it says why in one line)
        wait_until(lambda: bool(published_refusals(workspace)), what="the refusal published")
        [refusal] = published_refusals(workspace)
        assert "unknown_setting" in refusal, refusal
        assert "the running configuration stays" in refusal

        drop_orders(workspace, "still.csv", "SAME-1", method="Carte bancaire")
        inbox = workspace.inbox("webshop", "orders")
        wait_until(lambda: (inbox / "done" / "still.csv").exists(), what="the flow still runs")

        workspace.config_path.write_text(good, encoding="utf-8")
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: b"reloaded: no flow changed" in log.read_bytes(), what="the fix")
        wait_until(lambda: "reload edigw.yaml" not in edigw_status(workspace), what="status clear")
    text = log.read_text(errors="replace")
    assert "unknown_setting" in text
    assert "Traceback" not in text


def test_an_edit_made_between_a_flows_build_and_the_reloaders_first_look_is_picked_up(
    workspace: Workspace,
) -> None:
    """The reloader's first look at a flow takes its files' stamps as they are then: an edit
    made after the flow was built (a slow start, a flow added by a reload) must not become
    the baseline, running the old version until the next edit."""
    table = payment_methods(workspace)
    long_ago = table.stat().st_mtime - 60  # no stamp the first look takes is racy
    mappings = mapping_path(workspace).parent
    for path in [mappings, *mappings.rglob("*")]:
        os.utime(path, (long_ago, long_ago))
    with open_parts(workspace.load()) as parts:
        built = parts.inbound[FLOW].context.mapping_version
        with table.open("a", encoding="utf-8") as out:
            out.write(f"{NEW_METHOD};CARD\n")
        os.utime(table, (long_ago + 1, long_ago + 1))
        reloader = Reloader(parts, Conditions())
        reloader.check()  # the first look
        reloader.check()
        context = parts.inbound[FLOW].context
        assert context.mapping_version != built
        assert context.mapping_version == content_version(context.mapping.files)  # type: ignore[attr-defined]


def test_a_flow_set_aside_for_a_broken_mapping_is_added_once_its_mapping_compiles(
    workspace: Workspace,
) -> None:
    """The sending process starts with the mapping on disk: a broken edit there (the
    intake process keeps its last good version) sets the flow aside instead of stopping
    every flow's sending, and the reloader adds it once an edit mends it."""
    path = mapping_path(workspace)
    good = path.read_text(encoding="utf-8")
    path.write_text(good + "\nunknown_key: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown_key"), open_parts(workspace.load()):
        pass
    with open_parts(workspace.load(), with_channels=False, set_aside_broken=True) as parts:
        assert list(parts.unloaded) == [FLOW]
        assert FLOW not in parts.inbound
        reloader = Reloader(parts, Conditions())
        reloader.check()
        assert list(parts.unloaded) == [FLOW]

        path.write_text(good, encoding="utf-8")
        wait_until(lambda: (reloader.check(), FLOW in parts.inbound)[1], what="the flow added")
        assert parts.unloaded == {}
        context = parts.inbound[FLOW].context
        assert context.mapping_version == content_version(context.mapping.files)  # type: ignore[attr-defined]


def test_a_reloaded_edigw_yaml_reaches_the_flows_of_a_process_without_channels(
    workspace: Workspace,
) -> None:
    """``Reloader.take_flows``: what the sending process does when the intake process tells
    it a reloaded ``edigw.yaml``."""
    mapping = str(mapping_path(workspace))
    with open_parts(workspace.load(), with_channels=False, set_aside_broken=True) as parts:
        reloader = Reloader(parts, Conditions())
        reloader.check()
        kept = parts.inbound[FLOW]
        shop = {**inbound_flow(MAPPING, "shop", "orders"), "mapping": mapping}
        current = yaml.safe_load(workspace.config_path.read_text(encoding="utf-8"))
        rewrite(
            workspace,
            {**{p: f["flows"] for p, f in current["partners"].items()}, "shop": {"orders": shop}},
        )
        reloader.take_flows(workspace.load())
        assert parts.inbound[FLOW] is kept  # unchanged: not rebuilt
        assert list(parts.unloaded) == ["shop/orders"]
        reloader.check()
        assert parts.unloaded == {}
        assert sorted(parts.inbound) == ["shop/orders", FLOW]

        rewrite(workspace, {"shop": {"orders": shop}})
        reloader.take_flows(workspace.load())
        assert sorted(parts.inbound) == ["shop/orders"]
        assert [f.id for f in parts.config.inbound_flows()] == ["shop/orders"]


# --------------------------------------------------------------------------- templates


def test_a_broken_template_edit_keeps_the_pinned_version_until_fixed(
    tmp_path: Path, sandbox_factory: Any
) -> None:
    template = tmp_path / "articles.csv.j2"
    shutil.copyfile(ROOT / "templates" / "webshop-articles.csv.j2", template)
    good = template.read_text(encoding="utf-8")
    ecolix = sandbox_factory()
    export = {
        "direction": "outbound",
        "query": {"resource": "articles.list"},
        "template": str(template),
        "filename": "{partner}_{flow}_{seq:05d}.csv",
        "channel": {"type": "local", "path": "outbox"},
        "schedule": {"every": 3600},
    }
    ws = write_workspace(
        tmp_path / "gw",
        base_url=ecolix.base_url,
        token=ecolix.token,
        flows={"webshop": {"articles": export}},
    )
    told: list[Alert] = []
    with open_parts(ws.load(), with_channels=False) as parts:
        reloader = Reloader(parts, Conditions(), alerts=lambda: Recorded(told))
        reloader.check()
        pinned = parts.templates["webshop/articles"]
        assert pinned.version == content_version([template])

        template.write_text(good + "{% for x in %}\n", encoding="utf-8")
        reloader.check()
        refused = reloader.conditions.get("reload webshop/articles")
        assert refused is not None
        assert f"{template}:" in refused.message
        assert "template syntax error" in refused.message
        assert f"the next runs use version {pinned.version}" in refused.message
        assert parts.templates["webshop/articles"] is pinned
        [alert] = told
        assert (alert.kind, alert.flow, alert.file) == (
            "reload_failed",
            "webshop/articles",
            str(template),
        )
        assert "template syntax error" in alert.reason

        template.touch()  # the same broken file, looked at again: no news
        reloader.check()
        assert len(told) == 1

        template.write_text(good + "\n", encoding="utf-8")
        reloader.check()
        assert reloader.conditions.get("reload webshop/articles") is None
        assert parts.templates["webshop/articles"].version == content_version([template])
        assert parts.templates["webshop/articles"].version != pinned.version


def test_a_changed_flow_is_restarted_with_its_new_settings(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    reload = threading.Event()
    with caplog.at_level(logging.INFO), serving(workspace, reload=reload) as gateway:
        before = gateway.parts.inbound[FLOW]
        flow = {
            **inbound_flow(MAPPING, "webshop", "orders"),
            "mapping": str(mapping_path(workspace)),
            "poll_interval": 0.2,
        }
        rewrite(workspace, {"webshop": {"orders": flow}})
        reload.set()
        wait_until(lambda: "reloaded: changed webshop/orders" in caplog.text, what="reload")

        after = gateway.parts.inbound[FLOW]
        assert after is not before
        assert after.config.poll_interval == 0.2
        names = [loop.name for loop in gateway.health().loops if loop.flow == FLOW]
        assert sorted(names) == [f"poller {FLOW}", f"watcher {FLOW}"]
        drop_orders(workspace, "changed.csv", "CHG-1", method="Carte bancaire")
        wait_until(files_final(gateway.parts, 1), what="the file final")
        assert file_state(gateway, "changed.csv") == "done"
        assert gateway.health().healthy, gateway.health().problems()


def remove_webshop_orders(workspace: Workspace) -> None:
    """``edigw.yaml`` with shop/orders instead of webshop/orders."""
    shop = {**inbound_flow(MAPPING, "shop", "orders"), "mapping": str(mapping_path(workspace))}
    rewrite(workspace, {"shop": {"orders": shop}})


def test_a_removed_flow_stops_watching_its_folder(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    reload = threading.Event()
    with caplog.at_level(logging.INFO), serving(workspace, reload=reload) as gateway:
        channel = gateway.parts.inbound[FLOW].channel
        assert channel is not None
        wait_until(channel.watching, what="the folder watched")

        remove_webshop_orders(workspace)
        reload.set()
        wait_until(lambda: "reloaded: added shop/orders" in caplog.text, what="reload")

        wait_until(lambda: not channel.watching(), what="the removed flow's watch ended")
        assert all(p.runtime.channel is not channel for p in gateway.pollers)
        # The mover logs the closing just after closing the channel, so after the watch ends.
        closed = f"flow {FLOW} removed: its channel is closed"
        wait_until(lambda: closed in caplog.text, what="the channel's closing logged")


def test_a_removed_flow_holding_a_file_closes_its_channel_once_the_file_is_disposed_of(
    tmp_path: Path,
    sandbox_factory: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The file is held as long as the test says: its documents are not sent before
    # ``release``, so the removed flow's channel must outlast mover rounds (counted) while
    # the file is held, however slow the machine is to reload.
    release = threading.Event()
    send = EcolixClient.write

    def held_back(self: EcolixClient, *args: Any, **kwargs: Any) -> Any:
        release.wait()
        return send(self, *args, **kwargs)

    rounds: list[None] = []
    close = mover.close_retired

    def counted(pollers: list[Any]) -> None:
        rounds.append(None)
        close(pollers)

    monkeypatch.setattr(EcolixClient, "write", held_back)
    monkeypatch.setattr(mover, "close_retired", counted)  # mover_loop calls it
    slow = sandbox_factory()
    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings" / "lookups", mappings / "lookups")
    shutil.copyfile(ROOT / "mappings" / MAPPING, mappings / MAPPING)
    flow = {**inbound_flow(MAPPING, "webshop", "orders"), "mapping": str(mappings / MAPPING)}
    workspace = write_workspace(
        tmp_path / "gw",
        base_url=slow.base_url,
        token=slow.token,
        flows={"webshop": {"orders": flow}},
    )
    reload = threading.Event()
    with (
        caplog.at_level(logging.INFO),
        # One process: the held-back write is patched into this process's client.
        serving(workspace, reload=reload, processes=1) as gateway,
        contextlib.ExitStack() as finally_,
    ):
        finally_.callback(release.set)  # whatever happens, the senders are let go
        channel = gateway.parts.inbound[FLOW].channel
        assert channel is not None
        wait_until(channel.watching, what="the folder watched")
        factory = OrderFactory.from_seed()  # documents of one file go one after the other
        rows = [r for n in range(6) for r in factory.order_rows(f"HELD-{n}", random.Random(n))]
        text = "\r\n".join([HEADER, *rows]) + "\r\n"
        (workspace.inbox("webshop", "orders") / "held.csv").write_text(text, encoding="utf-8-sig")
        wait_until(lambda: file_state(gateway, "held.csv") is not None, what="the file taken in")

        remove_webshop_orders(workspace)
        reload.set()
        wait_until(lambda: "reloaded: added shop/orders" in caplog.text, what="reload")
        since = len(rounds)
        wait_until(lambda: len(rounds) >= since + 3, what="three mover rounds after the reload")
        assert channel.watching()  # held through several mover rounds: kept open
        assert file_state(gateway, "held.csv") not in (None, "done")
        release.set()
        seen: list[tuple[bool, str | None]] = []  # (watching, then the file's state)

        def closed() -> bool:
            seen.append((channel.watching(), file_state(gateway, "held.csv")))
            return not seen[-1][0]

        wait_until(closed, what="the channel closed")
        held = [watching for watching, state in seen if state != "done"]
        assert all(held), seen  # open as long as the file was held
        done = workspace.inbox("webshop", "orders") / "done" / "held.csv"
        assert done.exists()  # disposed of before the channel closed
        assert file_state(gateway, "held.csv") == "done"
        assert all(p.runtime.channel is not channel for p in gateway.pollers)


def test_compare_tells_flows_added_removed_changed_and_settings_kept_until_restart(
    workspace: Workspace,
) -> None:
    old = workspace.load()
    data = yaml.safe_load(workspace.config_path.read_text(encoding="utf-8"))
    orders = data["partners"]["webshop"]["flows"]["orders"]
    data["partners"]["webshop"]["flows"]["orders"] = {**orders, "poll_interval": 5}
    data["partners"]["shop"] = {
        "flows": {"orders": {**orders, "channel": {"type": "local", "path": "inbox/shop"}}}
    }
    data["retry"]["max_attempts"] = 9
    workspace.config_path.write_text(yaml.safe_dump(data), encoding="utf-8")

    changes = compare(old, workspace.load())

    assert changes == ConfigChanges(
        added=("shop/orders",), changed=(FLOW,), restart_only=("retry",)
    )
    assert changes.summary() == f"added shop/orders; changed {FLOW}"

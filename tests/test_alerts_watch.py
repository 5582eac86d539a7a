"""What the watcher tells from the supervisor's snapshots and the call usage (pure parts),
and the ``alerts:`` settings ``edigw config check`` validates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from edigw.alerts.events import Alert
from edigw.alerts.watch import Watcher, WatchPolicy, health_alerts
from edigw.config import AlertSettings, load_config
from edigw.ecolix.usage import UsageSnapshot
from edigw.errors import ConfigError
from edigw.journal.store import Journal
from edigw.pipeline.health import Condition, HealthSnapshot, LoopHealth

AT = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
LATER = datetime(2025, 3, 1, 8, 1, tzinfo=UTC)


def snapshot(
    *,
    crash_at: datetime | None = None,
    conditions: tuple[Condition, ...] = (),
    failure: str | None = None,
) -> HealthSnapshot:
    loop = LoopHealth(
        name="poller webshop/orders",
        kind="poller",
        flow="webshop/orders",
        state="running",
        since=AT,
        restarts=1 if crash_at else 0,
        last_error="OSError: disk full" if crash_at else None,
        last_crash_at=crash_at,
    )
    return HealthSnapshot(
        at=LATER, node="n1", state="running", loops=(loop,), conditions=conditions, failure=failure
    )


SFTP_DOWN = Condition("channel webshop/orders", "connection refused", AT, "webshop/orders")


def test_a_loop_crash_is_told_once() -> None:
    before, after = snapshot(), snapshot(crash_at=AT)
    [alert] = health_alerts(before, after)
    assert alert.kind == "loop_crashed" and alert.flow == "webshop/orders"
    assert alert.reason == "OSError: disk full"
    assert health_alerts(after, after) == []


def test_a_new_condition_is_told_and_a_lasting_one_is_not() -> None:
    [alert] = health_alerts(snapshot(), snapshot(conditions=(SFTP_DOWN,)))
    assert (alert.kind, alert.title, alert.reason) == (
        "condition",
        "channel webshop/orders",
        "connection refused",
    )
    assert health_alerts(snapshot(conditions=(SFTP_DOWN,)), snapshot(conditions=(SFTP_DOWN,))) == []


def test_a_refused_edit_is_no_condition_alert_the_reloader_tells_it() -> None:
    refused = Condition("reload webshop/orders", "orders.yaml: mapping edit not applied", AT)
    assert health_alerts(snapshot(), snapshot(conditions=(refused,))) == []


def test_the_supervisor_giving_up_is_one_critical_stop_alert() -> None:
    gave_up = snapshot(crash_at=AT, failure="loop mover crashed 6 times within 10 min")
    [alert] = health_alerts(snapshot(), gave_up)
    assert alert.kind == "gateway_stopping" and alert.severity == "critical"
    assert health_alerts(gave_up, gave_up) == []


class Collected:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def notify(self, alert: Alert) -> None:
        self.alerts.append(alert)


def used_up(last_minute: int) -> UsageSnapshot:
    return UsageSnapshot(calls=1000, by_operation={}, last_minute=last_minute, limit_per_minute=60)


def test_a_call_budget_used_up_long_enough_is_told_once_until_it_has_room_again(
    tmp_path: Path,
) -> None:
    journal = Journal.open(f"sqlite:///{tmp_path / 'j.sqlite'}")
    seconds = [0.0]
    sink = Collected()
    watcher = Watcher(
        journal, sink, policy=WatchPolicy(budget_exhausted_after=300), monotonic=lambda: seconds[0]
    )
    try:
        for seconds[0] in (0.0, 100.0, 299.0):
            watcher.check(None, used_up(60))
        assert sink.alerts == []
        for seconds[0] in (300.0, 400.0):
            watcher.check(None, used_up(60))
        assert [a.kind for a in sink.alerts] == ["budget_exhausted"]
        seconds[0] = 401.0
        watcher.check(None, used_up(59))
        for seconds[0] in (402.0, 702.0):
            watcher.check(None, used_up(60))
        assert [a.kind for a in sink.alerts] == ["budget_exhausted"] * 2
    finally:
        journal.close()


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        pytest.param(
            {
                "email": {
                    "host": "smtp.example.fr",
                    "sender": "a@b.fr",
                    "recipients": ["c@d.fr"],
                    "username": "u",
                }
            },
            "username and password go together",
            id="username-without-password",
        ),
        pytest.param(
            {
                "email": {
                    "host": "smtp.example.fr",
                    "security": "none",
                    "username": "u",
                    "password": "p",
                    "sender": "a@b.fr",
                    "recipients": ["c@d.fr"],
                }
            },
            "would send the SMTP password in clear text",
            id="password-in-clear",
        ),
        pytest.param(
            {"email": {"host": "smtp.example.fr", "sender": "nobody", "recipients": ["c@d.fr"]}},
            "not an e-mail address",
            id="bad-sender",
        ),
        pytest.param(
            {"webhooks": {"ops": {"url": "ftp://x", "format": "json"}}},
            "must be an http:// or https:// URL",
            id="webhook-not-http",
        ),
        pytest.param(
            {"webhooks": {"ops": {"url": "https://x", "format": "discord"}}},
            "alerts.webhooks.ops.format",
            id="unknown-format",
        ),
    ],
)
def test_config_check_refuses_alert_settings_that_cannot_work(
    tmp_path: Path, alerts: dict[str, object], message: str
) -> None:
    config = {"ecolix": {"base_url": "http://127.0.0.1:1", "token": "T"}, "alerts": alerts}
    path = tmp_path / "edigw.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path, environ={})
    assert caught.value.problems[0].startswith("edigw.yaml:")


def test_alerts_are_off_until_a_channel_is_configured() -> None:
    assert not AlertSettings().enabled
    assert AlertSettings(webhooks={"ops": {"url": "https://hooks.example/x"}}).enabled  # type: ignore[dict-item]


def test_config_check_names_an_unset_smtp_password(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from edigw.cli import main

    config = {
        "ecolix": {"base_url": "http://127.0.0.1:1", "token": "T"},
        "alerts": {
            "email": {
                "host": "smtp.example.fr",
                "username": "edigw",
                "password": "${EDIGW_SMTP_PASSWORD}",
                "sender": "edigw@example.fr",
                "recipients": ["ops@example.fr"],
            }
        },
    }
    path = tmp_path / "edigw.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    result = CliRunner().invoke(main, ["config", "check", "-c", str(path)], env={})
    assert result.exit_code == 1
    assert "EDIGW_SMTP_PASSWORD" in result.output
    assert "alerts.email.password" in result.output


@pytest.mark.postgres
def test_a_failure_committed_after_a_later_one_is_told_too(postgres_url: str) -> None:
    """Two writers at once on PostgreSQL: the failure with the lower event id commits last.
    The watcher, which had seen the higher one, still tells it."""
    from sqlalchemy import create_engine, text

    journal = Journal.open(postgres_url)
    engine = create_engine(postgres_url)
    sink = Collected()
    watcher = Watcher(journal, sink)
    try:

        def received(name: str) -> int:
            return journal.add_file(
                partner="webshop",
                flow="orders",
                channel="local:inbox",
                original_name=name,
                source_path=f"/in/{name}",
                size=1,
                sha256=name[0] * 64,
                archive_path=f"/archive/{name}",
                now=AT,
            )

        slow, quick = received("slow.csv"), received("quick.csv")
        watcher.start_from_now()
        with engine.connect() as writer:  # its event id comes first, its commit last
            writer.execute(
                text(
                    "INSERT INTO events (file_id, at, kind, detail) "
                    "VALUES (:fid, now(), 'failed', 'slow writer')"
                ),
                {"fid": slow},
            )
            writer.execute(text("UPDATE files SET state = 'failed' WHERE id = :fid"), {"fid": slow})
            journal.set_file_state(quick, "failed", now=LATER, error="quick writer")
            watcher.check(None, None)
            assert [a.file for a in sink.alerts] == ["quick.csv"]
            writer.commit()
        watcher.check(None, None)
        watcher.check(None, None)
        assert [a.file for a in sink.alerts] == ["quick.csv", "slow.csv"]
    finally:
        engine.dispose()
        journal.close()

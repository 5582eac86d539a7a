"""What the operator reads in a terminal: at 80 and 120 columns nothing breaks the layout,
every reason is whole and printed once, and a command to copy is never cut."""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from edigw import render
from edigw.demo import DemoReport, ExportLine, FileLine
from edigw.journal.rows import DocumentRow, EventRow, FileRow, ResolutionRow
from edigw.pipeline.gateway_status import ExportStatus, FlowStatus, GatewayStatus
from edigw.pipeline.stories import FileStory

T = datetime(2026, 12, 6, 8, 14, tzinfo=UTC)
WIDTHS = [pytest.param(80, id="80-columns"), pytest.param(120, id="120-columns")]

XPATH_REASON = (
    "D-56 WEB-6104: order-feed-wrong-types.xml:22 "
    "/f:OrderFeed/f:Order[1]/f:Lines/f:Line[1]/f:Quantity [/lines/0/quantity]: "
    "'two' is not a decimal number (and 2 more: edigw show F-36)"
)
DECODE_REASON = (
    "clients_octets_invalides.csv:3: cannot decode bytes b'\\x81\\x8d' as cp1252; set the "
    "flow's or mapping's encoding to the one the partner uses (utf-8, utf-8-sig, cp1252) or to auto"
)


def rendered(width: int, draw: object, *args: object) -> list[str]:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    draw(console, *args)  # type: ignore[operator]
    return console.export_text().splitlines()


def squeezed(lines: list[str]) -> str:
    return re.sub(r"\s+", "", "".join(lines))


def demo_report(tmp_path: Path) -> DemoReport:
    report = DemoReport(tmp_path / "a demo", tmp_path / "a demo" / "edigw.yaml", "http://x/api/v1")
    report.files = [
        FileLine(
            "F-1",
            "supplier/confirmations-flat",
            "factures_outils_lefort_visserie_20261128.csv",
            "done",
            2,
            0,
            0,
            "",
        ),
        FileLine(
            "F-30",
            "webshop/customers",
            "clients_octets_invalides.csv",
            "failed",
            0,
            0,
            0,
            DECODE_REASON,
        ),
        FileLine(
            "F-36",
            "webshop/orders-xml",
            "order-feed-wrong-types.xml",
            "partially_failed",
            1,
            2,
            0,
            XPATH_REASON,
        ),
    ]
    report.exports = [
        ExportLine(
            "R-4",
            "webshop-plus/order-history",
            "delivered",
            54,
            1,
            "outbox/webshop-plus/webshop-plus_order-history_20261206-091341_00001.csv",
        )
    ]
    report.objects = Counter({"orders.create": 9, "customers.upsert": 8})
    return report


@pytest.mark.parametrize("width", WIDTHS)
def test_the_demo_report_fits_the_terminal(tmp_path: Path, width: int) -> None:
    lines = rendered(width, render.demo, demo_report(tmp_path))

    # Paths to copy (the commands, the workspace) are wrapped by the terminal, not cut.
    copied = ("  edigw ", "Inboxes, error folders and outboxes are under ")
    assert [line for line in lines if len(line) > width and not line.startswith(copied)] == []


@pytest.mark.parametrize("width", WIDTHS)
def test_the_demo_report_gives_each_reason_whole_on_its_own_lines(
    tmp_path: Path, width: int
) -> None:
    lines = rendered(width, render.demo, demo_report(tmp_path))

    assert squeezed(lines).count(squeezed([XPATH_REASON])) == 1
    assert squeezed(lines).count(squeezed([DECODE_REASON])) == 1
    row = next(line for line in lines if line.startswith(" F-36 "))
    assert "two" not in row and "partially" in row
    assert any(line.startswith("  F-36 D-56 WEB-6104: ") for line in lines)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_demo_report_prints_the_commands_to_look_closer_unbroken(
    tmp_path: Path, width: int
) -> None:
    config = "'" + str((tmp_path / "a demo" / "edigw.yaml").resolve()) + "'"

    lines = rendered(width, render.demo, demo_report(tmp_path))

    assert f"  edigw show F-30 -c {config}" in lines
    assert f"  edigw files --state unresolved -c {config}" in lines
    assert f"  edigw status -c {config}" in lines


@pytest.mark.parametrize("width", WIDTHS)
def test_a_long_file_name_and_flow_stay_in_their_column(tmp_path: Path, width: int) -> None:
    lines = rendered(width, render.demo, demo_report(tmp_path))

    assert squeezed(lines).count("factures_outils_lefort_visserie_20261128.csv") == 1
    assert any(line.strip() == "supplier/confirmations-flat" for line in lines)


def flow_status(flow: str, **counts: int) -> FlowStatus:
    values = dict.fromkeys(
        ("files", "done", "skipped", "partially_failed", "failed", "resolved", "in_progress"), 0
    )
    values.update(documents_waiting=0, documents_failed=0, documents_resolved=0)
    values.update(counts)
    return FlowStatus(flow=flow, configured=True, health="", **values)


@pytest.mark.parametrize("width", WIDTHS)
def test_status_fits_the_terminal_with_long_flow_names_and_errors(width: int) -> None:
    status = GatewayStatus(
        flows=[
            replace(
                flow_status("supplier/confirmations-flat", files=1000, done=990, failed=10),
                calls_per_document=1.02,
            ),
            flow_status("webshop-plus/quote-validations", files=3, skipped=1, resolved=2),
        ],
        exports=[
            ExportStatus("supplier/purchase-orders-csv", True, "", "R-12", "delivered", T, None)
        ],
        next_retry_at=None,
        calls_last_minute=12,
        calls_per_minute=600,
        last_errors=[f"2026-12-06 08:14 F-30: {DECODE_REASON}"],
    )

    lines = rendered(width, render.status, status)

    assert [line for line in lines if len(line) > width] == []
    assert any(
        re.fullmatch(r"   confirmations-flat +- +1000 +990 +0 +10 +0 +0 +0( +1\.02)? *", line)
        for line in lines
    )
    assert squeezed(lines).count(squeezed([DECODE_REASON])) == 1


@pytest.mark.parametrize(
    ("width", "shown"),
    [
        pytest.param(80, "Ecolix calls per document: supplier/confirmations-flat 1.02", id="line"),
        pytest.param(120, "   confirmations-flat - 1000 990 0 10 0 0 0 1.02", id="column"),
    ],
)
def test_calls_per_document_are_a_column_where_they_fit_else_a_line(width: int, shown: str) -> None:
    row = flow_status("supplier/confirmations-flat", files=1000, done=990, failed=10)
    status = GatewayStatus(
        flows=[replace(row, calls_per_document=1.02)],
        next_retry_at=None,
        calls_last_minute=12,
        calls_per_minute=600,
    )

    lines = [" ".join(line.split()) for line in rendered(width, render.status, status)]

    assert " ".join(shown.split()) in lines
    assert [line for line in lines if "1.02" in line] == [" ".join(shown.split())]


@pytest.mark.parametrize(
    ("shared", "shown"),
    [
        pytest.param(None, None, id="sqlite-nothing-shared"),
        pytest.param(7, "7 of 600 agreed per minute", id="postgresql"),
        pytest.param(
            "unknown (ECOLIX_TOKEN is not set: the budget is kept per token)",
            "unknown (ECOLIX_TOKEN is not set: the budget is kept per token) of 600",
            id="no-token",
        ),
    ],
)
def test_the_shared_call_budget_is_shown_on_postgresql(
    shared: int | str | None, shown: str | None
) -> None:
    status = GatewayStatus(
        flows=[], next_retry_at=None, calls_last_minute=3, calls_per_minute=600, shared_calls=shared
    )

    text = squeezed(rendered(120, render.status, status))

    title = "Ecolix calls counting now against the shared budget (every node):"
    if shown is None:
        assert squeezed([title]) not in text
    else:
        assert squeezed([f"{title} {shown}"]) in text


@pytest.mark.parametrize("width", WIDTHS)
def test_the_gateways_health_and_each_problem_follow_the_tables_whole(width: int) -> None:
    problem = (
        "channel supplier/confirmations-flat: cannot connect to sftp.lefort-outillage.example:22 "
        "(timed out after 10 s); next attempt in 30 s (since 2026-12-06 08:00:00 UTC)"
    )
    unhealthy = flow_status("supplier/confirmations-flat", files=3, done=3)
    status = GatewayStatus(
        flows=[replace(unhealthy, health="channel trouble")],
        next_retry_at=None,
        calls_last_minute=0,
        calls_per_minute=600,
        health="running, unhealthy (gw-lyon:4242)",
        health_problems=[problem],
    )

    lines = [line.rstrip() for line in rendered(width, render.status, status)]

    assert [line for line in lines if len(line) > width] == []
    assert any(
        re.fullmatch(r"   confirmations-flat +channel +(trouble +)?3 +3 .*", line) for line in lines
    )
    at = lines.index("Gateway: running, unhealthy (gw-lyon:4242)")
    after = lines[at + 1 :]
    wrapped = after[: after.index(next(line for line in after if line.startswith("Ecolix")))]
    assert all(line.startswith("  ") for line in wrapped)  # under its first line
    assert squeezed(wrapped) == squeezed([problem])


def story(error: str) -> FileStory:
    file = FileRow(
        30,
        "webshop",
        "orders",
        "c",
        "order.csv",
        "/in/order.csv",
        1,
        "h" * 64,
        "/a",
        "failed",
        "1 of 1 document(s) failed",
        T,
        T,
        T,
        T,
    )
    doc = DocumentRow(
        58,
        30,
        "webshop",
        "orders",
        1,
        "WEB-9901",
        "orders.create",
        None,
        "k",
        "failed",
        1,
        None,
        None,
        None,
        422,
        None,
        None,
        error,
        None,
        T,
        T,
    )
    events = [
        EventRow(1, 30, None, T, "received", "order.csv (1 bytes)"),
        EventRow(2, 30, 58, T, "failed", error),
        EventRow(3, 30, None, T, "failed", "0 done, 1 failed"),
        EventRow(4, 30, None, T, "resolved", "by alice: customer created"),
    ]
    resolution = ResolutionRow(1, 30, None, "alice", "customer created", T)
    return FileStory(file, [doc], events, resolutions=[resolution], open_failure=False)


@pytest.mark.parametrize("width", WIDTHS)
def test_show_prints_an_ecolix_reason_once_and_points_to_it_from_the_history(
    width: int,
) -> None:
    reason = "refused by Ecolix: 422 Unknown customer: /customer_code: unknown customer 'CUS-9999'"

    lines = rendered(width, render.story, story(reason))

    assert squeezed(lines).count("unknowncustomer'CUS-9999'") == 1
    assert "    08:14:00 D-58 failed (reason above)" in [line.rstrip() for line in lines]
    assert "  state     failed (resolved)" in [line.rstrip() for line in lines]
    assert "  resolved  2026-12-06 08:14 UTC by alice: customer created" in [
        line.rstrip() for line in lines
    ]
    assert [line for line in lines if len(line) > width] == []

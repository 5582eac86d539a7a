"""How the operator's commands look in a terminal: rich renderings of plain data.

The CLI hands each function a ``Console`` and the data a use case returned; nothing here
reads the journal or the clock. Written for 80 columns first: long values (file names,
paths, reasons) wrap under themselves instead of breaking the layout, each reason is
printed once and whole, and a command to copy is never broken by a newline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, Group, RenderableType
from rich.json import JSON
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from edigw.reports import WAITING_STATES

if TYPE_CHECKING:
    from edigw.demo import DemoReport
    from edigw.journal.rows import EventRow, ExportRunRow, FileListing, ResolutionRow
    from edigw.pipeline.gateway_status import FlowStatus, GatewayStatus
    from edigw.pipeline.stories import FileStory

#: A reason already printed above, in an event of the history.
SEE_ABOVE = "(reason above)"
#: Width of a state column: "partially failed" and "skipped duplicate" take two lines.
STATE_WIDTH = 10
#: Width of the labels of a file's lines in ``edigw show`` ("received").
LABEL_WIDTH = 9
UNKNOWN_HEALTH = "-"
#: Width of a health column: a label of what is wrong ("poller restarting") wraps at its
#: words rather than make the flow's name wrap.
HEALTH_WIDTH = len("restarting")

CALLS_COLUMN_WIDTH = 100
"""Terminal width from which ``status`` shows calls per document as a column; narrower
terminals keep the room for flow names and get one line under the table instead."""


def _plain(text: str, indent: int = 0, *, style: str = "") -> RenderableType:
    """``text`` as is (no markup, no highlighting), wrapped lines aligned under the first."""
    return Padding(Text(text, style=style), (0, 0, 0, indent))


def state_text(state: str, *, failure: str | None = None) -> str:
    """``partially_failed`` → ``partially failed``; a failure says whether it is resolved."""
    text = state.replace("_", " ")
    return f"{text} (resolved)" if failure == "resolved" else text


def without_repeat(detail: str | None, reason: str | None) -> str:
    """An event's detail with a reason shown above replaced by a pointer to it."""
    text = detail or ""
    if reason and reason in text:
        text = text.replace(reason, "").rstrip(": ").rstrip()
        return f"{text} {SEE_ABOVE}".strip()
    return text


def _resolution_line(r: ResolutionRow) -> str:
    return f"{r.at:%Y-%m-%d %H:%M} UTC by {r.resolved_by}: {r.note}"


def _error_line(error: str, location: str | None) -> str:
    """A document's reason, with its place unless the reason starts with it already."""
    if location and not error.startswith(location):
        return f"at {location}: {error}"
    return error


# --------------------------------------------------------------------------- show


def _grid(
    indent: int, rows: Sequence[tuple[str, RenderableType | str]], *, label_width: int = 0
) -> RenderableType:
    """Two columns: a label that never wraps, and a value that wraps under itself."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, min_width=label_width)
    grid.add_column(overflow="fold", ratio=1)
    for label, value in rows:
        grid.add_row(Text(label), Text(value) if isinstance(value, str) else value)
    return Padding(grid, (0, 0, 0, indent))


def story(console: Console, story: FileStory) -> None:
    """``edigw show F-12`` / ``D-40`` and ``edigw process``: the file, its documents with
    each reason once, and its history (where a reason shown above is not repeated)."""
    f = story.file
    failure = "open" if story.open_failure else "resolved"
    failed = f.state in ("failed", "partially_failed")
    head: list[tuple[str, RenderableType | str]] = [
        ("state", state_text(f.state, failure=failure if failed else None))
    ]
    if f.error:
        head.append(("error", f.error))
    head += [("resolved", _resolution_line(r)) for r in story.resolutions if r.document_id is None]
    head += [
        ("sha256", f.sha256 or "-"),
        ("archive", f.archive_path or "-"),
        ("source", f.source_path),
        ("received", f"{f.received_at:%Y-%m-%d %H:%M:%S} UTC"),
    ]
    lines: list[RenderableType | _Unwrapped] = [
        _plain(f"{f.ref} {f.original_name}  ({f.partner}/{f.flow})"),
        _grid(2, head, label_width=LABEL_WIDTH),
        *_problem_lines(story, None, f.ref, indent=2),
        *_warning_lines(story, indent=2),
    ]
    reasons: dict[int, str] = {}
    for d in story.documents:
        lines.append(_plain(f"{d.ref} {d.business_key}  {d.operation}  {state_text(d.state)}", 2))
        rows: list[tuple[str, RenderableType | str]] = [
            ("attempts", f"{d.attempts}, idempotency key {d.idempotency_key}")
        ]
        if d.mapping_version:
            rows.append(("mapping", f"version {d.mapping_version}"))
        if d.ecolix_status is not None:
            rows.append(("Ecolix", f"{d.ecolix_status} {d.ecolix_object_id or ''}".strip()))
        if isinstance(d.ecolix_response, dict) and d.ecolix_response.get("header_only"):
            rows.append(
                ("invoice", "header-only invoice: no lines (a MINIMUM or BASIC WL e-invoice)")
            )
        if d.state == "unchanged":
            rows.append(
                (
                    "why",
                    "not sent: Ecolix already holds this payload "
                    f"(edigw replay --force {d.ref} sends it)",
                )
            )
        if d.error and d.state == "skipped":
            reasons[d.id] = d.error
            rows.append(("why", _error_line(d.error, d.error_location)))
        elif d.error:
            reasons[d.id] = d.error
            rows.append(("error", Text(_error_line(d.error, d.error_location), style="red")))
        rows += [
            ("resolved", _resolution_line(r)) for r in story.resolutions if r.document_id == d.id
        ]
        if story.with_payloads and d.payload is not None:
            rows.append(("payload", JSON(json.dumps(d.payload, ensure_ascii=False))))
        lines.append(_grid(6, rows))
        lines += _problem_lines(story, d.id, d.ref, indent=6)
    if story.events:
        lines.append(_plain("history", 2))
        lines.append(
            _grid(4, [(f"{e.at:%H:%M:%S}", _event_line(e, reasons, f.error)) for e in story.events])
        )
    for line in lines:
        if isinstance(line, _Unwrapped):
            console.print(line.text, soft_wrap=True, highlight=False, markup=False)
        else:
            console.print(line)


@dataclass(frozen=True, slots=True)
class _Unwrapped:
    """A line printed whole, never wrapped (a problem of ``show --all``: one per line, for grep)."""

    text: str


def _problem_lines(
    story: FileStory, owner: int | None, ref: str, *, indent: int
) -> list[RenderableType | _Unwrapped]:
    """The full problem list kept for a file or document (``show --all``), else a hint
    naming the command that prints it; nothing when the error text held every problem."""
    total = story.problem_totals.get(owner)
    if total is None:
        return []
    kept = story.problems.get(owner)
    if kept is None:
        return [_plain(f"({total:,} problems in all: edigw show {ref} --all)", indent)]
    pad = " " * (indent + 2)
    lines: list[RenderableType | _Unwrapped] = [_plain(f"all {total:,} problems:", indent)]
    lines += [_Unwrapped(f"{pad}{entry}") for entry in kept.entries]
    if kept.left_out:
        more = f"… and {kept.left_out:,} more (the journal keeps the first {len(kept.entries):,})"
        lines.append(_Unwrapped(f"{pad}{more}"))
    return lines


#: Validation warnings ``edigw show`` prints before pointing at ``--all``.
SHOWN_WARNINGS = 20


def _warning_lines(story: FileStory, *, indent: int) -> list[RenderableType | _Unwrapped]:
    """The warnings the validation layers left on a file that went on (those that blocked
    it are its error already): rule id, message and place, each on its line."""
    warnings = [w for w in story.findings if not w.blocking]
    if not warnings:
        return []
    shown = warnings if story.all_findings else warnings[:SHOWN_WARNINGS]
    pad = " " * (indent + 2)
    lines: list[RenderableType | _Unwrapped] = [
        _plain(f"validation warnings ({len(warnings):,}):", indent, style="yellow")
    ]
    lines += [_Unwrapped(f"{pad}{w.layer} {w.severity} {w}") for w in shown]
    if len(shown) < len(warnings):
        more = len(warnings) - len(shown)
        lines.append(_Unwrapped(f"{pad}… and {more:,} more (edigw show {story.file.ref} --all)"))
    return lines


def _event_line(e: EventRow, reasons: dict[int, str], file_error: str | None) -> str:
    reason = reasons.get(e.document_id) if e.document_id is not None else file_error
    doc = f"D-{e.document_id} " if e.document_id is not None else ""
    return f"{doc}{e.kind} {without_repeat(e.detail, reason)}".rstrip()


def export_run(console: Console, run: ExportRunRow) -> None:
    """``edigw show R-5``."""
    lines: list[RenderableType] = [
        _plain(f"{run.ref} {run.partner}/{run.flow}  {run.mode}  {run.state}")
    ]
    for label, value in (
        ("window", f"{run.window_from} → {run.window_to}"),
        ("records", run.records),
        ("calls", run.calls),
        ("file", run.file_name),
        ("sha256", run.sha256),
        ("archive", run.archive_path),
        ("error", run.error),
        ("done file", "owed: the flow's next run writes it" if run.done_file_owed else None),
    ):
        if value not in (None, ""):
            lines.append(_plain(f"{label:<9} {value}", 2))
    console.print(Group(*lines))


# --------------------------------------------------------------------------- status


def _table(title: str) -> Table:
    """A table that spends its width on values: a rule under the header, no frame, one
    space between columns."""
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        pad_edge=False,
    )


def _by_partner(flows: Sequence[str]) -> list[tuple[str, list[int]]]:
    """Flow ids grouped by partner, in order of first appearance: (partner, indexes)."""
    groups: dict[str, list[int]] = {}
    for index, flow in enumerate(flows):
        groups.setdefault(flow.partition("/")[0], []).append(index)
    return list(groups.items())


def _flow_cell(flow: str, *, configured: bool) -> Text:
    name = "  " + flow.partition("/")[2]
    return Text(name if configured else f"{name} (not configured)")


def status(console: Console, status: GatewayStatus) -> None:
    """``edigw status``: every flow's files, grouped by partner, resolved failures apart,
    health, the exports' last runs, the running gateway's health and what is wrong with it,
    and the last open errors."""
    table = _table("Inbound flows")
    table.add_column("partner/flow", overflow="fold")
    table.add_column("health", overflow="fold", max_width=HEALTH_WIDTH)
    skips = any(row.documents_skipped for row in status.flows)
    unchanged = any(row.documents_unchanged for row in status.flows)
    columns = ["files", "done", "skipped", "failed", "resolved", "busy", "docs\nfailed"]
    columns += ["docs\nskipped"] if skips else []
    columns += ["docs\nunchanged"] if unchanged else []
    calls_column = console.width >= CALLS_COLUMN_WIDTH
    columns += ["calls\n/doc"] if calls_column else []
    for column in columns:
        table.add_column(column, justify="right")
    for partner, indexes in _by_partner([row.flow for row in status.flows]):
        table.add_row(Text(partner, style="bold"))
        for row in (status.flows[i] for i in indexes):
            table.add_row(
                _flow_cell(row.flow, configured=row.configured),
                Text(row.health or UNKNOWN_HEALTH),
                str(row.files),
                str(row.done),
                str(row.skipped),
                str(row.failed + row.partially_failed),
                str(row.resolved),
                str(row.in_progress),
                str(row.documents_failed),
                *([str(row.documents_skipped)] if skips else []),
                *([str(row.documents_unchanged)] if unchanged else []),
                *([_calls_per_document(row)] if calls_column else []),
            )
    console.print(table)
    if status.exports:
        exports = _table("Exports")
        exports.add_column("partner/flow", overflow="fold")
        exports.add_column("health", overflow="fold", max_width=HEALTH_WIDTH)
        exports.add_column("last run")
        exports.add_column("state")
        exports.add_column("started (UTC)")
        for partner, indexes in _by_partner([e.flow for e in status.exports]):
            exports.add_row(Text(partner, style="bold"))
            for e in (status.exports[i] for i in indexes):
                started = f"{e.last_started_at:%Y-%m-%d %H:%M}" if e.last_started_at else "-"
                exports.add_row(
                    _flow_cell(e.flow, configured=e.configured),
                    Text(e.health or UNKNOWN_HEALTH),
                    e.last_run or "never",
                    e.last_state or "-",
                    started,
                )
        console.print(exports)
    if status.health:
        console.print(_plain(f"Gateway: {status.health}"))
    for problem in status.health_problems:  # what is wrong, each line once and whole
        console.print(_plain(problem, 2))
    notes = []
    if not calls_column and any(row.calls_per_document is not None for row in status.flows):
        per_flow = (f"{row.flow} {_calls_per_document(row)}" for row in status.flows)
        notes.append(f"Ecolix calls per document: {', '.join(per_flow)}")
    if status.next_retry_at:
        notes.append(f"Next retry: {status.next_retry_at:%Y-%m-%d %H:%M:%S} UTC")
    notes.append(
        f"Ecolix calls in the last minute: {status.calls_last_minute} "
        f"of {status.calls_per_minute} agreed per minute"
    )
    if status.shared_calls is not None:
        notes.append(
            f"Ecolix calls counting now against the shared budget (every node): "
            f"{status.shared_calls} of {status.calls_per_minute} agreed per minute"
        )
    for note in notes:
        console.print(_plain(note))
    _section(console, "Failed source moves/deletes:", status.channel_failures)
    _section(
        console,
        "Last open errors (`edigw resolve ID --note ...` once dealt with):",
        status.last_errors,
    )


def _calls_per_document(row: FlowStatus) -> str:
    return "-" if row.calls_per_document is None else f"{row.calls_per_document:.2f}"


def _section(console: Console, title: str, lines: Sequence[str]) -> None:
    """A titled list of ``WHEN REF: what`` lines, each message wrapped under itself."""
    if lines:
        console.print(Text(title, style="bold"))
        rows = [tuple(line.split(": ", 1)) if ": " in line else ("", line) for line in lines]
        console.print(_grid(2, [(head, text) for head, text in rows]))


# --------------------------------------------------------------------------- files


def _two_lines(first: str, second: str) -> Text:
    text = Text(first)
    text.append("\n" + second, style="dim")
    return text


def _count_columns(table: Table, *, waiting: bool) -> None:
    """Documents done and failed, and waiting only when some are: room for file names."""
    for column in ("done", "failed", "waiting") if waiting else ("done", "failed"):
        table.add_column(column, justify="right")


def files(console: Console, listing: Sequence[FileListing]) -> None:
    """``edigw files``: newest first, the name over its flow, documents done and failed."""
    waiting = [sum(item.documents.get(s, 0) for s in WAITING_STATES) for item in listing]
    skips = any(item.documents.get("skipped", 0) for item in listing)
    table = _table("Files")
    table.add_column("id", no_wrap=True)
    table.add_column("received (UTC)")
    table.add_column("file / flow", overflow="fold", ratio=1)
    table.add_column("state", max_width=STATE_WIDTH)
    _count_columns(table, waiting=any(waiting))
    if skips:
        table.add_column("skipped", justify="right")
    for item, wait in zip(listing, waiting, strict=True):
        f = item.file
        failure = None
        if f.state in ("failed", "partially_failed"):
            failure = "open" if item.open_failure else "resolved"
        counts = [str(item.documents.get("done", 0)), str(item.documents.get("failed", 0))]
        table.add_row(
            f.ref,
            f"{f.received_at:%Y-%m-%d %H:%M}",
            _two_lines(f.original_name, f"{f.partner}/{f.flow}"),
            Text(state_text(f.state, failure=failure)),
            *([*counts, str(wait)] if any(waiting) else counts),
            *([str(item.documents.get("skipped", 0))] if skips else []),
        )
    console.print(table)


# --------------------------------------------------------------------------- demo


def demo(console: Console, report: DemoReport) -> None:
    """``edigw demo``: what happened to each sample, why the bad ones failed, the exports,
    and the commands to look closer (they work as printed, without ECOLIX_TOKEN)."""
    waiting = any(f.waiting for f in report.files)
    skips = any(f.skipped for f in report.files)
    table = _table("Inbound files")
    table.add_column("id", no_wrap=True)
    table.add_column("file / flow", overflow="fold", ratio=1)
    table.add_column("state", max_width=STATE_WIDTH)
    _count_columns(table, waiting=waiting)
    if skips:
        table.add_column("skipped", justify="right")
    for f in report.files:
        counts = [str(f.done), str(f.failed)] + ([str(f.waiting)] if waiting else [])
        counts += [str(f.skipped)] if skips else []
        table.add_row(f.show_id, _two_lines(f.name, f.flow), Text(state_text(f.state)), *counts)
    console.print(table)
    failing = [f for f in report.files if f.reason]
    if failing:
        console.print(Text("Why they are not done", style="bold"))
        why = Table.grid(padding=(0, 1))
        why.add_column(no_wrap=True)
        why.add_column(overflow="fold", ratio=1)
        for f in failing:
            why.add_row(f.show_id, Text(f.reason))
        console.print(Padding(why, (0, 0, 0, 2)))
    created = ", ".join(f"{n} {op}" for op, n in sorted(report.objects.items())) or "none"
    console.print(_plain(f"Ecolix objects created or updated: {created}"))
    if report.decisions:
        decided = ", ".join(report.decisions)
        console.print(_plain(f"Supplier invoices decided in Ecolix, as accounts would: {decided}"))
    # The delivered file's path on its own line, as wide as the screen allows.
    console.print(Text("Exports", style="italic"))
    exports = Table.grid(padding=(0, 1))
    exports.add_column(no_wrap=True)
    exports.add_column(overflow="fold", ratio=1)
    for e in report.exports:
        calls = f"{e.calls} call" + ("" if e.calls == 1 else "s")
        head = f"{e.flow}  {e.state}, {e.records} records, {calls}"
        exports.add_row(e.show_id, _two_lines(head, e.file) if e.file else Text(head))
    console.print(Padding(exports, (0, 0, 0, 1)))
    console.print(
        _plain(
            f"{len(report.files)} files, {report.calls} Ecolix calls, {report.seconds:.1f} s. "
            f"Sandbox: {report.base_url}"
        )
    )
    console.print(Text("Look closer (no ECOLIX_TOKEN needed):", style="bold"))
    for command in report.look_closer:
        # soft wrap: a long path is wrapped by the terminal, never cut by a newline
        console.print(f"  {command}", soft_wrap=True, markup=False, highlight=False)
    console.print(
        f"Inboxes, error folders and outboxes are under {report.workspace}",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )

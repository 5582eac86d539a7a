"""The ``edigw`` command line: parses options, calls the core, renders results.

No business logic lives here; expected failures (``EdigwError``) become one-line
``click.ClickException`` messages, never tracebacks.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edigw import __version__
from edigw.errors import EdigwError

if TYPE_CHECKING:
    from edigw.channels.sftp import SftpEndpointSettings
    from edigw.config import GatewayConfig
    from edigw.demo import DemoReport
    from edigw.journal.store import ExportRunRow
    from edigw.pipeline.service import FileStory

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="edigw")
def main() -> None:
    """edigw: partner files in, Ecolix objects out, and Ecolix data back out as files.

    Example: edigw demo
    """


@main.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing edigw.yaml in DIRECTORY.")
def init_command(directory: Path, *, force: bool) -> None:
    """Write a commented starter edigw.yaml, with one partner per Ecolix package.

    Example: edigw init ./gateway && cd gateway && ECOLIX_TOKEN=T edigw run

    The shipped mappings and templates are copied beside it, so the starter is ready
    to run against the sandbox and to adapt.
    """
    from edigw.config import DEFAULT_CONFIG_NAME, write_starter
    from edigw.errors import EdigwError

    try:
        written = write_starter(directory, force=force)
    except EdigwError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Wrote {directory / DEFAULT_CONFIG_NAME} ({len(written) - 1} mapping and template files copied)."
    )
    click.echo(
        "Next: set ECOLIX_TOKEN, adapt the partners, then run `edigw run -c "
        f"{directory / DEFAULT_CONFIG_NAME}`."
    )


def config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """The ``-c/--config`` option every operational command shares."""
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path("edigw.yaml"),
        show_default=True,
        help="The gateway configuration file.",
    )(func)


@main.group("config")
def config_group() -> None:
    """Check edigw.yaml before running, or print its JSON Schema for editors.

    Example: ECOLIX_TOKEN=T edigw config check -c edigw.yaml
    """


@config_group.command("check")
@config_option
def config_check_command(config_path: Path) -> None:
    """Load the configuration and every mapping it names; report every problem at once.

    Example: ECOLIX_TOKEN=T edigw config check -c edigw.yaml
    """
    from edigw.mapping.sample import check_mappings

    config = _load(config_path)
    mappings = sorted({Path(flow.mapping) for flow in config.inbound_flows()})
    problems = [p for result in check_mappings(mappings) for p in result.problems]
    if problems:
        raise click.ClickException("\n".join(problems))
    click.echo(
        f"ok {config_path}: {len(config.partners)} partners, "
        f"{len(config.inbound_flows())} inbound flows ({len(mappings)} mappings), "
        f"{len(config.outbound_flows())} exports"
    )


@config_group.command("schema")
def config_schema_command() -> None:
    """Print the JSON Schema of edigw.yaml, for editors' completion and checks.

    Example: edigw config schema > edigw.schema.json
    """
    import json

    from edigw.config import GatewayConfig

    click.echo(json.dumps(GatewayConfig.model_json_schema(), indent=2, ensure_ascii=False))


# --------------------------------------------------------------------------- operations


def _load(config_path: Path) -> GatewayConfig:
    from edigw.config import load_config

    try:
        return load_config(config_path, environ=os.environ)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc


def _one_line(exc: EdigwError) -> str:
    problems = getattr(exc, "problems", None)
    if problems and len(problems) > 1:
        return "\n".join(str(p) for p in problems)
    return str(exc)


@main.command("run")
@config_option
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Human-readable lines or one JSON object per line.",
)
@click.option(
    "--senders",
    type=click.IntRange(1, 32),
    default=4,
    show_default=True,
    help="Threads sending documents to Ecolix (documents of one file stay in order).",
)
def run_command(config_path: Path, log_format: str, senders: int) -> None:
    """Run the gateway: watch every inbound flow, send documents, run scheduled exports.

    Example: ECOLIX_TOKEN=T edigw run -c edigw.yaml

    SIGTERM or Ctrl-C finishes the document in flight and stops cleanly; whatever is left
    is taken up from the journal at the next start.
    """
    from edigw.logs import configure_logging
    from edigw.pipeline.service import serve

    configure_logging(log_format)
    config = _load(config_path)
    try:
        serve(config, senders=senders)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc


@main.command("process")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--flow", "flow_id", required=True, help="The inbound flow, as PARTNER/FLOW.")
@config_option
def process_command(file: Path, flow_id: str, config_path: Path) -> None:
    """Process one file now through an inbound flow and print its outcome.

    Example: edigw process orders-0412.csv --flow webshop/orders

    The file is archived and journalled like any other; it is not moved or deleted.
    """
    from edigw.pipeline.service import process_file

    config = _load(config_path)
    try:
        story = process_file(config, flow_id, file)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    _render_story(story)
    if story.file.state not in ("done", "skipped_duplicate"):
        sys.exit(1)


@main.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
def status_command(config_path: Path, *, as_json: bool) -> None:
    """Show counts per partner/flow, files waiting, last errors and Ecolix call usage.

    Example: edigw status -c edigw.yaml
    """
    import dataclasses

    from edigw.pipeline.service import gateway_status

    config = _load(config_path)
    try:
        status = gateway_status(config)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(status), default=str, indent=2))
        return
    console = Console()
    table = Table(title="Flows")
    table.add_column("flow", no_wrap=True)
    for column in (
        "files",
        "done",
        "part. failed",
        "failed",
        "busy",
        "docs waiting",
        "docs failed",
    ):
        table.add_column(column, justify="right")
    for row in status.flows:
        table.add_row(
            Text(row.flow),
            str(row.files),
            str(row.done),
            str(row.partially_failed),
            str(row.failed),
            str(row.in_progress),
            str(row.documents_waiting),
            str(row.documents_failed),
        )
    console.print(table)
    if status.next_retry_at:
        console.print(f"Next retry: {status.next_retry_at:%Y-%m-%d %H:%M:%S} UTC")
    console.print(
        f"Ecolix calls in the last minute: {status.calls_last_minute} "
        f"of {status.calls_per_minute} agreed per minute"
    )
    if status.channel_failures:
        console.print("[bold]Failed source moves/deletes:[/bold]")
        for line in status.channel_failures:
            console.print(f"  {line}", markup=False, highlight=False)
    if status.last_errors:
        console.print("[bold]Last errors:[/bold]")
        for line in status.last_errors:
            console.print(f"  {line}", markup=False, highlight=False)


@main.command("show")
@click.argument("item_id", metavar="ID")
@config_option
def show_command(item_id: str, config_path: Path) -> None:
    """Show the whole story of a file (F-12), a document (D-34) or an export run (R-5).

    Example: edigw show F-12
    """
    from edigw.pipeline.service import export_story, file_story, parse_id

    config = _load(config_path)
    try:
        kind, number = parse_id(item_id)
        if kind == "R":
            _render_export(export_story(config, number))
        else:
            _render_story(file_story(config, kind, number))
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc


@main.command("replay")
@click.argument("item_ids", metavar="[ID]...", nargs=-1)
@click.option("--failed", is_flag=True, help="Replay every file that has failed documents.")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="Replay files received since this date (UTC).",
)
@click.option("--flow", "flow_id", help="Only files of this flow (PARTNER/FLOW).")
@click.option("--dry-run", is_flag=True, help="Say what would be sent; change nothing.")
@config_option
def replay_command(
    item_ids: tuple[str, ...],
    *,
    failed: bool,
    since: datetime | None,
    flow_id: str | None,
    dry_run: bool,
    config_path: Path,
) -> None:
    """Re-run files from their archived originals with the current mapping.

    Example: edigw replay --failed --flow supplier/invoices

    Documents that already succeeded are reported "already done" (their idempotency keys
    make a second send a no-op in Ecolix). R-<n> ids re-deliver an export run's file.
    """
    from rich.progress import Progress

    from edigw.pipeline.service import replay_items, select_replay

    if not item_ids and not failed and since is None:
        msg = "give IDs, --failed or --since"
        raise click.UsageError(msg)
    config = _load(config_path)
    console = Console()
    try:
        selection = select_replay(
            config,
            item_ids,
            failed=failed,
            since=since.replace(tzinfo=UTC) if since else None,
            flow=flow_id,
        )
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("replaying", total=len(selection))
            results = []
            for result in replay_items(config, selection, dry_run=dry_run):
                results.append(result)
                progress.advance(task)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    for line in (line for r in results for line in r.lines()):
        console.print(line, highlight=False, markup=False)
    if not results:
        console.print("nothing to replay")


@main.command("purge")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=1),
    required=True,
    metavar="DAYS",
    help="Forget what was received (files) or started (export runs) more than DAYS ago.",
)
@click.option(
    "--include-failed",
    is_flag=True,
    help="Also forget failed and partially failed files (default: done and skipped only).",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@config_option
def purge_command(days: int, *, include_failed: bool, dry_run: bool, config_path: Path) -> None:
    """Forget old finished exchanges: journal entries and the archived originals behind them.

    Example: edigw purge --older-than 180 --dry-run

    Only files whose outcome is final and whose source was moved, deleted or left are
    forgotten, never a file still in progress. What edigw remembers of files left on a
    partner's server stays, so they are not fetched again. Once a file is forgotten, the
    same bytes received again count as new: keep files at least as long as partners may
    send them again.
    """
    from datetime import timedelta

    from edigw.pipeline.service import purge_history

    config = _load(config_path)
    before = datetime.now(UTC) - timedelta(days=days)
    try:
        report = purge_history(
            config, before=before, include_failed=include_failed, dry_run=dry_run
        )
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    j = report.journal
    verb = "would forget" if dry_run else "forgot"
    counted = "" if dry_run else f" ({j.documents} documents, {j.events} events)"
    click.echo(
        f"{verb} {j.files} files{counted} and {j.export_runs} export runs "
        f"from before {before:%Y-%m-%d %H:%M} UTC"
    )
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {report.archive_copies} archived copies "
        f"({report.archive_bytes / 1e6:.1f} MB) that nothing points at any more"
    )


def _render_story(story: FileStory) -> None:
    console = Console()
    f = story.file
    console.print(
        f"F-{f.id} {f.original_name}  ({f.partner}/{f.flow})", highlight=False, markup=False
    )
    console.print(f"  state     {f.state}", highlight=False, markup=False)
    if f.error:
        console.print(f"  error     {f.error}", highlight=False, markup=False)
    console.print(f"  sha256    {f.sha256 or '-'}", highlight=False, markup=False)
    console.print(f"  archive   {f.archive_path or '-'}", highlight=False, markup=False)
    console.print(f"  source    {f.source_path}", highlight=False, markup=False)
    console.print(
        f"  received  {f.received_at:%Y-%m-%d %H:%M:%S} UTC", highlight=False, markup=False
    )
    for d in story.documents:
        console.print(
            f"  D-{d.id} {d.business_key}  {d.operation}  {d.state}"
            f"  attempts={d.attempts}  key={d.idempotency_key}",
            highlight=False,
            markup=False,
        )
        if d.ecolix_status is not None:
            console.print(
                f"      Ecolix {d.ecolix_status} {d.ecolix_object_id or ''}",
                highlight=False,
                markup=False,
            )
        if d.error:
            where = f" at {d.error_location}" if d.error_location else ""
            console.print(f"      error{where}: {d.error}", highlight=False, markup=False)
        if story.with_payloads and d.payload is not None:
            console.print_json(json.dumps(d.payload, ensure_ascii=False))
    for e in story.events:
        console.print(f"  {e.at:%H:%M:%S} {e.kind} {e.detail or ''}", highlight=False, markup=False)


def _render_export(run: ExportRunRow) -> None:
    console = Console()
    console.print(f"R-{run.id} {run.partner}/{run.flow}  {run.mode}  {run.state}", markup=False)
    for label, value in (
        ("window", f"{run.window_from} → {run.window_to}"),
        ("records", run.records),
        ("calls", run.calls),
        ("file", run.file_name),
        ("sha256", run.sha256),
        ("archive", run.archive_path),
        ("error", run.error),
    ):
        if value not in (None, ""):
            console.print(f"  {label:<9} {value}", highlight=False, markup=False)


@main.command("export")
@click.argument("flow_id", metavar="PARTNER/FLOW")
@click.option(
    "--full", is_flag=True, help="Export everything, not only what changed since the last run."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Render only (to stdout, or into --to DIR): no delivery, journal or high-water mark.",
)
@click.option(
    "--to",
    "to_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the file into DIR instead of the partner's channel (the mark does not move).",
)
@config_option
def export_command(
    flow_id: str, config_path: Path, to_dir: Path | None, *, full: bool, dry_run: bool
) -> None:
    """Run one export of an outbound flow now and say what was delivered.

    Example: edigw export webshop/articles --dry-run -c edigw.yaml
    """
    from edigw.config import OutboundFlow
    from edigw.pipeline.assembly import open_parts
    from edigw.pipeline.exports import export_now

    config = _load(config_path)
    try:
        flow = config.flow(flow_id)
        if not isinstance(flow, OutboundFlow):
            msg = f"{flow_id} is an inbound flow; edigw export runs outbound flows"
            raise click.ClickException(msg)
        with open_parts(config, with_channels=False, flows={}) as parts:
            result = export_now(
                parts, flow, now=datetime.now(UTC), full=full, dry_run=dry_run, to_dir=to_dir
            )
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    where = f"{result.show_id} " if result.show_id else ""
    if result.state == "empty":
        click.echo(
            f"{where}nothing changed since {result.window_from}: no file ({result.calls} calls)",
            err=dry_run,
        )
        return
    if dry_run and to_dir is None and result.path is not None:
        try:
            sys.stdout.buffer.write(result.path.read_bytes())
            sys.stdout.flush()
        finally:
            result.path.unlink(missing_ok=True)
        click.echo(
            f"dry run: {result.records} records, {result.calls} calls, would be {result.file_name}",
            err=True,
        )
        return
    target = result.delivered.path if result.delivered else result.path
    click.echo(
        f"{where}{result.state if not dry_run else 'dry run'}: {result.file_name} → {target} "
        f"({result.mode}, {result.records} records, {result.calls} Ecolix calls)"
    )


@main.group("template")
def template_group() -> None:
    """Work on outbound templates.

    Example: edigw template test templates/webshop-articles.csv.j2 --data sample.json
    """


@template_group.command("test")
@click.argument("template", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='Sample records: a JSON list, or {"records": [...], "lookups": {"articles.list": [...]}}.',
)
@click.option("--timezone", default="Europe/Paris", show_default=True, help="The flow's time zone.")
@click.option(
    "--encoding",
    type=click.Choice(["utf-8", "utf-8-sig", "cp1252"]),
    default="utf-8",
    show_default=True,
    help="Encoding of the output, as the flow would write it.",
)
@click.option(
    "--xsd",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Validate XML output against this XSD.",
)
@click.option("--now", "now_text", help="The run time the template sees (ISO 8601; default: now).")
def template_test_command(
    template: Path,
    data_path: Path,
    timezone: str,
    encoding: str,
    xsd: Path | None,
    now_text: str | None,
) -> None:
    """Render a template on sample records and print the file it would deliver.

    Example: edigw template test templates/quotes.xml.j2 --data tests/golden/outbound/quotes.xml.json
    """
    import tempfile

    from edigw.outbound.export import render_sample

    try:
        now = datetime.fromisoformat(now_text) if now_text else datetime.now(UTC)
    except ValueError as exc:
        msg = f"--now: not an ISO 8601 date-time: {now_text!r}"
        raise click.ClickException(msg) from exc
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    try:
        sample = json.loads(data_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"{data_path}: cannot read JSON sample data: {exc}"
        raise click.ClickException(msg) from exc
    with tempfile.TemporaryDirectory(prefix="edigw-template-") as tmp:
        out = Path(tmp) / "rendered"
        try:
            count = render_sample(
                template, sample, out, now=now, timezone=timezone, encoding=encoding, xsd=xsd
            )
        except EdigwError as exc:
            raise click.ClickException(_one_line(exc)) from exc
        sys.stdout.buffer.write(out.read_bytes())
        sys.stdout.flush()
    click.echo(f"{count} records rendered", err=True)


@main.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Workspace to create (default: a new temporary folder).",
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="Leave the gateway and the sandbox running (watching the inboxes) until Ctrl-C.",
)
def demo_command(directory: Path | None, *, keep_running: bool) -> None:
    """Run the whole gateway on embedded defaults: sandbox, samples, every flow, every export.

    Example: edigw demo

    Starts the Ecolix sandbox in-process, writes the starter configuration into a
    workspace, drops the shipped samples (good and deliberately bad) into the inboxes,
    processes them, runs every export once and prints what happened.
    """
    import tempfile

    from edigw.demo import run_demo

    workspace = directory or Path(tempfile.mkdtemp(prefix="edigw-demo-"))
    click.echo(f"edigw demo in {workspace}")
    try:
        report = run_demo(workspace, keep_running=keep_running, on_ready=_render_demo)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    if not keep_running:
        _render_demo(report)


def _render_demo(report: DemoReport) -> None:
    console = Console()
    table = Table(title="Inbound files")
    for column in ("id", "flow", "file", "state", "docs done", "failed", "waiting", "reason"):
        table.add_column(column, overflow="fold")
    for f in report.files:
        table.add_row(
            *(
                Text(value)
                for value in (
                    f.show_id,
                    f.flow,
                    f.name,
                    f.state,
                    str(f.done),
                    str(f.failed),
                    str(f.waiting),
                    f.reason[:100],
                )
            )
        )
    console.print(table)
    created = ", ".join(f"{n} {op}" for op, n in sorted(report.objects.items())) or "none"
    console.print(f"Ecolix objects created or updated: {created}", highlight=False)
    exports = Table(title="Exports")
    for column in ("id", "flow", "state", "records", "calls", "file"):
        exports.add_column(column, overflow="fold")
    for e in report.exports:
        exports.add_row(
            *(Text(v) for v in (e.show_id, e.flow, e.state, str(e.records), str(e.calls), e.file))
        )
    console.print(exports)
    console.print(
        f"{len(report.files)} files, {report.calls} Ecolix calls, {report.seconds:.1f} s.\n"
        f"Sandbox: {report.base_url}\n"
        f"Look closer: edigw show F-1 -c {report.config_path}  ·  "
        f"edigw status -c {report.config_path}  ·  inboxes, error folders and outboxes "
        f"under {report.workspace}",
        highlight=False,
    )


# --------------------------------------------------------------------------- sandbox


@main.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=8800, show_default=True, help="TCP port to listen on.")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("sandbox.sqlite"),
    show_default=True,
    help="SQLite database; created and seeded when new, kept across restarts.",
)
@click.option(
    "--token",
    envvar="ECOLIX_TOKEN",
    required=True,
    help="Bearer token clients must present (or ECOLIX_TOKEN).",
)
@click.option(
    "--rate-limit",
    default="600/min",
    show_default=True,
    help="Calls allowed per token in a sliding window: N/s, N/min or N/hour.",
)
@click.option(
    "--seed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Seed JSON for a new database (default: samples/sandbox-seed.json).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Server log level; debug also logs every request.",
)
def sandbox_command(
    host: str,
    port: int,
    db_path: Path,
    token: str,
    rate_limit: str,
    seed: Path | None,
    log_level: str,
) -> None:
    """Run the Ecolix sandbox: the whole contract over SQLite, for demos, tests and onboarding.

    Example: edigw sandbox --port 8800 --db sandbox.sqlite --token T --rate-limit 600/min
    """
    from edigw.sandbox.server import SandboxOptions, serve

    click.echo(f"Ecolix sandbox on http://{host}:{port}/api/v1 (database {db_path})", err=True)
    try:
        serve(
            SandboxOptions(
                db_path=db_path,
                token=token,
                host=host,
                port=port,
                rate_limit=rate_limit,
                seed=seed,
                log_level=log_level,
            )
        )
    except EdigwError as exc:
        raise click.ClickException(str(exc)) from exc


# --------------------------------------------------------------------------- sftp


@main.group("sftp")
def sftp_group() -> None:
    """Partner SFTP servers: pin their host keys and check connections.

    Example: edigw sftp check acme -c edigw.yaml
    """


def _sftp_endpoint(config_path: Path, name: str) -> tuple[GatewayConfig, SftpEndpointSettings]:
    from edigw.channels.sftp import endpoint_settings

    config = _load(config_path)
    endpoint = config.sftp_endpoints.get(name)
    if endpoint is None:
        known = ", ".join(sorted(config.sftp_endpoints)) or "none configured"
        msg = f"unknown SFTP endpoint {name!r} (sftp_endpoints: {known})"
        raise click.ClickException(msg)
    return config, endpoint_settings(name, endpoint)


@sftp_group.command("trust")
@click.argument("endpoint")
@click.option(
    "--fingerprint",
    "expected",
    metavar="SHA256:...",
    help="Pin without asking, only if the server presents exactly this fingerprint.",
)
@config_option
def sftp_trust_command(endpoint: str, expected: str | None, config_path: Path) -> None:
    """Show an SFTP server's host key fingerprint and pin it in the endpoint's known_hosts.

    Example: edigw sftp trust acme --fingerprint SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8

    Compare the fingerprint with the one the partner gives you (by phone, not by e-mail
    from an unknown sender) before confirming.
    """
    from edigw.channels.sftp import presented_key, trust

    _, settings = _sftp_endpoint(config_path, endpoint)
    try:
        presented = presented_key(settings)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    click.echo(f"{settings.host}:{settings.port} presents {presented.description}")
    if presented.status == "pinned":
        click.echo(f"Already trusted in {settings.known_hosts}.")
        return
    if presented.status == "changed":
        click.echo(f"WARNING: {presented.detail}", err=True)
    if expected is not None:
        if expected.strip() != presented.fingerprint:
            msg = f"the server presents {presented.fingerprint}, not {expected}; nothing pinned"
            raise click.ClickException(msg)
    elif not click.confirm(f"Pin this key for endpoint {endpoint}?", default=False):
        msg = "not pinned"
        raise click.ClickException(msg)
    path = trust(settings, presented)
    click.echo(f"Pinned {presented.description} for {endpoint} in {path}.")


@sftp_group.command("check")
@click.argument("endpoint")
@config_option
def sftp_check_command(endpoint: str, config_path: Path) -> None:
    """Connect to an SFTP endpoint and report each step: connect, host key, login, folders, write.

    Example: edigw sftp check acme -c edigw.yaml

    The folders listed are those of the flows using the endpoint; write permission is
    tested in outbound folders with a hidden temporary file that is removed at once.
    """
    from edigw.channels.sftp import check_endpoint

    config, settings = _sftp_endpoint(config_path, endpoint)
    folders: list[str] = []
    write_folders: list[str] = []
    for flow in config.flows():
        channel = flow.channel
        if channel.type == "sftp" and channel.endpoint == endpoint:
            folders.append(channel.path)
            if flow.direction == "outbound":
                write_folders.append(channel.path)
    steps = check_endpoint(
        settings,
        folders=list(dict.fromkeys(folders)),
        write_folders=list(dict.fromkeys(write_folders)),
    )
    for step in steps:
        mark = "ok  " if step.ok else "FAIL"
        click.echo(f"{mark} {step.step}: {step.detail}")
    failed = [step for step in steps if not step.ok]
    if failed:
        msg = f"{len(failed)} of {len(steps)} checks failed for endpoint {endpoint}"
        raise click.ClickException(msg)


@main.group("mapping")
def mapping_group() -> None:
    """Check mapping files and try them on samples, offline (no call to Ecolix).

    Example: edigw mapping check mappings/
    """


@mapping_group.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def mapping_check_command(paths: tuple[Path, ...]) -> None:
    """Validate mapping files and their lookup tables, reporting every problem with its line.

    Example: edigw mapping check mappings/ecommerce-orders-csv.yaml

    PATHS are mapping files or folders of them (default: ./mappings).
    """
    from edigw.mapping.sample import check_mappings

    results = check_mappings(paths or (Path("mappings"),))
    if not results:
        msg = "no mapping file (*.yaml) found"
        raise click.ClickException(msg)
    failed = 0
    for result in results:
        if result.problems:
            failed += 1
            click.echo(f"FAIL {result.path}")
            for problem in result.problems:
                click.echo(f"  {problem}")
        else:
            assert result.mapping is not None
            click.echo(f"ok   {result.path} -> {result.mapping.target}")
    if failed:
        msg = f"{failed} of {len(results)} mapping file(s) have problems"
        raise click.ClickException(msg)


@mapping_group.command("test")
@click.argument("mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("sample", type=click.Path(exists=True, path_type=Path))
@click.option("--explain", is_flag=True, help="Show on stderr where every target value came from.")
@click.option(
    "--expect",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Golden JSON file: print a diff and exit 1 when the output differs.",
)
@click.option("--encoding", default=None, help="Override the mapping's encoding (e.g. cp1252).")
def mapping_test_command(
    mapping: Path, sample: Path, *, explain: bool, expect: Path | None, encoding: str | None
) -> None:
    """Print, as JSON, the Ecolix operations a sample file (or folder of samples) would produce.

    Example: edigw mapping test mappings/ecommerce-orders-csv.yaml samples/ecommerce/ecommerce-orders-csv

    Nothing is sent to Ecolix. Without --expect, the exit code is 1 when a document has
    problems or a file cannot be read.
    """
    from edigw.errors import EdigwError
    from edigw.mapping import load_mapping
    from edigw.mapping.sample import diff_expected, run_samples

    try:
        compiled = load_mapping(mapping)
        run = run_samples(compiled, sample, explain=explain, encoding=encoding)
        difference = diff_expected(run, expect) if expect else None
    except EdigwError as exc:
        problems = getattr(exc, "problems", None)
        if isinstance(problems, list) and len(problems) > 1:
            raise click.ClickException("\n".join(str(p) for p in problems)) from exc
        raise click.ClickException(str(exc)) from exc
    for note in run.notes:
        click.echo(note, err=True)
    for line in run.explanations:
        click.echo(line, err=True)
    click.echo(run.to_json(), nl=False)
    if expect is not None:
        if difference:
            click.echo("\n".join(difference), err=True)
            msg = f"output differs from {expect}"
            raise click.ClickException(msg)
        click.echo(f"output matches {expect}", err=True)
    elif not run.ok:
        msg = 'some documents have problems (see "problems" above)'
        raise click.ClickException(msg)


if __name__ == "__main__":  # pragma: no cover
    main()

"""Outbound flows by hand: ``edigw export`` runs one export now, ``edigw template test``
renders a template on sample records."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from edigw.cli.shared import _echo_json, _load, _one_line, config_option, json_option
from edigw.errors import EdigwError


@click.command("export")
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
@json_option
@config_option
def export_command(
    flow_id: str,
    config_path: Path,
    to_dir: Path | None,
    *,
    full: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Run one export of an outbound flow now and say what was delivered.

    Example: edigw export webshop/articles --dry-run -c edigw.yaml

    With --json, one object tells the run (a dry run then prints no file: give --to DIR
    to keep it).
    """
    from edigw import reports
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
    if as_json:
        data = reports.export_result_data(flow.id, result, dry_run=dry_run)
        if dry_run and to_dir is None and result.path is not None:
            result.path.unlink(missing_ok=True)  # rendered to count, not kept
            data["path"] = None
        _echo_json(data)
        return
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
    left_out = f", {result.left_out} left out by the flow's filters" if result.left_out else ""
    files = f"{len(result.files)} files, the last " if len(result.files) > 1 else ""
    click.echo(
        f"{where}{result.state if not dry_run else 'dry run'}: {files}{result.file_name} → {target} "
        f"({result.mode}, {result.records} records{left_out}, {result.calls} Ecolix calls)"
    )


@click.group("template")
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
@click.option(
    "--set",
    "set_values",
    multiple=True,
    metavar="NAME=VALUE",
    help="A setting the template reads as settings.NAME (as edigw.yaml's settings: give it).",
)
def template_test_command(
    template: Path,
    data_path: Path,
    timezone: str,
    encoding: str,
    xsd: Path | None,
    now_text: str | None,
    set_values: tuple[str, ...],
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
    settings = {}
    for item in set_values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            msg = f"--set {item!r}: write NAME=VALUE, e.g. --set company_name='Outils Martin'"
            raise click.ClickException(msg)
        settings[name.strip()] = value
    with tempfile.TemporaryDirectory(prefix="edigw-template-") as tmp:
        out = Path(tmp) / "rendered"
        try:
            count = render_sample(
                template,
                sample,
                out,
                now=now,
                timezone=timezone,
                encoding=encoding,
                xsd=xsd,
                settings=settings,
            )
        except EdigwError as exc:
            raise click.ClickException(_one_line(exc)) from exc
        sys.stdout.buffer.write(out.read_bytes())
        sys.stdout.flush()
    click.echo(f"{count} records rendered", err=True)

"""Reviewing what the gateway did, from the journal: ``edigw status``, ``show`` and
``files``, and ``resolve`` to acknowledge failures."""

from __future__ import annotations

import dataclasses
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console

from edigw.cli.shared import _echo_json, _load, _one_line, config_option, json_option
from edigw.errors import ConfigError, EdigwError


@click.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
def status_command(config_path: Path, *, as_json: bool) -> None:
    """Show every flow's files and open failures, exports, last errors and call usage.

    Example: edigw status -c edigw.yaml

    Reads the journal only: no ECOLIX_TOKEN needed. Failures resolved with `edigw resolve`
    are counted apart ("resolved") and left out of the last errors. Each flow's Ecolix calls
    per finished document count retries (more than 1) and calls spared (less). On a
    PostgreSQL journal it shows the calls every node counts now against the shared budget
    (that line needs ECOLIX_TOKEN: the budget is kept per token).
    """
    from edigw import render
    from edigw.config import load_config
    from edigw.pipeline.gateway_status import status_with_health

    try:
        config = load_config(config_path, environ=os.environ, secrets_optional=True)
    except ConfigError as exc:
        _status_unloaded(config_path, exc, as_json=as_json)
    try:
        status, published = status_with_health(config)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    if as_json:
        data = dataclasses.asdict(status)
        del data["health_problems"]  # the snapshot holds them, with the rest
        _echo_json({**data, "health": published.to_dict()})
        return
    render.status(Console(), status)


def _status_unloaded(config_path: Path, error: ConfigError, *, as_json: bool) -> NoReturn:
    """``edigw status`` with an ``edigw.yaml`` that does not load: the error (file and
    line), then the health last published and the journal's counts found from the data
    folder it names (or the default); exits 1."""
    import dataclasses

    from edigw import render
    from edigw.pipeline.unloaded import status_without_config

    found = status_without_config(config_path, dict(os.environ))
    problems = list(error.problems) or [str(error)]
    if as_json:
        status = None
        if found.status is not None:
            status = dataclasses.asdict(found.status)
            del status["health_problems"]
        _echo_json(
            {
                "config_error": problems,
                "data_dir": str(found.data_dir),
                "health": found.health.to_dict(),
                "journal": status,
                "journal_note": found.journal_note or None,
            }
        )
        sys.exit(1)
    click.echo(f"The configuration is invalid ({config_path}):")
    for problem in problems:
        click.echo(f"  {problem}")
    click.echo(f"Showing what {found.data_dir} holds (the data folder as far as known).")
    if found.status is not None:
        render.status(Console(), found.status)
    else:
        click.echo(f"Gateway: {found.health.summary}")
        for problem in found.health.problems():
            click.echo(f"  {problem}")
        click.echo(f"Journal: unknown ({found.journal_note})")
    sys.exit(1)


@click.command("show")
@click.argument("item_id", metavar="ID")
@click.option(
    "--all",
    "all_problems",
    is_flag=True,
    help="Print every problem kept, not only the first ones an error text holds.",
)
@json_option
@config_option
def show_command(item_id: str, config_path: Path, *, all_problems: bool, as_json: bool) -> None:
    """Show the whole story of a file (F-12), a document (D-34) or an export run (R-5).

    Example: edigw show F-12 --all

    Reads the journal only: no ECOLIX_TOKEN needed.
    """
    from edigw import render, reports
    from edigw.pipeline.review import parse_id
    from edigw.pipeline.stories import export_story, file_story

    config = _load(config_path, secrets=False)
    console = Console()
    try:
        kind, number = parse_id(item_id)
        if kind == "R":
            run = export_story(config, number)
            if as_json:
                _echo_json(reports.export_run_data(run))
            else:
                render.export_run(console, run)
            return
        story = file_story(config, kind, number, all_problems=all_problems)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    if as_json:
        _echo_json(reports.story_data(story))
    else:
        render.story(console, story)


def _since(text: str | None) -> datetime | None:
    from edigw.pipeline.review import parse_since

    try:
        return None if text is None else parse_since(text, now=datetime.now(UTC))
    except EdigwError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("files")
@click.option("--flow", "flow_id", help="Only this flow's files (PARTNER/FLOW).")
@click.option(
    "--state",
    type=click.Choice(
        [
            "received",
            "parsed",
            "done",
            "partially_failed",
            "failed",
            "skipped_duplicate",
            "unresolved",
            "resolved",
        ]
    ),
    help="Only files in this state; unresolved: failures nobody resolved yet.",
)
@click.option(
    "--since", "since_text", metavar="WHEN", help="Received since: 2d, 12h, 30m or a date."
)
@click.option(
    "--name",
    metavar="GLOB",
    help="File name pattern, any case (commandes_*.csv); plain text matches anywhere.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Show at most this many files, newest first.",
)
@json_option
@config_option
def files_command(
    flow_id: str | None,
    state: str | None,
    since_text: str | None,
    name: str | None,
    limit: int,
    config_path: Path,
    *,
    as_json: bool,
) -> None:
    """List received files, newest first, with their state and documents done and failed.

    Example: edigw files --flow webshop/orders --since 2d --name '*1128*'

    Reads the journal only: no ECOLIX_TOKEN needed. `edigw show ID` tells a file's story.
    """
    from edigw import render, reports
    from edigw.pipeline.review import list_files

    since = _since(since_text)
    config = _load(config_path, secrets=False)
    try:
        listing = list_files(
            config, flow=flow_id, state=state, since=since, name=name, limit=limit + 1
        )
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    more = len(listing) > limit
    listing = listing[:limit]
    if as_json:
        _echo_json([reports.listing_data(item) for item in listing])
        return
    if not listing:
        click.echo("no file matches")
        return
    console = Console()
    render.files(console, listing)
    if more:
        click.echo(f"showing the newest {limit}: narrow the search or give --limit")


@click.command("resolve")
@click.argument("item_ids", metavar="ID...", nargs=-1, required=True)
@click.option("--note", required=True, help="Why: what was done, or why nothing needs doing.")
@click.option("--by", "by", help="Who resolves (default: the user running the command).")
@config_option
def resolve_command(
    item_ids: tuple[str, ...], note: str, by: str | None, config_path: Path
) -> None:
    """Acknowledge failed files (F-12) or documents (D-40) so they no longer count as open.

    Example: edigw resolve F-12 --note "partner resends it on Monday"

    The journal keeps who, when and the note, and `edigw show` tells them. A resolved
    failure leaves the open failures of `edigw status`, `edigw files --state unresolved`
    and `edigw replay --failed`; if it fails again later (a replay), it is open again.
    """
    import getpass

    from edigw.pipeline.review import resolve_items

    config = _load(config_path, secrets=False)
    try:
        author = by or getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment nor the password database
        author = "unknown"
    try:
        results = resolve_items(config, item_ids, by=author, note=note)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    for result in results:
        if result.resolution is not None:
            click.echo(f"{result.ref} resolved by {result.resolution.resolved_by}")
    errors = [result.error for result in results if result.error]
    if errors:
        raise click.ClickException("\n".join(errors))

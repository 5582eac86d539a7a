"""Sending files through an inbound flow by hand: ``edigw process`` takes one file now,
``edigw replay`` re-runs archived ones with the current mapping."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from edigw.cli.shared import (
    _echo_json,
    _load,
    _need_secrets,
    _one_line,
    config_option,
    json_option,
)
from edigw.errors import EdigwError

if TYPE_CHECKING:
    from edigw.pipeline.stories import FileStory


@click.command("process")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--flow", "flow_id", required=True, help="The inbound flow, as PARTNER/FLOW.")
@config_option
def process_command(file: Path, flow_id: str, config_path: Path) -> None:
    """Process one file now through an inbound flow and print its outcome.

    Example: edigw process orders-0412.csv --flow webshop/orders

    The file is archived and journalled like any other; it is not moved or deleted.
    """
    from edigw.pipeline.stories import process_file

    config = _load(config_path)
    try:
        story = process_file(config, flow_id, file)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    _render_story(story)
    if story.file.state not in ("done", "skipped_duplicate"):
        sys.exit(1)


def _render_story(story: FileStory) -> None:
    from edigw import render

    render.story(Console(), story)


@click.command("replay")
@click.argument("item_ids", metavar="[ID]...", nargs=-1)
@click.option(
    "--failed",
    is_flag=True,
    help="Replay every failed or partially failed file not resolved (`edigw resolve`).",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="Replay files received since this date (UTC).",
)
@click.option("--flow", "flow_id", help="Only files of this flow (PARTNER/FLOW).")
@click.option(
    "--dry-run", is_flag=True, help="Say what would be sent; change nothing (no token needed)."
)
@click.option(
    "--force",
    is_flag=True,
    help="Also send the upserts journalled unchanged (Ecolix had accepted the same payload),"
    " e.g. after the customer was edited in Ecolix by hand.",
)
@json_option
@config_option
def replay_command(
    item_ids: tuple[str, ...],
    *,
    failed: bool,
    since: datetime | None,
    flow_id: str | None,
    dry_run: bool,
    force: bool,
    as_json: bool,
    config_path: Path,
) -> None:
    """Re-run files from their archived originals with the current mapping.

    Example: edigw replay --failed --flow supplier/invoices

    Documents that already succeeded are reported "already done" (their idempotency keys
    make a second send a no-op in Ecolix), and upserts journalled "unchanged" are not sent
    unless --force. R-<n> ids re-deliver an export run's file.
    A file that ends done has the copy its failure left in the error folder put away
    (moved to the done folder, or deleted when the flow deletes or leaves its files),
    with its stale .error.txt.
    """
    from rich.progress import Progress

    from edigw import reports
    from edigw.pipeline.replay import replay_items, select_replay

    if not item_ids and not failed and since is None:
        msg = "give IDs, --failed or --since"
        raise click.UsageError(msg)
    config = _load(config_path, secrets=False)
    if not dry_run:
        _need_secrets(config, "replay sends documents to Ecolix (--dry-run needs no token)")
    console = Console()
    progress_console = Console(stderr=True)
    try:
        selection = select_replay(
            config,
            item_ids,
            failed=failed,
            since=since.replace(tzinfo=UTC) if since else None,
            flow=flow_id,
        )
        with Progress(
            console=progress_console, transient=True, disable=not progress_console.is_terminal
        ) as progress:
            task = progress.add_task("replaying", total=len(selection))
            results = []
            for result in replay_items(config, selection, dry_run=dry_run, force=force):
                results.append(result)
                progress.advance(task)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    if as_json:
        _echo_json([reports.replay_data(r) for r in results])
        return
    for line in (line for r in results for line in r.lines()):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if not results:
        console.print("nothing to replay")

"""Keeping the journal and the archive in order: ``edigw purge`` forgets old exchanges,
``edigw nodes`` lists the nodes the journal knows and forgets retired ones."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edigw.cli.shared import _echo_json, _load, _one_line, config_option, json_option
from edigw.errors import EdigwError

if TYPE_CHECKING:
    from edigw.config import GatewayConfig


@click.command("purge")
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

    Works on the journal and the archive only: no ECOLIX_TOKEN needed.
    Only files whose outcome is final and whose source was moved, deleted or left are
    forgotten, never a file still in progress. What edigw remembers of files left on a
    partner's server stays, so they are not fetched again. Once a file is forgotten, the
    same bytes received again count as new: keep files at least as long as partners may
    send them again.
    """
    from datetime import timedelta

    from edigw.pipeline.retention import purge_history

    config = _load(config_path, secrets=False)
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


@click.group("nodes", invoke_without_command=True)
@json_option
@config_option
@click.pass_context
def nodes_group(ctx: click.Context, config_path: Path, *, as_json: bool) -> None:
    """List the nodes the journal knows: archive markers and gateway heartbeats.

    Example: edigw nodes -c edigw.yaml

    Reads the journal only: no ECOLIX_TOKEN needed. A node sharing an archive folder
    (archive: {kind: folder}) is named by host and data folder (gw3:/srv/edigw/data) and
    shows its marker, and whether the marker file is in the folder; a running gateway
    (PostgreSQL journal) is named by host and pid (gw3:4242) and shows when it was last
    seen. "alive": seen within nodes.takeover (a marker node: any gateway of its host).
    A node retired for good keeps its marker row; `edigw nodes forget NODE` removes it.
    """
    if ctx.invoked_subcommand is not None:
        return
    from edigw.journal.node_roster import roster

    config = _load(config_path, secrets=False)
    try:
        known = roster(
            config.journal_url, takeover=config.nodes.takeover, folder=_shared_folder(config)
        )
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    if as_json:
        _echo_json([dataclasses.asdict(node) for node in known])
        return
    if not known:
        click.echo("the journal knows no node (no shared archive folder, no heartbeat)")
        return
    for node in known:
        if node.marker is not None:
            where = {True: "in the folder", False: "MISSING from the folder", None: ""}
            seen = f"marker written {node.marker_written_at:%Y-%m-%d %H:%M} UTC"
            detail = f"{node.marker} {where[node.marker_present]}".rstrip()
        else:
            seen = f"last seen {node.seen_at:%Y-%m-%d %H:%M:%S} UTC"
            detail = "no archive marker"
        state = "alive" if node.alive else "not seen"
        click.echo(f"{node.node}  {state}, {seen}  {detail}")


def _shared_folder(config: GatewayConfig) -> Path | None:
    """The archive folder every node shares, when ``archive: {kind: folder}``."""
    from edigw.config import FolderArchiveSettings

    chosen = config.archive
    return Path(chosen.path) if isinstance(chosen, FolderArchiveSettings) else None


@nodes_group.command("forget")
@click.argument("node")
@click.option(
    "--force",
    is_flag=True,
    help="Forget it even though a gateway of its host was seen within nodes.takeover.",
)
@config_option
def nodes_forget_command(node: str, config_path: Path, *, force: bool) -> None:
    """Forget a node retired for good: its archive marker row and file, its heartbeat row.

    Example: edigw nodes forget gw3:/srv/edigw/data -c edigw.yaml

    Needed once a retired node's marker file is gone from the shared archive folder: every
    other node refuses to start until then. Refused while a gateway of NODE's host was seen
    within nodes.takeover (the journal does not say which process uses which data folder):
    stop it first, or --force when that gateway is another node of the same host. A node
    that starts again later simply writes a new marker. Reads and writes the journal only:
    no ECOLIX_TOKEN needed.
    """
    from edigw.journal.node_roster import forget

    config = _load(config_path, secrets=False)
    try:
        gone = forget(
            config.journal_url,
            node,
            takeover=config.nodes.takeover,
            folder=_shared_folder(config),
            force=force,
        )
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    removed = [
        *(["its archive marker row"] if gone.marker_row else []),
        *([f"its marker file {gone.marker_file}"] if gone.marker_file is not None else []),
        *(["its heartbeat row"] if gone.heartbeat_row else []),
    ]
    click.echo(f"forgot node {node}: removed {' and '.join(removed)}")

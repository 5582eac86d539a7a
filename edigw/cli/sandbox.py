"""``edigw sandbox``: the Ecolix sandbox served over SQLite, with its ``--latency`` option."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from edigw.errors import EdigwError

if TYPE_CHECKING:
    from edigw.sandbox.latency import Latency


def _latency_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> Latency | None:
    from edigw.sandbox.latency import parse_latency

    if value is None:
        return None
    try:
        return parse_latency(value)
    except EdigwError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("sandbox")
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
@click.option(
    "--latency",
    callback=_latency_option,
    default=None,
    help="Delay every answer as a remote Ecolix would: 50ms, 0.05s, 50ms±10ms (default: none).",
)
def sandbox_command(
    host: str,
    port: int,
    db_path: Path,
    token: str,
    rate_limit: str,
    seed: Path | None,
    log_level: str,
    latency: Latency | None,
) -> None:
    """Run the Ecolix sandbox: the whole contract over SQLite, for demos, tests and onboarding.

    Example: edigw sandbox --port 8800 --db sandbox.sqlite --token T --rate-limit 600/min
    """
    from edigw.sandbox.server import SandboxOptions, serve

    delayed = f", every answer delayed {latency}" if latency else ""
    click.echo(
        f"Ecolix sandbox on http://{host}:{port}/api/v1 (database {db_path}{delayed})", err=True
    )
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
                latency=latency,
            )
        )
    except EdigwError as exc:
        raise click.ClickException(str(exc)) from exc

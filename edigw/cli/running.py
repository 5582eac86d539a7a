"""Running the gateway: ``edigw run`` (its ``--senders``, ``--processes`` and exit statuses)
and ``edigw demo``, the whole gateway on embedded defaults."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click
from rich.console import Console

from edigw.cli.shared import _load, _one_line, config_option
from edigw.errors import EdigwError

if TYPE_CHECKING:
    from edigw.demo import DemoReport
    from edigw.pipeline.concurrency import Senders


#: ``edigw run`` exit status when its supervisor gave up on a loop that kept crashing.
EXIT_GAVE_UP = 3
#: ``edigw run`` exit status when loops were still busy as the stop timeout ran out.
EXIT_STOP_TIMEOUT = 4


#: Most senders ``edigw run --senders`` starts (``edigw.pipeline.concurrency.MAX_IN_FLIGHT``).
MAX_SENDERS = 32


class SendersParam(click.ParamType[Any]):
    """``--senders``: ``auto`` or a number of senders from 1 to :data:`MAX_SENDERS`."""

    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "auto" or isinstance(value, int):
            return value
        try:
            number = int(value)
        except ValueError:
            number = 0
        if not 1 <= number <= MAX_SENDERS:
            self.fail(f"{value!r} is neither auto nor a number from 1 to {MAX_SENDERS}", param, ctx)
        return number


def _processes(given: str | None) -> int | Literal["auto"] | None:
    """``--processes`` as :func:`edigw.pipeline.service.serve` takes it."""
    if given == "auto":
        return "auto"
    return None if given is None else int(given)


@click.command("run")
@config_option
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="text lines, or json: one object a line with the flow, file and document ids "
    "(default: log_format in edigw.yaml, else text).",
)
@click.option(
    "--senders",
    type=SendersParam(),
    default="auto",
    show_default=True,
    help="Documents sent to Ecolix at once, one call in flight each (documents of one file "
    "stay in order): auto follows the latency Ecolix's answers show (4 to 32 at once: about "
    "13 when answers take 50 ms, 4 when they come at once), or a fixed number from 1 to 32.",
)
@click.option(
    "--processes",
    type=click.Choice(["1", "2", "auto"]),
    default=None,
    help="1: one process; 2: the senders in a second process, so that taking files in and "
    "sending use two cores (faster on busy flows, about twice the memory); auto: 2 when "
    "edigw may use two cores or more, else 1 (default: processes in edigw.yaml, else 1).",
)
@click.option(
    "--http",
    "http",
    metavar="HOST:PORT",
    default=None,
    help="Serve /healthz, /readyz and /metrics (Prometheus) on this address, e.g. "
    "127.0.0.1:9464 (default: http.listen in edigw.yaml, else none).",
)
def run_command(
    config_path: Path,
    log_format: str | None,
    senders: Senders,
    processes: str | None,
    http: str | None,
) -> None:
    """Run the gateway: watch every inbound flow, send documents, run scheduled exports.

    Example: ECOLIX_TOKEN=T edigw run -c edigw.yaml --http 127.0.0.1:9464

    The local folders the configuration names are created first. SIGTERM or Ctrl-C lets
    the calls in flight and the queued moves finish (supervisor.stop_timeout), then stops;
    whatever is left is taken up from the journal at the next start. Exit status: 0
    stopped on request; 1 could not start; 3 a loop kept crashing (let the service
    manager restart edigw); 4 the stop timeout ran out. Failures, crashes and a call
    budget used up are told by webhook and e-mail when edigw.yaml has an alerts: section
    (grouped: the first at once, the rest of the minute as one digest).

    Edits are picked up without a restart: a changed mapping, lookup table, layout or
    template is reloaded once it passes `edigw mapping check`; SIGHUP reads edigw.yaml
    again (flows added, removed, changed). A broken edit changes nothing and shows in
    `edigw status`.
    """
    from edigw.logs import configure_logging
    from edigw.malloc_arenas import limit_malloc_arenas
    from edigw.pipeline.service import serve

    config = _load(config_path)
    log_format = log_format or config.log_format
    configure_logging(log_format)
    limit_malloc_arenas(os.environ)  # before any thread starts
    try:
        outcome = serve(
            config,
            senders=senders,
            http=http,
            config_path=config_path,
            environ=os.environ,
            processes=_processes(processes),
            log_format=log_format,
        )
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    if outcome.failure:
        sys.exit(EXIT_GAVE_UP)
    if outcome.still_busy:
        sys.exit(EXIT_STOP_TIMEOUT)


@click.command("demo")
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
    from edigw import render

    render.demo(Console(), report)

"""The ``edigw`` command line: parses options, calls the core, renders results.

No business logic lives here; expected failures (``EdigwError``) become one-line
``click.ClickException`` messages, never tracebacks.

This module holds the root group, ``main``; the commands live by what they do:
``configuration`` (init, config), ``running`` (run, demo), ``processing`` (process,
replay), ``review`` (status, show, files, resolve), ``housekeeping`` (purge, nodes),
``outbound`` (export, template), ``sandbox``, ``sftp`` and ``mapping``; ``shared`` holds
the options and helpers they share.
"""

from __future__ import annotations

import click

from edigw import __version__
from edigw.cli.configuration import config_group, init_command
from edigw.cli.housekeeping import nodes_group, purge_command
from edigw.cli.mapping import mapping_group
from edigw.cli.outbound import export_command, template_group
from edigw.cli.processing import process_command, replay_command
from edigw.cli.review import files_command, resolve_command, show_command, status_command
from edigw.cli.running import (
    EXIT_GAVE_UP,
    EXIT_STOP_TIMEOUT,
    MAX_SENDERS,
    SendersParam,
    demo_command,
    run_command,
)
from edigw.cli.sandbox import sandbox_command
from edigw.cli.sftp import sftp_group
from edigw.cli.shared import config_option, json_option

__all__ = [
    "CONTEXT_SETTINGS",
    "EXIT_GAVE_UP",
    "EXIT_STOP_TIMEOUT",
    "MAX_SENDERS",
    "SendersParam",
    "config_option",
    "json_option",
    "main",
]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="edigw")
def main() -> None:
    """edigw: partner files in, Ecolix objects out, and Ecolix data back out as files.

    Example: edigw demo
    """


# `edigw --help` lists the commands by name, whatever the order they are added in.
main.add_command(init_command)
main.add_command(config_group)
main.add_command(run_command)
main.add_command(process_command)
main.add_command(status_command)
main.add_command(show_command)
main.add_command(files_command)
main.add_command(resolve_command)
main.add_command(replay_command)
main.add_command(purge_command)
main.add_command(nodes_group)
main.add_command(export_command)
main.add_command(template_group)
main.add_command(demo_command)
main.add_command(sandbox_command)
main.add_command(sftp_group)
main.add_command(mapping_group)

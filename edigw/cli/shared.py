"""What the commands share: the ``-c/--config`` and ``--json`` options, the configuration
loaded for a command, JSON output and errors told in one line."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edigw.errors import EdigwError

if TYPE_CHECKING:
    from edigw.config import GatewayConfig


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


def _load(config_path: Path, *, secrets: bool = True) -> GatewayConfig:
    """The configuration; ``secrets=False`` for commands that only read the journal and
    the archive, which then run without ECOLIX_TOKEN (see ``_need_secrets``)."""
    from edigw.config import load_config

    try:
        return load_config(config_path, environ=os.environ, secrets_optional=not secrets)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc


def _need_secrets(config: GatewayConfig, why: str) -> None:
    """One line naming the unset variable (ECOLIX_TOKEN) when a command needs it after all."""
    try:
        config.require_secrets(why)
    except EdigwError as exc:
        raise click.ClickException(str(exc)) from exc


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--json``: one JSON value on stdout, keys documented in docs/operations.md."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print one JSON value (stable keys, see docs/operations.md) instead of text.",
    )(func)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=_json_value))


def _json_value(value: object) -> str:
    """Times as ISO 8601 (UTC), anything else as its text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _one_line(exc: EdigwError) -> str:
    problems = getattr(exc, "problems", None)
    if problems and len(problems) > 1:
        return "\n".join(str(p) for p in problems)
    return str(exc)

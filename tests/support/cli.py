"""Running ``edigw`` commands in-process against a test workspace, as an operator would."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner, Result

from edigw.cli import main
from tests.fixtures.gateway import Workspace

#: The terminal width the tests render at (rich reads COLUMNS).
COLUMNS = 80


def edigw(workspace: Workspace, *args: str, token: bool = True, columns: int = COLUMNS) -> Result:
    """``edigw ARGS -c edigw.yaml``; ``token=False``: in a shell where ECOLIX_TOKEN is unset."""
    env: dict[str, Any] = {**workspace.environ, "COLUMNS": str(columns)}
    if not token:
        env["ECOLIX_TOKEN"] = None
    return CliRunner().invoke(
        main, [*args, "-c", str(workspace.config_path)], env=env, catch_exceptions=False
    )


def lines(result: Result) -> list[str]:
    """The output's lines without the padding rich adds up to the terminal width."""
    return [line.rstrip() for line in result.output.splitlines()]

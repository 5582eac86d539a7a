"""The ``edigw`` command line: parses options, calls the core, renders results.

No business logic lives here; expected failures (``EdigwError``) become one-line
``click.ClickException`` messages, never tracebacks.
"""

from __future__ import annotations

from pathlib import Path

import click

from edigw import __version__

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


if __name__ == "__main__":  # pragma: no cover
    main()

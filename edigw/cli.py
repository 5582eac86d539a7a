"""The ``edigw`` command line: parses options, calls the core, renders results.

No business logic lives here; expected failures (``EdigwError``) become one-line
``click.ClickException`` messages, never tracebacks.
"""

from __future__ import annotations

import click

from edigw import __version__

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="edigw")
def main() -> None:
    """edigw: partner files in, Ecolix objects out, and Ecolix data back out as files.

    Example: edigw demo
    """


if __name__ == "__main__":  # pragma: no cover
    main()

"""Where the shipped ``mappings/``, ``layouts/``, ``templates/`` and ``samples/`` are.

They live at the repository root, beside ``edigw/``, so that consultants edit them as ordinary
files. A source checkout (or an editable install, ``pip install -e .``) reads them there. A wheel
cannot carry top-level folders, so the build (``setup.py``) copies them into the package as
``edigw/_shipped/``; an installed edigw (``pip install .``) reads that copy. This module is the
one place that knows both answers.
"""

from __future__ import annotations

from pathlib import Path

from edigw.errors import ConfigError

SHIPPED_FOLDERS = ("mappings", "layouts", "templates", "samples")
INSTALLED_FOLDER = "_shipped"


def shipped_root(*, package: Path | None = None) -> Path:
    """The folder holding the shipped ``mappings/``, ``layouts/``, ``templates/`` and ``samples/``.

    ``package`` is the ``edigw`` package folder (default: this module's); tests pass another.
    """
    package = package or Path(__file__).resolve().parent
    installed = package / INSTALLED_FOLDER
    if installed.is_dir():
        return installed
    checkout = package.parent
    if (checkout / "mappings").is_dir():
        return checkout
    msg = (
        f"the shipped mappings and samples are missing (looked in {installed} and {checkout}); "
        "reinstall edigw"
    )
    raise ConfigError(msg)


def shipped_folder(name: str, *, package: Path | None = None) -> Path | None:
    """``mappings/``, ``layouts/``, ``templates/`` or ``samples/`` if shipped, else ``None``."""
    folder = shipped_root(package=package) / name
    return folder if folder.is_dir() else None

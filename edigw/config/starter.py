"""The starter configuration ``edigw init`` writes: the commented ``edigw.yaml`` shipped
with edigw (``edigw/starter.yaml``), with the shipped mappings, layouts and templates."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from edigw.config.gateway import DEFAULT_CONFIG_NAME
from edigw.errors import ConfigError
from edigw.shipped import shipped_folder

#: Beside the package, in ``edigw/`` (where the wheel ships it), not in ``edigw/config/``.
STARTER_TEMPLATE = "starter.yaml"


def starter_config_text() -> str:
    """The commented starter ``edigw.yaml`` shipped with edigw."""
    return (Path(__file__).parent.parent / STARTER_TEMPLATE).read_text(encoding="utf-8")


def _starter_copies() -> Iterator[tuple[Path, str]]:
    for name in ("mappings", "layouts", "templates"):
        folder = shipped_folder(name)
        if folder is not None:
            yield folder, name


def write_starter(directory: Path, *, force: bool = False) -> list[Path]:
    """Write a starter ``edigw.yaml`` plus the shipped mappings, layouts and templates.

    Returns the paths written. Refuses to overwrite an existing ``edigw.yaml`` unless
    ``force`` is set; existing mapping and template files are never overwritten.
    """
    target = directory / DEFAULT_CONFIG_NAME
    if target.exists() and not force:
        msg = f"{target} already exists (use --force to overwrite it)"
        raise ConfigError(msg)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        target.write_text(starter_config_text(), encoding="utf-8")
        written = [target]
        for source, name in _starter_copies():
            for file in sorted(source.rglob("*")):
                if not file.is_file() or "__pycache__" in file.parts:
                    continue
                destination = directory / name / file.relative_to(source)
                if destination.exists():
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, destination)
                written.append(destination)
    except OSError as exc:
        msg = f"cannot write the starter configuration in {directory}: {exc}"
        raise ConfigError(msg) from exc
    return written

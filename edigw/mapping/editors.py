"""Editor support: the JSON Schemas of mapping and layout files, written where editors find them.

A YAML language server (VS Code's YAML extension, JetBrains IDEs, Neovim's yamlls) completes
keys, explains them on hover and flags mistakes as you type, given the file's JSON Schema.
``edigw mapping schema`` prints them; ``edigw init`` writes them beside the mappings and the
layouts, and every shipped mapping and layout names its schema on its first line with a path
relative to itself, so the hint works in an ``edigw init`` workspace and in a checkout alike::

    # yaml-language-server: $schema=edigw-mapping.schema.json
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

MAPPING_SCHEMA_FILE = "edigw-mapping.schema.json"
LAYOUT_SCHEMA_FILE = "edigw-layout.schema.json"
MODELINE = "# yaml-language-server: $schema="


def mapping_schema_text() -> str:
    """``edigw/mapping/schema.json`` exactly as published (the loader validates with it)."""
    return resources.files("edigw.mapping").joinpath("schema.json").read_text(encoding="utf-8")


def layout_schema() -> dict[str, Any]:
    """The JSON Schema of flat-file layouts, made from the models that load them."""
    from edigw.formats.layout import LayoutSpec

    schema = LayoutSpec.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://edigw.example/schemas/layout.schema.json",
        "title": "edigw flat-file layout",
        "description": (
            "The record types of a partner's flat file, their fields and their hierarchy. "
            "See docs/mappings.md, flat files."
        ),
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def layout_schema_text() -> str:
    return json.dumps(layout_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write both schemas into ``directory/mappings`` and ``directory/layouts``.

    They are edigw's, not the consultant's: always rewritten, so they match the installed
    edigw (run ``edigw init`` again, or ``edigw mapping schema``, after an upgrade).
    """
    written = []
    for folder, name, text in (
        ("mappings", MAPPING_SCHEMA_FILE, mapping_schema_text()),
        ("layouts", LAYOUT_SCHEMA_FILE, layout_schema_text()),
    ):
        path = directory / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def modeline_for(yaml_path: Path, *, search: int = 3) -> str | None:
    """The ``$schema`` hint for a mapping at ``yaml_path``: the mapping schema found in its
    folder or one of its ``search`` parents (also in their ``mappings/``), by relative path."""
    folder = yaml_path.resolve().parent
    for candidate_folder in [folder, *list(folder.parents)[:search]]:
        for candidate in (
            candidate_folder / MAPPING_SCHEMA_FILE,
            candidate_folder / "mappings" / MAPPING_SCHEMA_FILE,
        ):
            if candidate.is_file():
                return MODELINE + Path(os.path.relpath(candidate, folder)).as_posix()
    return None

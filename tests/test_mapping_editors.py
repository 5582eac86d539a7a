"""Editors help: `edigw mapping schema`, the schemas `edigw init` writes, and the `$schema` hints."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest
import yaml
from click.testing import CliRunner

from edigw.cli import main
from edigw.mapping.editors import (
    LAYOUT_SCHEMA_FILE,
    MAPPING_SCHEMA_FILE,
    MODELINE,
    modeline_for,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_YAML = sorted([*(ROOT / "mappings").glob("*.yaml"), *(ROOT / "layouts").glob("*.yaml")])


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_mapping_schema_prints_the_schema_the_loader_validates_with() -> None:
    printed = run("mapping", "schema")

    assert printed == (ROOT / "edigw" / "mapping" / "schema.json").read_text(encoding="utf-8")


def test_the_layout_schema_accepts_every_shipped_layout_and_refuses_an_unknown_key() -> None:
    validator = jsonschema_rs.validator_for(json.loads(run("mapping", "schema", "--layout")))
    for layout in sorted((ROOT / "layouts").glob("*.yaml")):
        assert validator.is_valid(yaml.safe_load(layout.read_text(encoding="utf-8"))), layout
    assert not validator.is_valid({"kind": "fixed", "records": {}, "structure": {}, "kinds": 1})


@pytest.mark.parametrize(
    ("copy", "args"),
    [
        pytest.param(ROOT / "mappings" / MAPPING_SCHEMA_FILE, ("mapping", "schema"), id="mapping"),
        pytest.param(
            ROOT / "layouts" / LAYOUT_SCHEMA_FILE, ("mapping", "schema", "--layout"), id="layout"
        ),
    ],
)
def test_the_schema_copies_beside_the_shipped_files_are_what_edigw_prints(
    copy: Path, args: tuple[str, ...]
) -> None:
    """Regenerate with `edigw mapping schema [--layout] > <copy>` when the schema changes."""
    assert copy.read_text(encoding="utf-8") == run(*args)


@pytest.mark.parametrize("path", SHIPPED_YAML, ids=[p.name for p in SHIPPED_YAML])
def test_every_shipped_mapping_and_layout_names_its_schema_by_a_relative_path(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]

    assert first.startswith(MODELINE)
    assert (path.parent / first.removeprefix(MODELINE)).is_file()


def test_init_writes_the_schemas_where_the_starter_hints_point(tmp_path: Path) -> None:
    output = run("init", str(tmp_path))

    assert (
        "Editors: mappings/edigw-mapping.schema.json and layouts/edigw-layout.schema.json give "
        "completion and checks as you type" in output
    )
    assert (tmp_path / "mappings" / MAPPING_SCHEMA_FILE).read_text(encoding="utf-8") == run(
        "mapping", "schema"
    )
    for path in [*(tmp_path / "mappings").glob("*.yaml"), *(tmp_path / "layouts").glob("*.yaml")]:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert (path.parent / first.removeprefix(MODELINE)).is_file(), path


def test_init_refreshes_a_stale_schema(tmp_path: Path) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / MAPPING_SCHEMA_FILE).write_text("{}", encoding="utf-8")

    run("init", str(tmp_path))

    assert (tmp_path / "mappings" / MAPPING_SCHEMA_FILE).read_text(encoding="utf-8") != "{}"


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        pytest.param("mappings/new.yaml", MODELINE + MAPPING_SCHEMA_FILE, id="beside"),
        pytest.param("mappings/acme/new.yaml", MODELINE + "../" + MAPPING_SCHEMA_FILE, id="below"),
        pytest.param("new.yaml", MODELINE + "mappings/" + MAPPING_SCHEMA_FILE, id="above"),
    ],
)
def test_a_new_mapping_finds_the_schema_nearby(tmp_path: Path, mapping: str, expected: str) -> None:
    (tmp_path / "mappings" / "acme").mkdir(parents=True)
    (tmp_path / "mappings" / MAPPING_SCHEMA_FILE).write_text("{}", encoding="utf-8")

    assert modeline_for(tmp_path / mapping) == expected


def test_a_new_mapping_far_from_any_schema_gets_no_hint(tmp_path: Path) -> None:
    assert modeline_for(tmp_path / "a" / "b" / "c" / "d" / "e" / "new.yaml") is None

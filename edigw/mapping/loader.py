"""Loading a mapping file: YAML with line numbers, JSON Schema check, then compilation.

Every problem names the mapping file, the line and the key (``orders.yaml:14 fields.lines.
fields.quantity.type: ...``), and all problems are reported at once, so a consultant fixes
a file in one pass.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from edigw import suggest
from edigw.errors import MappingError

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class MappingSource:
    """A parsed mapping file: plain data plus the line of every key, for messages."""

    path: Path
    data: dict[str, Any]
    lines: dict[KeyPath, int]

    def where(self, keys: KeyPath) -> str:
        """``file:line key.path`` for the deepest key of ``keys`` that has a line."""
        probe = keys
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe, 1)
        dotted = ".".join(str(k) for k in keys)
        return f"{self.path.name}:{line} {dotted}" if dotted else f"{self.path.name}:{line}"


@functools.cache
def mapping_schema() -> dict[str, Any]:
    """The published JSON Schema of mapping files (``edigw/mapping/schema.json``)."""
    text = resources.files("edigw.mapping").joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _schema_validator() -> Any:
    return jsonschema_rs.validator_for(mapping_schema())


def read_mapping(path: Path) -> MappingSource:
    """Parse and schema-check ``path``; raise ``MappingError`` with every problem found."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        msg = f"{path}: mapping file not found"
        raise MappingError(msg) from exc
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read mapping file: {exc}"
        raise MappingError(msg) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        msg = f"{path.name}:{line}: invalid YAML: {exc.problem or exc}"
        raise MappingError(msg) from exc
    except yaml.YAMLError as exc:
        msg = f"{path.name}: invalid YAML: {exc}"
        raise MappingError(msg) from exc
    if node is None:
        msg = f"{path.name}:1: the mapping file is empty"
        raise MappingError(msg)
    lines: dict[KeyPath, int] = {}
    problems: list[str] = []
    builder = _Builder(path.name, lines, problems)
    data = builder.build(node, ())
    if not isinstance(data, dict):
        msg = f"{path.name}:1: a mapping file is a YAML mapping (source:, documents:, ...)"
        raise MappingError(msg)
    source = MappingSource(path, data, lines)
    for error in _schema_validator().iter_errors(data):
        keys: KeyPath = tuple(error.instance_path)
        if error.kind.name == "additionalProperties":
            unexpected = error.kind.as_dict().get("unexpected") or []
            known = list(_schema_at(error.schema_path[:-1]).get("properties", {}))
            for extra in unexpected:
                message = suggest.unknown(f"unknown key {extra!r}", extra, known, noun="known keys")
                problems.append(f"{source.where((*keys, extra))}: {message}")
            if unexpected:
                continue
        problems.append(f"{source.where(keys)}: {_schema_message(error)}")
    if problems:
        msg = f"{path.name}: {len(problems)} problem(s): {problems[0]}"
        raise MappingError(msg, problems)
    return source


def _schema_at(path: Any) -> dict[str, Any]:
    """The part of the mapping schema at ``path`` (a validation error's schema path)."""
    node: Any = mapping_schema()
    for step in path:
        node = node[step] if isinstance(node, dict | list) else {}
    return node if isinstance(node, dict) else {}


def _schema_message(error: Any) -> str:
    """jsonschema's message, with an enum's every value listed (the nearest first)."""
    if error.kind.name == "enum":
        options = [o for o in error.kind.as_dict().get("options") or [] if isinstance(o, str)]
        if options and isinstance(error.instance, str):
            wanted = error.instance
            return (
                f"{json.dumps(wanted)} is not one of "
                + suggest.listing(suggest.ranked(wanted, options), quote=json.dumps, last=" or ")
                + suggest.hint(wanted, options, quote=json.dumps)
            )
    return str(error.message)


class _Builder:
    """YAML nodes to plain data, remembering the line of every key and flagging duplicates."""

    def __init__(self, name: str, lines: dict[KeyPath, int], problems: list[str]) -> None:
        self.name = name
        self.lines = lines
        self.problems = problems
        self.scalars = yaml.SafeLoader("")  # YAML's own scalar typing (true, 1.5, null ...)

    def build(self, node: yaml.Node, keys: KeyPath) -> Any:
        self.lines.setdefault(keys, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                    self.problems.append(f"{self.name}:{line}: unsupported YAML key")
                    continue
                key = str(key_node.value)
                path = (*keys, key)
                if key in result:
                    dotted = ".".join(map(str, path))
                    self.problems.append(f"{self.name}:{line} {dotted}: duplicate key")
                self.lines[path] = line
                result[key] = self.build(value_node, path)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*keys, i)) for i, item in enumerate(node.value)]
        return self.scalars.construct_object(node)

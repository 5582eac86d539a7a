"""Reading ``edigw.yaml`` into plain data, before any model sees it: the line of every key
(from the PyYAML node marks, kept beside the data while it is built), ``${NAME}``
interpolation, and the problems found on the way, each formatted with its line
(``edigw.yaml:14 partners.acme.flows.orders.mapping: ...``).

Secrets never sit in the file: ``${NAME}`` is replaced from the environment *passed in*
(the core never reads ``os.environ``), ``${NAME:-default}`` gives a fallback, ``$${X}``
is a literal ``${X}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

_INTERPOLATION_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?")

Path_ = tuple[str | int, ...]


class _Built:
    """The plain data of a YAML file plus the line of every key, and problems on the way."""

    def __init__(self, file_name: str, *, secrets_optional: bool = False) -> None:
        self.file_name = file_name
        self.lines: dict[Path_, int] = {}
        self.problems: list[tuple[int, str]] = []
        self.secrets_optional = secrets_optional
        #: ${NAME} left unset, when secrets are optional: (line, path, NAME)
        self.unset: list[tuple[int, Path_, str]] = []

    def problem(self, line: int, path: Path_, message: str) -> None:
        self.problems.append((line, _format_problem(self.file_name, line, path, message)))


def _format_path(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _format_problem(file_name: str, line: int | None, path: Sequence[str | int], msg: str) -> str:
    where = file_name if line is None else f"{file_name}:{line}"
    dotted = _format_path(path)
    return f"{where} {dotted}: {msg}" if dotted else f"{where}: {msg}"


def _interpolate(
    text: str, environ: Mapping[str, str], built: _Built, line: int, path: Path_
) -> str:
    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$${":
            return "${"
        name = match.group(1)
        if name is None:
            built.problem(
                line,
                path,
                f"invalid reference {whole!r}: write ${{NAME}} or ${{NAME:-default}} "
                "(and $${ for a literal ${)",
            )
            return whole
        if name in environ:
            return environ[name]
        default = match.group(2)
        if default is not None:
            return default
        if built.secrets_optional:
            built.unset.append((line, path, name))  # a problem unless the key is a secret
        else:
            built.problem(line, path, f"environment variable {name} is not set")
        return ""

    return _INTERPOLATION_RE.sub(replace, text)


def interpolated(text: str, environ: Mapping[str, str]) -> str | None:
    """``text`` with ``${NAME}``, ``${NAME:-default}`` and ``$${`` read as the loader reads
    them; ``None`` when a reference is unset or malformed (for a reader of the raw file,
    such as ``edigw status`` while the file does not load)."""
    built = _Built("")
    value = _interpolate(text, environ, built, 0, ())
    return None if built.problems else value


def _build(
    node: yaml.Node,
    constructor: yaml.constructor.SafeConstructor,
    environ: Mapping[str, str],
    built: _Built,
    path: Path_,
) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                built.problem(key_line, path, "YAML merge keys (<<) are not supported")
                continue
            key = constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | bool | float) or key is None:
                built.problem(key_line, path, "keys must be plain names")
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in result:
                built.problem(key_line, (*path, key), "duplicate key")
                continue
            built.lines[(*path, key)] = key_line
            result[key] = _build(value_node, constructor, environ, built, (*path, key))
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item_node in enumerate(node.value):
            built.lines[(*path, index)] = item_node.start_mark.line + 1
            items.append(_build(item_node, constructor, environ, built, (*path, index)))
        return items
    value = constructor.construct_object(node, deep=True)
    if isinstance(value, str) and "$" in value:
        return _interpolate(value, environ, built, line, path)
    return value


def _parse_yaml(text: str, environ: Mapping[str, str], built: _Built) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _build(node, loader, environ, built, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        reason = exc.problem or str(exc)
        built.problem(line, (), f"not valid YAML: {reason}")
        return None
    finally:
        loader.dispose()

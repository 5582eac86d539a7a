"""The values a template needs from the configuration (``settings.NAME``), found before any run.

A partner file may need what no Ecolix record holds: our own company's name and identifiers
as the buyer of a purchase order, a carrier account number. A template reads them as
``settings.company_name``; ``edigw.yaml`` gives them under ``settings:`` (for every flow) or a
flow's own ``settings:``. A value the configuration lacks must never turn into a placeholder
in a partner's file, so the template is read once, every ``settings.NAME`` it uses is listed,
and ``edigw config check``, ``edigw template test`` and every export run refuse to go on
without them, naming the setting, the template and its line.

``settings.NAME | default(...)`` marks a setting the template can do without.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2
from jinja2 import nodes

from edigw.errors import ConfigError

SETTINGS = "settings"
"""The name templates read the configuration's values under."""

_DICT_METHODS = frozenset({"get", "items", "keys", "values"})
_DEFAULT_FILTERS = frozenset({"default", "d"})


@dataclass(frozen=True, slots=True)
class NeededSetting:
    """A setting a template reads, and the first template line that reads it."""

    name: str
    line: int


def needed_settings(template: Path) -> list[NeededSetting]:
    """Every ``settings.NAME`` (or ``settings['NAME']``) ``template`` reads without a default,
    in order of first use. Syntax errors are left to the template loader, which names them."""
    try:
        tree = jinja2.Environment().parse(template.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, jinja2.TemplateSyntaxError):
        return []
    optional = {id(f.node) for f in tree.find_all(nodes.Filter) if f.name in _DEFAULT_FILTERS}
    found: dict[str, int] = {}
    accesses: list[nodes.Getattr | nodes.Getitem] = [
        *tree.find_all(nodes.Getattr),
        *tree.find_all(nodes.Getitem),
    ]
    for node in accesses:
        if id(node) in optional:
            continue
        name = _setting_name(node)
        if name is None:
            continue
        line = node.lineno or 0
        if name not in found or line < found[name]:
            found[name] = line
    return [NeededSetting(n, line) for n, line in sorted(found.items(), key=lambda kv: kv[1])]


def _setting_name(node: nodes.Getattr | nodes.Getitem) -> str | None:
    """``NAME`` of ``settings.NAME`` or ``settings['NAME']``; None for anything else."""
    if not (isinstance(node.node, nodes.Name) and node.node.name == SETTINGS):
        return None
    if isinstance(node, nodes.Getattr):
        return None if node.attr in _DICT_METHODS else node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


def missing_settings(template: Path, settings: Mapping[str, object]) -> list[str]:
    """One line per setting ``template`` needs that ``settings`` lacks (or leaves empty)."""
    return [
        f"{template.name}:{need.line}: the template needs setting {need.name!r}, which the "
        f"configuration does not give: add it under `settings:` in edigw.yaml (or the flow's "
        f"own `settings:`)"
        for need in needed_settings(template)
        if settings.get(need.name) in (None, "")
    ]


def require_settings(template: Path, settings: Mapping[str, object]) -> None:
    """``ConfigError`` listing every missing setting, before anything is rendered."""
    problems = missing_settings(template, settings)
    if problems:
        raise ConfigError(problems[0], problems)

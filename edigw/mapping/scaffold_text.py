"""Writing a scaffold plan (``edigw.mapping.scaffold``) as a commented mapping file.

The text is built line by line rather than dumped, so that every field keeps its place in the
operation's order, says what is left to do (``# TODO``), and the sample's columns are listed
at the end for the consultant who completes it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from edigw.mapping.guess import Column, text_of
from edigw.mapping.scaffold import SURE, Choice, Leaf, Node, Plan, request_schema
from edigw.mapping.survey import Level

WIDTH = 100
_ORDER = ("from", "expr", "type", "format", "decimal", "thousands", "scale", "case", "map")
_LISTED = 200  # columns listed at most in the closing comment


def render(plan: Plan, *, modeline: str | None, layout: str | None, sample: str, out: str) -> str:
    """The mapping file's text. ``layout``: the flat-file layout as the mapping names it."""
    survey = plan.survey
    lines: list[str] = []
    if modeline:
        lines.append(modeline)
    lines += [
        f"# Scaffolded by `edigw mapping new` from {sample} for {plan.target}.",
        f"# Every field of {plan.target} is below, taken from the sample's column whose name and",
        "# values fit best, or marked TODO. Check each one against the partner's specification:",
        f"#   edigw mapping check {out} --sample {sample}",
        f"#   edigw mapping test {out} {sample} --explain",
        "# What the sample holds is listed at the end of this file.",
    ]
    if plan.unsupported:
        lines.append(
            "# Not written (lists of plain values, which `fields` cannot make): "
            + ", ".join(plan.unsupported)
        )
    if survey.notes:
        lines.append(f"# Detected in the sample: {'; '.join(survey.notes)}.")
    name = Path(sample).name
    lines += [
        "version: 1",
        f"description: {_scalar(f'{name} -> {plan.target} (scaffolded: review the TODOs)')}",
        "source:",
    ]
    source = dict(survey.source)
    if layout is not None:
        source["layout"] = layout
    if plan.decimal:
        source["decimal"] = plan.decimal
    for key, value in source.items():
        if isinstance(value, Mapping):
            lines.append(f"  {key}:")
            lines += [f"    {k}: {_scalar(v)}" for k, v in value.items()]
        else:
            lines.append(f"  {key}: {_scalar(value)}")
    lines.append(f"target: {plan.target}")
    documents = f"documents: {{per: {plan.per}"
    if plan.by:
        documents += f", by: {_scalar(plan.by)}}}  # consecutive rows sharing {plan.by}"
    else:
        documents += "}"
    lines.append(documents)
    key = plan.key.column.selector if plan.key else plan.by or _first(survey.top)
    lines.append(
        f"key: {_scalar(key)}" + ("" if plan.key else "  # TODO: the document's own reference")
    )
    if any(
        leaf.choice and leaf.choice.options.get("type") == "datetime" for leaf in plan.root.leaves()
    ):
        lines.append("timezone: Europe/Paris  # for the sample's date-times without an offset")
    lines.append("fields:")
    for child in plan.root.children:
        lines += _child(child, 1)
    lines += _listing(survey.top, survey.format, sample)
    return "\n".join(lines) + "\n"


def _child(child: Leaf | Node, depth: int) -> list[str]:
    return _leaf(child, depth) if isinstance(child, Leaf) else _node(child, depth)


def _node(node: Node, depth: int) -> list[str]:
    pad = "  " * depth
    if node.note == "unsupported":
        return [f"{pad}# {node.name}: TODO: a list of plain values, which a mapping cannot make"]
    if (not node.required and not node.mapped) or (node.is_list and node.each is None):
        why = node.note or "no column of the sample fits"
        optional = "" if node.required else " (optional)"
        lines = [f"{pad}# {node.name}:  # TODO{optional}: {why}"]
        lines += [f"{pad}#   {line.lstrip('# ').rstrip()}" for line in _names(node, depth + 1)]
        return lines
    lines = [f"{pad}{node.name}:"]
    if node.is_list:
        lines.append(f"{pad}  each: {_scalar(node.each)}")
    if node.required:
        lines.append(f"{pad}  required: true")
    guard = _guard(node)
    if guard is not None:
        lines.append(f"{pad}  when: {_scalar(guard)}  # optional: sent when these are there")
    lines.append(f"{pad}  fields:")
    for child in node.children:
        lines += _child(child, depth + 2)
    return lines


def _guard(node: Node) -> str | None:
    """The ``when:`` of an optional object whose required fields have columns: it is sent
    only when all of them hold a value. Without it, a document whose source leaves the object
    out (a seller without an electronic address) would fail on a field Ecolix only requires
    inside the object, not on the object itself."""
    if node.required or node.is_list:
        return None
    columns = dict.fromkeys(
        child.choice.column.selector
        for child in node.children
        if isinstance(child, Leaf) and child.required and child.choice is not None
    )
    if not columns:
        return None
    return " and ".join(f"record[{_literal(selector)}]" for selector in columns)


def _literal(text: str) -> str:
    """``text`` as an expression's string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _names(node: Node, depth: int) -> list[str]:
    out = []
    for child in node.children:
        if isinstance(child, Node):
            out.append("  " * (depth - 1) + f"{child.name}: ...")
        else:
            out.append("  " * (depth - 1) + f"{child.name}: TODO")
    return out


def _leaf(leaf: Leaf, depth: int) -> list[str]:
    pad = "  " * depth
    choice = leaf.choice
    about = leaf.description.rstrip(".")
    if choice is None:
        if not leaf.required:
            hint = f" {about}." if about else ""
            return [f"{pad}# {leaf.name}:  # TODO (optional): no column of the sample fits.{hint}"]
        todo = "TODO: no column of the sample fits; say where it comes from (from, value, expr)"
        kind = {"integer": ", type: int", "boolean": ", type: bool"}.get(
            str(leaf.schema.get("type")), ""
        )
        return [f'{pad}{leaf.name}: {{expr: "none"{kind}, required: true}}  # {todo}']
    options = _options(choice, leaf)
    comment = _comment(choice, leaf)
    flow = f"{pad}{leaf.name}: {{{', '.join(f'{k}: {v}' for k, v in options)}}}"
    if len(flow) + len(comment) <= WIDTH or len(options) == 1:
        return [flow + comment]
    lines = [f"{pad}{leaf.name}:{comment}"]
    lines += [f"{pad}  {k}: {v}" for k, v in options]
    return lines


def _options(choice: Choice, leaf: Leaf) -> list[tuple[str, str]]:
    out = []
    for key in _ORDER:
        if key in choice.options:
            value = choice.options[key]
            if key == "map":
                inner = ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in value.items())
                out.append((key, f"{{{inner}}}"))
            else:
                out.append((key, _scalar(value)))
    if leaf.required:
        out.append(("required", "true"))
    return out


def _comment(choice: Choice, leaf: Leaf) -> str:
    todo = []
    if choice.score < SURE:
        todo.append("guessed, check it")
    if not any(text_of(v) for v in choice.column.values):
        todo.append("empty in the sample")
    notes = [f"TODO: {', '.join(todo)}"] if todo else []
    if choice.note:
        notes.append(choice.note)
    return f"  # {'; '.join(notes)}" if notes else ""


def _scalar(value: Any) -> str:
    """``value`` as YAML that reads back the same inside a flow mapping (quoted if needed)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    plain = text[:1].isalnum() or text[:1] in "_/"
    if plain and text == text.strip() and "#" not in text and "\\" not in text:
        try:
            if yaml.safe_load(f"k: {{a: {text}}}") == {"k": {"a": text}}:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text, ensure_ascii=False)


def _first(level: Level) -> str:
    return next(iter(level.columns), "TODO")


# -- the closing comment: what the sample holds --------------------------------------------


def _listing(top: Level, fmt: str, sample: str) -> list[str]:
    noun = {"csv": "columns", "xlsx": "columns", "xml": "elements and attributes"}.get(
        fmt, "fields" if fmt.startswith("flat") else "business terms"
    )
    lines = ["", f"# The {noun} of {sample} ({top.count} record(s) at the top):"]
    count = [0]
    lines += _level_lines(top, 0, count, skip_empty=fmt == "einvoice")
    return lines


def _level_lines(level: Level, depth: int, count: list[int], *, skip_empty: bool) -> list[str]:
    lines: list[str] = []
    pad = "  " * depth
    columns = [c for c in level.columns.values() if not c.nested]
    width = min(max((len(c.selector) for c in columns), default=0), 48)
    for column in columns:
        if skip_empty and column.kind == "empty":
            continue
        count[0] += 1
        if count[0] > _LISTED:
            lines.append(f"#   {pad}... and more")
            return lines
        lines.append(f"#   {pad}{column.selector.ljust(width)}  {_describe(column)}")
    for selector, sub in level.lists.items():
        lines.append(f"#   {pad}{selector}: a list ({sub.count} item(s)), for `each: {selector}`")
        lines += _level_lines(sub, depth + 1, count, skip_empty=skip_empty)
    return lines


def _describe(column: Column) -> str:
    kind = column.kind
    if column.fmt:
        kind += f" {column.fmt}"
    elif column.kind == "decimal" and column.decimal == ",":
        kind += " (decimal comma)"
    examples = ", ".join(" ".join(e.split()) for e in column.examples)
    return f"{kind:<18} {examples}"[:WIDTH].rstrip()


# -- the whole scaffold --------------------------------------------------------------------


def scaffold(
    sample: Path,
    target: str,
    *,
    out: Path | None = None,
    layout: Path | None = None,
    absolute: bool = False,
) -> tuple[str, Plan]:
    """The starter mapping for ``sample`` and ``target``, written for the place ``out``
    (None: the current folder). ``absolute``: name the layout by its absolute path."""
    from edigw.mapping.editors import modeline_for
    from edigw.mapping.scaffold import plan as make_plan
    from edigw.mapping.survey import survey_sample

    request_schema(target)  # an unknown target fails before the sample is read
    folder = (out.parent if out is not None else Path.cwd()).resolve()
    layout_ref = None
    if layout is not None:
        layout_ref = (
            str(layout.resolve()) if absolute else os.path.relpath(layout.resolve(), folder)
        )
        layout_ref = Path(layout_ref).as_posix()
    survey = survey_sample(sample, layout=str(layout.resolve()) if layout else None)
    made = make_plan(survey, target)
    modeline = modeline_for(out) if out is not None else None
    shown = str(out) if out is not None else "MAPPING.yaml"
    return render(made, modeline=modeline, layout=layout_ref, sample=str(sample), out=shown), made

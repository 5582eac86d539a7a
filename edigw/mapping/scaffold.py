"""``edigw mapping new``: a starter mapping from a sample file and the target operation.

Every field of the operation's request schema (from the contract) gets the sample's column,
XPath, layout field or business term whose name means the same (``edigw.mapping.vocabulary``)
and whose values Ecolix would accept once converted (each candidate is tried on the sample's
own values, through the engine's converters and the contract's schema). The plan is then
written as commented YAML by ``edigw.mapping.scaffold_text``.

What a scaffold decides (docs/mappings.md, "From a sample"):

- a required field with no fitting column gets its best *guess* (a name or content match,
  marked ``TODO: guessed``), or, with nothing to guess from, ``expr: "none"`` with
  ``required: true`` and a TODO: the mapping passes ``mapping check`` and every document fails
  with "required value missing" at that field until a consultant says where the value comes
  from. Nothing invented is ever sent;
- an optional field with no fitting column is written commented out, with a TODO;
- enumerations (payment method, status, document type) get a value map from the sample's
  values (``CB: CARD``); values without an obvious match are left out of it (and listed in a
  TODO), so a document holding one fails with "not in the value map" rather than send a guess.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema_rs

from edigw import suggest
from edigw.errors import EdigwError
from edigw.mapping.guess import Column, text_of
from edigw.mapping.survey import Level, Survey
from edigw.mapping.vocabulary import (
    VALUE_WORDS,
    Words,
    name_score,
    target_words,
    words,
)

ACCEPT = 0.30  # an optional field takes a column scoring at least this
GUESS = 0.12  # a required field takes its best column from this score on (marked a guess)
SURE = 0.55  # below this, a chosen column is marked "TODO: check"
TRIED = 60  # sample values tried per candidate
IDENTIFIERS = ("external_reference", "number", "booking_reference", "code", "order_number")
_TIME = re.compile(r"\^\(\[01\]\\d\|2\[0-3\]\):")
_TRANSFORMS: tuple[tuple[str, re.Pattern[str], Mapping[str, str]], ...] = (
    (
        "a time range",
        re.compile(r"\d{1,2}[:h]\d{2}\s*-\s*\d{1,2}[:h]\d{2}"),
        {"start": "value.split('-')[0] | trim", "end": "value.split('-')[1] | trim"},
    ),
    ("HHMM", re.compile(r"\d{4}"), {"": "value[:2] ~ ':' ~ value[2:]"}),
)


class ScaffoldError(EdigwError):
    """The scaffold cannot be made (an unknown target, a read operation)."""


@dataclass(slots=True)
class Choice:
    """Where one Ecolix field's value comes from, and how it is converted."""

    column: Column
    score: float
    options: dict[str, Any]
    note: str = ""


@dataclass(slots=True)
class Leaf:
    name: str
    pointer: str
    schema: Mapping[str, Any]
    required: bool
    words: Words
    level: Level | None
    choice: Choice | None = None
    candidates: list[Choice] = field(default_factory=list)

    @property
    def description(self) -> str:
        return " ".join(str(self.schema.get("description", "")).split())


@dataclass(slots=True)
class Node:
    """An object (``fields``) or a list (``each`` + ``fields``) of the payload."""

    name: str
    pointer: str
    schema: Mapping[str, Any]
    required: bool
    is_list: bool
    children: list[Leaf | Node] = field(default_factory=list)
    each: str | None = None
    level: Level | None = None
    note: str = ""

    def leaves(self) -> list[Leaf]:
        out: list[Leaf] = []
        for child in self.children:
            out.extend(child.leaves() if isinstance(child, Node) else [child])
        return out

    @property
    def mapped(self) -> bool:
        return any(leaf.choice is not None for leaf in self.leaves())


@dataclass(slots=True)
class Plan:
    """A scaffold before it is written: the survey, the target and every field's choice."""

    survey: Survey
    target: str
    root: Node
    per: str
    by: str | None
    key: Choice | None
    decimal: str | None = None
    unsupported: list[str] = field(default_factory=list)


def request_schema(target: str) -> dict[str, Any]:
    """The target's request schema; ``ScaffoldError`` names the write operations otherwise."""
    from edigw.ecolix.contract import load_contract

    contract = load_contract()
    writes = [op.op_id for op in contract.operations() if op.target and op.request_schema]
    if target not in writes:
        problem = f"{target!r} is not an Ecolix write operation a mapping can target"
        raise ScaffoldError(suggest.unknown(problem, target, writes, noun="operations"))
    schema = contract.operation(target).request_schema
    assert schema is not None
    return schema


def plan(survey: Survey, target: str) -> Plan:
    """Match every field of ``target`` to the sample; see the module docstring for the rules."""
    schema = request_schema(target)
    noun = target.split(".", 1)[0].rstrip("s").rsplit("_", 1)[-1]  # purchase_orders: order
    root = _tree("", "", schema, required=True, is_list=False, context=(), noun=noun)
    root.level = survey.top
    decimal = _source_decimal(survey.top)
    rows = survey.format in ("csv", "xlsx")
    _place_lists(root, survey.top, rows=rows)
    _assign(root.leaves(), decimal)
    key_leaf = next(
        (leaf for name in IDENTIFIERS for leaf in root.children if isinstance(leaf, Leaf)
         and leaf.name == name),
        None,
    )  # fmt: skip
    key = key_leaf.choice if key_leaf is not None else None
    uses_rows = any(isinstance(n, Node) and n.is_list and n.each == "records" and n.mapped
                    for n in _nodes(root))  # fmt: skip
    per, by = ("record", None)
    if survey.format == "xml":
        per = "element"
    elif rows and uses_rows:
        per = "group"
        by = key.column.selector if key is not None else _first_run(survey)
    unsupported = [n.pointer for n in _nodes(root) if n.note == "unsupported"]
    return Plan(survey, target, root, per, by, key, decimal, unsupported)


# -- the target tree -----------------------------------------------------------------------


def _tree(
    name: str,
    pointer: str,
    schema: Mapping[str, Any],
    *,
    required: bool,
    is_list: bool,
    context: Sequence[str],
    noun: str,
) -> Node:
    node = Node(name, pointer, schema, required, is_list)
    needed = set(schema.get("required", []))
    for child, sub in (schema.get("properties") or {}).items():
        here = f"{pointer}/{child}"
        kind = sub.get("type")
        if kind == "object":
            node.children.append(
                _tree(child, here, sub, required=child in needed, is_list=False,
                      context=(*context, child), noun=noun)
            )  # fmt: skip
        elif kind == "array":
            items = sub.get("items") or {}
            if items.get("type") == "object":
                node.children.append(
                    _tree(child, here, items, required=child in needed, is_list=True,
                          context=(*context, child), noun=noun)
                )  # fmt: skip
            else:
                node.children.append(
                    Node(child, here, sub, child in needed, True, note="unsupported")
                )
        else:
            leaf_words = target_words(child, context)
            if not context and child in ("number", "code"):
                leaf_words.append((noun, 1.0))  # a purchase order's `number`: the order's
            node.children.append(Leaf(child, here, sub, child in needed, leaf_words, None))
    return node


def _nodes(node: Node) -> list[Node]:
    out = [node]
    for child in node.children:
        if isinstance(child, Node):
            out.extend(_nodes(child))
    return out


def _place_lists(node: Node, level: Level, *, rows: bool) -> None:
    """Give every object its level, and every list the nested records it is made of."""
    node.level = level
    for child in node.children:
        if isinstance(child, Leaf):
            child.level = level
        elif child.note == "unsupported":
            continue
        elif not child.is_list:
            _place_lists(child, level, rows=rows)
        else:
            options = [("records", level)] if rows else _lists(level)
            best: tuple[float, str, Level] | None = None
            for selector, sub in options:
                fit = sum(max((_name(leaf, c) for c in _candidates(sub)), default=0.0)
                          for leaf in _bare_leaves(child))  # fmt: skip
                fit += 0.5 * name_score(target_words(child.name), words(sub.name))
                fit += 0.5 if sub.repeats else 0.0
                if best is None or fit > best[0]:
                    best = (fit, selector, sub)
            if best is None:
                child.note = "no nested records in the sample"
                continue
            child.each = best[1]
            _place_lists(child, best[2], rows=rows)


def _lists(level: Level) -> list[tuple[str, Level]]:
    """Nested records to make a list of: the repeated ones, and (XML) any element with
    children, for a sample holding a single order line."""
    options = list(level.lists.items())
    if level.more is not None:
        prefixes: dict[str, None] = {}
        for path in level.columns:
            steps = path.split("/")
            for end in range(1, len(steps)):
                if not steps[end - 1].startswith("@"):
                    prefixes["/".join(steps[:end])] = None
        for prefix in list(prefixes)[:40]:
            if prefix not in level.lists:
                sub = level.child(prefix)
                if sub is not None:
                    options.append((prefix, sub))
    return options


def _bare_leaves(node: Node) -> list[Leaf]:
    return [c for c in node.children if isinstance(c, Leaf)]


def _candidates(level: Level) -> list[Column]:
    return [c for c in level.columns.values() if not c.nested]


def _name(leaf: Leaf, column: Column) -> float:
    return name_score(leaf.words, words(column.selector))


def _first_run(survey: Survey) -> str | None:
    runs = [(n, c) for c, n in survey.runs.items() if n > 1]
    return max(runs)[1] if runs else next(iter(survey.top.columns), None)


def _source_decimal(level: Level) -> str | None:
    seps = [c.decimal for c in level.columns.values() if c.kind == "decimal" and c.decimal]
    for sub in level.lists.values():
        seps += [c.decimal for c in sub.columns.values() if c.kind == "decimal" and c.decimal]
    return "," if seps and seps.count(",") * 2 > len(seps) else None


# -- matching ------------------------------------------------------------------------------


def _assign(leaves: Sequence[Leaf], decimal: str | None) -> None:
    """Greedy: the best (field, column) pairs first; a column serves one field, unless a
    required field has nothing else (then at half its score)."""
    pairs: list[tuple[float, int, Leaf, Choice]] = []
    for index, leaf in enumerate(leaves):
        if leaf.level is None:
            continue
        for column in _candidates(leaf.level):
            choice = _evaluate(leaf, column, decimal)
            if choice is not None:
                leaf.candidates.append(choice)
                pairs.append((choice.score, index, leaf, choice))
    used: dict[tuple[int, str], str] = {}  # (level, column) -> the parent of its field
    for score, _, leaf, choice in sorted(pairs, key=lambda p: (-p[0], p[1])):
        slot = (id(leaf.level), choice.column.selector)
        if leaf.choice is not None or slot in used:
            continue
        if score >= ACCEPT or (leaf.required and score >= GUESS):
            leaf.choice = choice
            used[slot] = _parent(leaf)
    for leaf in leaves:  # two fields of one object may read one column (a slot's start, end)
        if leaf.choice is None and leaf.required:
            shared = [c for c in leaf.candidates if c.score >= ACCEPT
                      and used.get((id(leaf.level), c.column.selector)) == _parent(leaf)]  # fmt: skip
            if shared:
                leaf.choice = max(shared, key=lambda c: c.score)
                leaf.choice.note = "shares its column with another field"


def _parent(leaf: Leaf) -> str:
    return leaf.pointer.rsplit("/", 1)[0]


def target_kind(schema: Mapping[str, Any]) -> str:
    """The mapping ``type`` giving what ``schema`` wants."""
    kind = schema.get("type")
    if kind == "integer":
        return "int"
    if kind == "boolean":
        return "bool"
    fmt = schema.get("format")
    if fmt == "date":
        return "date"
    if fmt == "date-time":
        return "datetime"
    pattern = str(schema.get("pattern", ""))
    if pattern.startswith(("^\\d{1,12}", "^-?\\d{1,12}", "^\\d{1,2}(")):
        return "decimal"
    return "string"


_COMPATIBLE = {
    "date": {"date"},
    "datetime": {"datetime", "date"},
    "decimal": {"int", "decimal"},
    "int": {"int", "code"},
    "bool": {"bool"},
}


def _evaluate(leaf: Leaf, column: Column, decimal: str | None) -> Choice | None:
    """The column as this field's source: its options and score, or None if hopeless."""
    name = _name(leaf, column)
    kind = target_kind(leaf.schema)
    if column.kind != "empty" and kind in _COMPATIBLE and column.kind not in _COMPATIBLE[kind]:
        return None
    options: dict[str, Any] = {"from": column.selector}
    if kind != "string":
        options["type"] = kind
    if kind in ("date", "datetime") and column.fmt:
        options["format"] = column.fmt
    if kind == "decimal":
        if column.decimal and column.decimal != (decimal or "."):
            options["decimal"] = column.decimal
        if column.thousands:
            options["thousands"] = column.thousands
        places = _places(leaf.schema)
        if places is not None and any(_decimals(v) > places for v in column.values[:TRIED]):
            options["scale"] = places
    values = [v for v in column.values[:TRIED] if text_of(v)]
    if not values:
        fit = 0.2 if column.kind == "empty" else 0.0  # an e-invoice term this one lacks
        score = name * (0.35 + 0.65 * fit)
        return Choice(column, score, options) if score > 0 else None
    fit, options, note = _best_shape(leaf, values, options, kind, decimal)
    specific = kind in ("date", "datetime", "bool") or bool(leaf.schema.get("enum"))
    if name > 0:
        score = name * (0.35 + 0.65 * fit)
    elif specific and fit == 1.0:
        score = 0.25  # content alone: a date for the only date field, ...
    else:
        return None
    return Choice(column, score, options, note)


def _best_shape(
    leaf: Leaf, values: Sequence[Any], options: dict[str, Any], kind: str, decimal: str | None
) -> tuple[float, dict[str, Any], str]:
    """The options (as they are, upper case, a value map, a transform) Ecolix accepts best."""
    tries: list[tuple[dict[str, Any], str]] = [(options, "")]
    texts = sorted({text_of(v) for v in values})
    if kind == "string":
        tries.append(({**options, "case": "upper"}, ""))
        tries.append(({**options, "case": "lower"}, ""))
        value_map, missed = _value_map(texts, leaf.schema)
        if value_map:
            note = (
                f"TODO: values of the sample without a match: {', '.join(missed)}" if missed else ""
            )
            tries.append(
                ({**options, "map": value_map}, note or "value map made from the sample: check it")
            )
        if _TIME.match(str(leaf.schema.get("pattern", ""))):
            end = "end" if any(c == "end" for c, _ in leaf.words) else "start"
            for label, shape, exprs in _TRANSFORMS:
                expr = exprs.get(end, exprs.get(""))
                if expr and all(shape.fullmatch(t) for t in texts):
                    tries.append(({**options, "expr": expr}, f"the sample holds {label}"))
    best: tuple[float, dict[str, Any], str] = (-1.0, options, "")
    validator = jsonschema_rs.validator_for(dict(leaf.schema), validate_formats=True)
    for candidate, note in tries:
        fit = _fit(candidate, kind, values, validator, decimal)
        if fit > best[0] + 1e-9:
            best = (fit, candidate, note)
    return best


def _fit(
    options: Mapping[str, Any],
    kind: str,
    values: Sequence[Any],
    validator: Any,
    decimal: str | None,
) -> float:
    """The share of ``values`` Ecolix would accept once the field's options are applied."""
    from edigw.mapping.expressions import ExpressionError, compile_expression, make_environment
    from edigw.mapping.types import converter

    convert = converter(
        kind,
        fmt=options.get("format"),
        decimal_sep=options.get("decimal", decimal or "."),
        thousands=options.get("thousands", ""),
        scale=options.get("scale"),
        tz=ZoneInfo("Europe/Paris"),
    )
    expr = compile_expression(make_environment(), options["expr"]) if "expr" in options else None
    good = 0
    for raw in values:
        value: Any = raw.strip() if isinstance(raw, str) else raw
        try:
            if expr is not None:
                value = expr(value=value, record=None, records=None)
            if "case" in options and isinstance(value, str):
                value = value.upper() if options["case"] == "upper" else value.lower()
            if "map" in options:
                value = options["map"].get(text_of(value), None)
                if value is None:
                    continue
            result = convert(value)
        except (ValueError, TypeError, AttributeError, ExpressionError, EdigwError):
            continue  # a value that does not fit
        if validator.is_valid(result):
            good += 1
    return good / len(values)


def _value_map(texts: Sequence[str], schema: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Sample values to Ecolix's (an enum, or a pattern like a country code), and the misses."""
    enum = [str(v) for v in schema.get("enum") or []]
    validator = jsonschema_rs.validator_for(dict(schema))
    mapped: dict[str, str] = {}
    missed: list[str] = []
    for text in texts[:40]:
        folded = suggest.fold(text).strip()
        hit = VALUE_WORDS.get(folded)
        if hit is None and enum:  # plain similarity: "chèque cadeau" is no CHEQUE
            close = difflib.get_close_matches(folded, [suggest.fold(e) for e in enum], 1, 0.8)
            hit = enum[[suggest.fold(e) for e in enum].index(close[0])] if close else None
        if hit is not None and validator.is_valid(hit):
            mapped[text] = hit
        else:
            missed.append(text)
    if enum or len(mapped) > len(missed):
        return mapped, missed
    return {}, missed


def _places(schema: Mapping[str, Any]) -> int | None:
    found = re.search(r"\\\.\\d\{1,(\d)\}", str(schema.get("pattern", "")))
    return int(found.group(1)) if found else None


def _decimals(value: Any) -> int:
    text = text_of(value).replace(",", ".")
    return len(text.split(".", 1)[1]) if "." in text else 0

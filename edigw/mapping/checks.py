"""Static checks: what in a mapping would fail on every file, found before any file arrives.

``edigw mapping check`` (and ``edigw config check``) run them after loading a mapping:

- expressions: functions, filters, tests and names the expression sandbox does not have (the
  names come from the engine's own environment, so this list cannot drift from it);
- selectors the source declares not to have: a CSV header given in ``columns:``, a flat-file
  layout's fields (per record type: a header field is not a line field), e-invoice terms at
  their level, or, with ``--sample``, the header of a CSV or Excel sample and the element
  paths of an XML sample;
- the target: fields the Ecolix operation does not have, required ones left unmapped, types
  that cannot give what Ecolix wants (a ``decimal`` where it wants an integer), constants and
  value-map results that Ecolix would refuse, expressions whose result the field's type
  cannot convert (a number into a date).

Each problem is one line ``file:line key.path: what; did you mean X? (candidates: ...)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
from jinja2.sandbox import ImmutableSandboxedEnvironment

from edigw import suggest
from edigw.mapping.expression_checks import (
    expression_problems,
    parse_expression,
    record_reads,
    result_kind,
)
from edigw.mapping.expressions import make_environment
from edigw.mapping.loader import KeyPath, MappingSource
from edigw.mapping.scopes import Problem, Scope, declared_scope, sample_scope

# What each kind of expression is given (see edigw.mapping.builders, compiler and engine).
FIELD_NAMES = ("value", "record", "records")
WHEN_NAMES = ("record", "records")
RECORD_FILTER_NAMES = ("record",)
DOCUMENT_FILTER_NAMES = ("payload", "record")


# -- the walk ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Level:
    """Where the walk is: the mapping keys, the source scope and the target schema."""

    keys: KeyPath
    scope: Scope | None
    schema: Mapping[str, Any] | None
    pointer: str


def static_problems(source: MappingSource, *, samples: Sequence[Path] = ()) -> list[str]:
    """Every problem these checks find in a schema-valid mapping, as located lines."""
    return [f"{source.where(keys)}: {message}" for keys, message in _Checker(source, samples).run()]


class _Checker:
    def __init__(self, source: MappingSource, samples: Sequence[Path]) -> None:
        self.source = source
        self.data = source.data
        self.env: ImmutableSandboxedEnvironment = make_environment()
        self.problems: list[Problem] = []
        self.base = source.path.parent.resolve()
        block = {k: v for k, v in self.data["source"].items() if not k.startswith("_")}
        self.format = str(block.get("format"))
        scope: Scope = declared_scope(block, self.base)
        if samples:
            sampled, problems = sample_scope(block, samples, self.base)
            self.problems.extend(problems)
            if sampled is not None:
                scope = sampled
        self.top = scope
        self.target = str(self.data["target"])
        self.request = _request_schema(self.target)

    def fail(self, keys: KeyPath, message: str) -> None:
        self.problems.append((keys, message))

    def run(self) -> list[Problem]:
        data = self.data
        for name in ("when", "skip"):
            if name in data:
                self.expression(data[name], (name,), RECORD_FILTER_NAMES, self.top)
        docs = data["documents"]
        by = docs.get("by")
        for i, selector in enumerate([by] if isinstance(by, str) else by or []):
            keys: KeyPath = ("documents", "by") if isinstance(by, str) else ("documents", "by", i)
            self.selector(selector, keys, self.top)
        for name in ("when", "skip"):
            if name in docs:
                self.expression(docs[name], ("documents", name), DOCUMENT_FILTER_NAMES, self.top)
        for i, rule in enumerate(data.get("skip_if", [])):
            self.expression(rule["expr"], ("skip_if", i, "expr"), WHEN_NAMES, self.top)
        key = data["key"]
        if isinstance(key, str) or "fields" not in key:
            self.leaf(key, _Level(("key",), self.top, None, ""))
        self.object(data["fields"], _Level(("fields",), self.top, self.request, ""))
        for where in ("before", "then"):
            for i, step in enumerate(data.get(where, [])):
                self.step(step, (where, i))
        return self.problems

    def step(self, step: Mapping[str, Any], keys: KeyPath) -> None:
        """A chain step's fields, against its own operation (placeholders left to load)."""
        main = self.target
        self.target = str(step["target"])
        try:
            fields = {
                name: spec
                for name, spec in step["fields"].items()
                if not (isinstance(spec, dict) and ("answer" in spec or "original" in spec))
            }
            schema = _request_schema(self.target)
            if schema is not None:  # a placeholder stands for a required field when sent
                waiting = set(step["fields"]) - set(fields)
                schema = {
                    **schema,
                    "required": [r for r in schema.get("required", []) if r not in waiting],
                }
            self.object(fields, _Level((*keys, "fields"), self.top, schema, ""))
        finally:
            self.target = main

    # -- pieces ------------------------------------------------------------------------

    def selector(
        self, selector: str, keys: KeyPath, scope: Scope | None, *, optional: bool = False
    ) -> None:
        if scope is not None:
            problem = scope.problem(selector, optional=optional)
            if problem:
                self.fail(keys, problem)

    def object(self, fields: Mapping[str, Any], at: _Level) -> None:
        props = _properties(at.schema)
        place = self.place(at.pointer)
        for name, spec in fields.items():
            keys = (*at.keys, name)
            pointer = f"{at.pointer}/{name}"
            child = props.get(name) if props is not None else None
            if props is not None and child is None and _closed(at.schema):
                self.fail(
                    keys,
                    suggest.unknown(
                        f"{name!r} is not a field of {place}", name, list(props), noun="fields"
                    ),
                )
            self.field(spec, _Level(keys, at.scope, child, pointer))
        if props is not None and at.schema is not None:
            for name in at.schema.get("required", []):
                if name not in fields:
                    self.fail(
                        at.keys,
                        f"{name!r} is required by {place} but not mapped: every document "
                        "would be refused",
                    )

    def field(self, spec: Any, at: _Level) -> None:
        if not isinstance(spec, dict) or "fields" not in spec:
            self.leaf(spec, at)
            return
        wants = _schema_type(at.schema)
        each = spec.get("each")
        scope = at.scope
        if each is None:
            if "when" in spec:
                self.expression(spec["when"], (*at.keys, "when"), WHEN_NAMES, scope)
            if wants not in (None, "object"):
                self.fail(at.keys, f"{self.place(at.pointer)} is {_noun(wants)}, not an object")
                return
            self.object(spec["fields"], _Level((*at.keys, "fields"), scope, at.schema, at.pointer))
            return
        if wants not in (None, "array"):
            self.fail((*at.keys, "each"), f"{self.place(at.pointer)} is {_noun(wants)}, not a list")
            return
        items = at.schema.get("items") if at.schema is not None else None
        if items is not None and _schema_type(items) not in (None, "object"):
            return  # a list of plain values: beyond what `fields` can make, the loader says so
        child: Scope | None = None
        if scope is not None:
            child, problem = scope.each(each)
            if problem:
                self.fail((*at.keys, "each"), problem)
        if "when" in spec:  # on each item: `record` is the item
            self.expression(spec["when"], (*at.keys, "when"), WHEN_NAMES, child)
        inner = _Level((*at.keys, "fields"), child, items, f"{at.pointer}/*")
        self.object(spec["fields"], inner)

    def leaf(self, spec: Any, at: _Level) -> None:
        if not isinstance(spec, dict):
            spec = {"from": spec}  # the shorthand: its problems are the `from`'s, as loading says
        if isinstance(spec.get("from"), str):
            self.selector(spec["from"], (*at.keys, "from"), at.scope)
        kind = spec.get("type", "string")
        if "expr" in spec:
            result = self.expression(spec["expr"], (*at.keys, "expr"), FIELD_NAMES, at.scope)
            self.result_kind(result, kind, spec["expr"], (*at.keys, "expr"))
        if "when" in spec:
            self.expression(spec["when"], (*at.keys, "when"), WHEN_NAMES, at.scope)
        if at.schema is None:
            return
        mismatch = _type_mismatch(at.schema, kind)
        if mismatch:
            where = (*at.keys, "type") if "type" in spec else at.keys
            self.fail(where, f"{self.place(at.pointer)} {mismatch}")
            return
        self.values(spec, at, kind)

    def values(self, spec: Mapping[str, Any], at: _Level, kind: str) -> None:
        """Constants, defaults and value-map results that Ecolix would refuse."""
        assert at.schema is not None
        if kind not in ("string", "int", "bool"):
            return  # converted values (dates, decimals) are checked on samples
        validator = jsonschema_rs.validator_for(dict(at.schema), validate_formats=True)
        checks: list[tuple[KeyPath, Any]] = []
        for option in ("value", "default"):
            if option in spec:
                checks.append(((*at.keys, option), spec[option]))
        for source_value, target in (spec.get("map") or {}).items():
            checks.append(((*at.keys, "map", source_value), target))
        for keys, value in checks:
            if kind == "string" and not isinstance(value, str):
                value = str(value).lower() if isinstance(value, bool) else str(value)
            if validator.is_valid(value):
                continue
            self.fail(
                keys,
                f"{value!r} would be refused by Ecolix at {self.place(at.pointer)}: "
                + _refusal(validator, at.schema, value),
            )

    def result_kind(self, result: str | None, kind: str, text: str, keys: KeyPath) -> None:
        if result == "bool" and kind in ("int", "decimal", "date", "datetime"):
            self.fail(
                keys, f"expression {text!r} gives true/false, which type {kind} cannot convert"
            )
        elif result == "number" and kind in ("date", "datetime", "bool") and self.format != "xlsx":
            self.fail(
                keys,
                f"expression {text!r} gives a number, but the field's type is {kind}"
                + (" (a number is read as an Excel day number)" if kind != "bool" else ""),
            )

    def expression(
        self, text: str, keys: KeyPath, names: Sequence[str], scope: Scope | None
    ) -> str | None:
        """Check one expression; return the kind of its result (number, text, bool) if known."""
        tree = parse_expression(self.env, text)
        if tree is None:
            return None  # a syntax error: the loader reports it
        for message in expression_problems(self.env, tree, text, names):
            self.fail(keys, message)
        for selector, guarded in record_reads(tree, "record"):
            self.selector(selector, keys, scope, optional=guarded)
        for selector, guarded in record_reads(tree, "records"):
            self.selector(selector, keys, self.top, optional=guarded)
        return result_kind(tree)

    def place(self, pointer: str) -> str:
        return f"{self.target} {pointer}" if pointer else self.target


# -- the target ----------------------------------------------------------------------------


def _request_schema(target: str) -> Mapping[str, Any] | None:
    from edigw.ecolix.contract import ContractError, load_contract

    try:
        return load_contract().operation(target).request_schema
    except ContractError:
        return None


def _properties(schema: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if schema is None:
        return None
    props = schema.get("properties")
    return props if isinstance(props, Mapping) else None


def _closed(schema: Mapping[str, Any] | None) -> bool:
    return schema is not None and schema.get("additionalProperties") is False


def _schema_type(schema: Mapping[str, Any] | None) -> str | None:
    if schema is None:
        return None
    kind = schema.get("type")
    return kind if isinstance(kind, str) else None


def _noun(kind: str | None) -> str:
    return {
        "object": "an object (give it `fields:`)",
        "array": "a list (give it `each:` and `fields:`)",
        "string": "one text value",
        "integer": "one whole number",
        "number": "one number",
        "boolean": "one true/false value",
    }.get(kind or "", "one value")


def _numeric_text(schema: Mapping[str, Any]) -> bool:
    pattern = str(schema.get("pattern", ""))
    return pattern.startswith(("^\\d", "^-?\\d")) and "[" not in pattern.split("(")[0][2:]


def _type_mismatch(schema: Mapping[str, Any], kind: str) -> str | None:
    """Why a field of mapping ``kind`` cannot give what ``schema`` wants (None: it can)."""
    wants = _schema_type(schema)
    gives = {
        "string": "text",
        "int": "a whole number",
        "decimal": "a decimal as text",
        "date": "a date as text",
        "datetime": "a date-time as text",
        "bool": "true/false",
    }[kind]
    if wants in ("object", "array"):
        return f"is {_noun(wants)}, not one value"
    if wants == "integer" and kind != "int":
        return f"wants a whole number, but type {kind} gives {gives}: use type: int"
    if wants == "boolean" and kind != "bool":
        return f"wants true/false, but type {kind} gives {gives}: use type: bool"
    if wants != "string":
        return None
    if kind in ("int", "bool"):
        better = "decimal" if _numeric_text(schema) else "string"
        return f"wants text, but type {kind} gives {gives}: use type: {better}"
    fmt = schema.get("format")
    if fmt == "date" and kind in ("datetime", "decimal"):
        return f"wants a date (YYYY-MM-DD), but type {kind} gives {gives}: use type: date"
    if fmt == "date-time" and kind in ("date", "decimal"):
        return f"wants a date-time, but type {kind} gives {gives}: use type: datetime"
    if _numeric_text(schema) and kind in ("date", "datetime"):
        return f"wants a decimal number, but type {kind} gives {gives}: use type: decimal"
    return None


def _refusal(validator: Any, schema: Mapping[str, Any], value: Any) -> str:
    options = schema.get("enum")
    if isinstance(options, list) and isinstance(value, str):
        names = [str(o) for o in options]
        return f"not one of {suggest.listing(suggest.ranked(value, names), last=' or ')}" + (
            suggest.hint(value, names)
        )
    errors = list(validator.iter_errors(value))
    return str(errors[0].message) if errors else "refused"


# -- merging with the loader's problems ----------------------------------------------------


def merge(loaded: Iterable[str], static: Iterable[str]) -> list[str]:
    """The loader's problems and these, one line per problem.

    A static problem at a key supersedes the loader's there: it says the same, better (an
    unknown filter with its candidates rather than Jinja's "No filter named", a layout field
    with the record types that have it).
    """
    static = list(dict.fromkeys(static))
    places = {_place(p) for p in static}
    kept = [p for p in loaded if _place(p) not in places]
    return sorted(dict.fromkeys([*kept, *static]), key=_line)


def _place(problem: str) -> str:
    return problem.split(": ", 1)[0]


def _line(problem: str) -> int:
    """The line of ``name.yaml:14 key: ...`` (problems without one come first)."""
    head = _place(problem).split(" ", 1)[0]
    number = head.rsplit(":", 1)[-1]
    return int(number) if number.isdigit() else 0

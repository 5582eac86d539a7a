"""The compiler: a mapping file's data walked once into builders and a ``CompiledMapping``,
every problem found collected with its line; ``load_mapping`` reads, checks and compiles a
mapping file.

Separate from the engine: compiling runs once per mapping and reads the YAML, the contract
and the lookup tables; the engine applies what it made to records and never looks at the
YAML again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema_rs

from edigw.errors import MappingError
from edigw.formats import reader_for
from edigw.jinja_sandbox import BoundedEnvironment
from edigw.mapping import steps as placeholders
from edigw.mapping.builders import (
    _FlatObject,
    _guarded_object,
    _leaf_builder,
    _LeafPlan,
    _list_builder,
    _object_builder,
    _RowPlan,
    _Simple,
)
from edigw.mapping.context import _MISSING, Builder, Trace, _Ctx, _truthy
from edigw.mapping.engine import CompiledMapping, _escape, _SkipRule, _Step
from edigw.mapping.expression_checks import parse_expression
from edigw.mapping.expressions import (
    Expression,
    ExpressionError,
    RecordView,
    compile_expression,
    make_environment,
)
from edigw.mapping.loader import KeyPath, MappingSource, read_mapping
from edigw.mapping.lookups import ExpressionTables, LookupTable, load_table
from edigw.mapping.types import check_format, converter, plain_decimal
from edigw.model import Record

DEFAULT_TIMEZONE = "Europe/Paris"
_TYPE_OPTIONS = {
    "format": ("date", "datetime"),
    "scale": ("decimal",),
    "decimal": ("decimal",),
    "thousands": ("decimal", "int"),
    "true_values": ("bool",),
    "false_values": ("bool",),
}


def load_mapping(path: Path) -> CompiledMapping:
    """Read, check and compile a mapping file; ``MappingError`` lists every problem at once."""
    source = read_mapping(path)
    return _Compiler(source).compile()


class _FieldCompiler:
    """Compiles fields (objects, lists, leaves) into builders, with what they need: the
    source's reader to check selectors, expressions and the tables they read, lookup tables,
    number settings and the time zone; every problem is collected with its line (``fail``).

    ``_Compiler`` compiles the mapping as a whole on top of it (documents, key, target, chain
    steps, filters); apart so that each class can be read at once.
    """

    def __init__(self, source: MappingSource) -> None:
        self.source = source
        self.data = source.data
        self.problems: list[str] = []
        self.tables: dict[tuple[Path, str, str], LookupTable] = {}
        # Leaves that read one cell and only trim / case / translate / convert it: objects
        # made of them take the row at once (see ``_object_builder``).
        self.simple: dict[Builder, _Simple] = {}
        self.row_plans: dict[Builder, _RowPlan] = {}
        self.flat_objects: dict[Builder, _FlatObject] = {}
        src = self.data["source"]
        # Readers resolve the files they name (flat-file layouts) against the mapping's folder.
        src.setdefault("_base", str(source.path.parent.resolve()))
        self.decimal_sep: str = src.get("decimal", ".")
        self.thousands: str = src.get("thousands", "")
        # lookup('table.csv', key) in expressions reads the tables they name, loaded here
        self.expression_tables = ExpressionTables(source.path.parent)
        self.env: BoundedEnvironment = make_environment(
            decimal_sep=self.decimal_sep,
            thousands=self.thousands,
            lookup=self.expression_tables.lookup,
        )
        self.reader: Any = None
        try:
            self.reader = reader_for(src)
        except MappingError as exc:
            self.fail(("source",), str(exc))
        self.tz = self._timezone()

    def fail(self, keys: KeyPath, message: str) -> None:
        self.problems.append(f"{self.source.where(keys)}: {message}")

    def _timezone(self) -> ZoneInfo | None:
        name = self.data.get("timezone", DEFAULT_TIMEZONE)
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(("timezone",), f"unknown time zone {name!r} (e.g. Europe/Paris)")
            return None

    def _expression(self, text: str, keys: KeyPath) -> Expression | None:
        try:
            compiled = compile_expression(self.env, text)
        except ValueError as exc:
            self.fail(keys, str(exc))
            return None
        tree = parse_expression(self.env, text)
        if tree is not None:
            for problem in self.expression_tables.load_for(tree):
                self.fail(keys, problem)
        return compiled

    def _check_selector(self, selector: str, keys: KeyPath) -> None:
        check = getattr(self.reader, "check_selector", None)
        if check is not None:
            problem = check(selector)
            if problem:
                self.fail(keys, problem)

    def _object(
        self, fields: Mapping[str, Any], keys: KeyPath, suffix: str, *, in_list: bool, per: str
    ) -> Builder:
        items: list[tuple[str, Builder]] = []
        for name, spec in fields.items():
            items.append((name, self._field(name, spec, (*keys, name), in_list=in_list, per=per)))
        children = tuple(items)
        root = not keys[:-1] and suffix == ""
        builder, row_plan = _object_builder(
            children, self.simple, self.flat_objects, suffix=suffix, root=root
        )
        if row_plan is not None:
            self.row_plans[builder] = row_plan
        if not root and all(b in self.simple for _, b in children):
            self.flat_objects[builder] = (
                suffix,
                tuple((name, b, self.simple[b]) for name, b in children),
            )
        return builder

    def _field(self, name: str, spec: Any, keys: KeyPath, *, in_list: bool, per: str) -> Builder:
        suffix = "/" + _escape(name)
        if not isinstance(spec, dict):
            return self._leaf(spec, keys, suffix)
        if "fields" in spec:
            for option in ("from", "value", "expr", "type", "map", "lookup", "default"):
                if option in spec:
                    self.fail(
                        (*keys, option), f"{option!r} does not apply to a field with `fields`"
                    )
            return self._nested(spec, keys, suffix, in_list=in_list, per=per)
        if "each" in spec:
            self.fail((*keys, "each"), "a list (`each`) needs `fields` for its items")
            return _nothing
        return self._leaf(spec, keys, suffix)

    def _nested(
        self, spec: Mapping[str, Any], keys: KeyPath, suffix: str, *, in_list: bool, per: str
    ) -> Builder:
        fields_keys = (*keys, "fields")
        required = bool(spec.get("required", False))
        when = spec.get("when")
        when_fn = self._expression(when, (*keys, "when")) if when else None
        each = spec.get("each")
        if each is None:
            inner = self._object(spec["fields"], fields_keys, suffix, in_list=in_list, per=per)
            return _guarded_object(inner, when_fn, required=required, suffix=suffix)
        if each == "records":
            if in_list:
                self.fail((*keys, "each"), "`each: records` cannot be nested in another list")
            if per == "record":
                self.fail(
                    (*keys, "each"),
                    "`each: records` needs documents made of several records (per: group or file)",
                )
        else:
            self._check_selector(each, (*keys, "each"))
        item = self._object(spec["fields"], fields_keys, "", in_list=True, per=per)
        row_plan = self.row_plans.get(item) if when_fn is None else None
        return _list_builder(
            item, each, when_fn, required=required, suffix=suffix, row_plan=row_plan
        )

    def _leaf(self, spec: Any, keys: KeyPath, suffix: str, *, key: bool = False) -> Builder:
        if not isinstance(spec, dict):
            spec = {"from": spec}
        if "answer" in spec or "original" in spec:
            self.fail(
                keys,
                "`answer:` and `original:` are read only at the top level of a `then:` step "
                "(values known when that step is sent)",
            )
            return _nothing
        selector: str | None = spec.get("from")
        constant = spec.get("value", _MISSING)
        expr_text = spec.get("expr")
        if selector is None and constant is _MISSING and expr_text is None:
            self.fail(keys, "say where the value comes from: `from`, `value` or `expr`")
            return _nothing
        if constant is not _MISSING and (selector is not None or expr_text is not None):
            self.fail((*keys, "value"), "a constant `value` cannot be combined with `from`/`expr`")
        if selector is not None:
            self._check_selector(selector, (*keys, "from"))
        kind = "string" if key else spec.get("type", "string")
        for option, kinds in _TYPE_OPTIONS.items():
            if option in spec and kind not in kinds:
                self.fail((*keys, option), f"{option!r} applies to type {' or '.join(kinds)} only")
        fmt = spec.get("format")
        if fmt is not None:
            try:
                check_format(fmt, kind)
            except ValueError as exc:
                self.fail((*keys, "format"), str(exc))
                fmt = None
        decimal_sep = spec.get("decimal", self.decimal_sep)
        thousands = spec.get("thousands", self.thousands)
        convert = converter(
            kind,
            fmt=fmt,
            decimal_sep=decimal_sep,
            thousands=thousands,
            scale=spec.get("scale"),
            tz=self.tz,
            **{k: spec[k] for k in ("true_values", "false_values") if k in spec},
        )
        expr_fn = self._expression(expr_text, (*keys, "expr")) if expr_text else None
        when = spec.get("when")
        when_fn = self._expression(when, (*keys, "when")) if when else None
        value_map: dict[str, Any] | None = spec.get("map")
        table = self._table(spec["lookup"], (*keys, "lookup")) if "lookup" in spec else None
        on_miss = spec.get("on_miss", "fail")
        if "on_miss" in spec and value_map is None and table is None:
            self.fail((*keys, "on_miss"), "`on_miss` applies to `map` or `lookup` only")
        default = _MISSING
        if "default" in spec:
            try:
                default = convert(spec["default"])
            except ValueError as exc:
                self.fail((*keys, "default"), f"default {exc}")
        elif on_miss == "default" and (value_map is not None or table is not None):
            self.fail((*keys, "on_miss"), "on_miss: default needs a `default:` value")
        constant_value: Any = None
        if constant is not _MISSING:
            try:
                constant_value = convert(constant)
            except ValueError as exc:
                self.fail((*keys, "value"), str(exc))
        builder, simple = _leaf_builder(
            _LeafPlan(
                suffix=suffix,
                selector=selector,
                constant=constant_value if constant is not _MISSING else None,
                is_constant=constant is not _MISSING,
                expr=expr_fn,
                when=when_fn,
                trim=bool(spec.get("trim", True)),
                case=spec.get("case"),
                value_map=value_map,
                table=table,
                on_miss=on_miss,
                default=default,
                required=key or bool(spec.get("required", False)),
                convert=convert,
                plain=(
                    plain_decimal(decimal_sep, thousands, spec.get("scale"))
                    if kind == "decimal"
                    else None
                ),
                decimal_sep=decimal_sep,
                kind=kind,
                origin=_origin(selector, constant, expr_text),
                thousands=thousands,
            )
        )
        if simple is not None:
            self.simple[builder] = simple
        return builder

    def _table(self, spec: Mapping[str, str], keys: KeyPath) -> LookupTable | None:
        path = (self.source.path.parent / spec["table"]).resolve()
        cache_key = (path, spec["key"], spec["value"])
        if cache_key in self.tables:
            return self.tables[cache_key]
        try:
            table = load_table(path, key=spec["key"], value=spec["value"])
        except MappingError as exc:
            for problem in exc.problems:
                self.fail((*keys, "table"), problem)
            return None
        self.tables[cache_key] = table
        return table


class _Compiler(_FieldCompiler):
    """Walks the mapping data once, building closures and collecting problems with lines."""

    def compile(self) -> CompiledMapping:
        data = self.data
        docs = data["documents"]
        per = "record" if docs["per"] == "element" else docs["per"]
        by = docs.get("by")
        group_by = (by,) if isinstance(by, str) else tuple(by or ())
        if per == "group" and not group_by:
            self.fail(("documents", "per"), "per: group needs `by:` (the column(s) of the key)")
        if per != "group" and group_by:
            self.fail(("documents", "by"), "`by:` only applies to per: group")
        for i, selector in enumerate(group_by):
            keys: KeyPath = ("documents", "by") if isinstance(by, str) else ("documents", "by", i)
            self._check_selector(selector, keys)
        root = self._object(data["fields"], ("fields",), "", in_list=False, per=per)
        key_spec = data["key"]
        if isinstance(key_spec, dict) and ("fields" in key_spec or "each" in key_spec):
            self.fail(("key",), "the key is one value, not an object or list")
            key_builder: Builder = _nothing
        else:
            key_builder = self._leaf(key_spec, ("key",), "", key=True)
        validator = self._validator(data["target"])
        steps = tuple(
            self._step(step, ("then", i), per=per) for i, step in enumerate(data.get("then", []))
        )
        before = tuple(
            self._step(step, ("before", i), per=per)
            for i, step in enumerate(data.get("before", []))
        )
        skips = self._skip_rules()
        record_filter = self._record_filter()
        document_filter = self._document_filter(docs)
        if self.problems:
            name = self.source.path.name
            first = self.problems[0]
            msg = f"{name}: {len(self.problems)} problem(s): {first}"
            raise MappingError(msg, self.problems)
        source = dict(data["source"])
        layout = getattr(self.reader, "layout", None)
        if layout is not None:
            source["_layout"] = layout  # pinned: see FlatReader.from_source
        return CompiledMapping(
            path=self.source.path,
            target=data["target"],
            source=source,
            per=per,
            description=data.get("description", ""),
            _root=root,
            _key=key_builder,
            _group_by=group_by,
            _record_filter=record_filter,
            _document_filter=document_filter,
            _validator=validator,
            _steps=steps,
            _before=before,
            _skips=skips,
            files=self._files(),
        )

    def _files(self) -> tuple[Path, ...]:
        """The mapping file, the lookup tables it loaded and its layout file, if any."""
        found = [self.source.path.resolve()]
        found += [path for path, _, _ in self.tables]
        found += [table.path for table in self.expression_tables.tables.values()]
        layout = self.data["source"].get("layout")
        if isinstance(layout, str):
            path = Path(layout)
            found.append((path if path.is_absolute() else self.source.path.parent / path).resolve())
        return tuple(dict.fromkeys(found))

    # -- pieces ------------------------------------------------------------------------

    def _step(self, spec: Mapping[str, Any], keys: KeyPath, *, per: str) -> _Step:
        """A follow-up step: its fields, where ``answer:`` and ``original:`` may appear at the
        top level (they become placeholders filled when the step is sent)."""
        items: list[tuple[str, Builder]] = []
        for name, field_spec in spec["fields"].items():
            field_keys = (*keys, "fields", name)
            if isinstance(field_spec, dict) and (
                "answer" in field_spec or "original" in field_spec
            ):
                items.append((name, self._placeholder(name, field_spec, field_keys)))
            else:
                items.append(
                    (name, self._field(name, field_spec, field_keys, in_list=False, per=per))
                )
        builder, _ = _object_builder(
            tuple(items), self.simple, self.flat_objects, suffix="", root=True
        )
        return _Step(
            spec["target"], builder, self._validator(spec["target"], keys=(*keys, "target"))
        )

    def _skip_rules(self) -> tuple[_SkipRule, ...]:
        rules = []
        for i, rule in enumerate(self.data.get("skip_if", [])):
            test = self._expression(rule["expr"], ("skip_if", i, "expr"))
            if test is not None:
                rules.append(_SkipRule(i, rule["expr"], rule["reason"], test))
        return tuple(rules)

    def _placeholder(self, name: str, spec: Mapping[str, Any], keys: KeyPath) -> Builder:
        if keys[0] == "before" and "answer" in spec:
            self.fail(
                keys,
                "`answer:` reads the answer to the document's own write, which a `before:` "
                "step comes before; use it in a `then:` step",
            )
        others = sorted(set(spec) - {"answer", "original", "description"})
        if others or ("answer" in spec and "original" in spec):
            shown = ", ".join(others) or "original"
            self.fail(keys, f"`answer:`/`original:` stands alone in a field (not with {shown})")
        if "answer" in spec:
            value = placeholders.answer(spec["answer"])
            origin = f"answer {value[placeholders.ANSWER]!r} of the first step, when sent"
        else:
            value = placeholders.original(spec["original"])
            origin = f"the archived original's {spec['original']}, when sent"
        suffix = "/" + _escape(name)

        def build(record: Record, ctx: _Ctx, parent: str) -> Any:
            if ctx.trace is not None:
                pointer = parent + suffix
                ctx.trace[pointer] = Trace(pointer, value, origin, None, record.location)
            return dict(value)

        return build

    def _validator(self, target: str, *, keys: KeyPath = ("target",)) -> Any:
        from edigw.ecolix.contract import ContractError, load_contract

        try:
            spec = load_contract().operation(target)
        except ContractError as exc:
            self.fail(keys, str(exc))
            return None
        schema = spec.request_schema
        if schema is None or not spec.target:
            self.fail(keys, f"{target} is not a write operation a mapping can target")
            return None
        return jsonschema_rs.validator_for(schema, validate_formats=True)

    def _record_filter(self) -> Callable[[Record], bool] | None:
        when = self.data.get("when")
        skip = self.data.get("skip")
        when_fn = self._expression(when, ("when",)) if when else None
        skip_fn = self._expression(skip, ("skip",)) if skip else None
        if when_fn is None and skip_fn is None:
            return None

        def keep(record: Record) -> bool:
            view = RecordView(record)
            try:
                if when_fn is not None and not _truthy(when_fn(record=view)):
                    return False
                return not (skip_fn is not None and _truthy(skip_fn(record=view)))
            except ExpressionError:
                return True  # the record stays; its fields will report what is wrong

        return keep

    def _document_filter(
        self, docs: Mapping[str, Any]
    ) -> Callable[[dict[str, Any], Record], bool] | None:
        when = docs.get("when")
        skip = docs.get("skip")
        when_fn = self._expression(when, ("documents", "when")) if when else None
        skip_fn = self._expression(skip, ("documents", "skip")) if skip else None
        if when_fn is None and skip_fn is None:
            return None

        def keep(payload: dict[str, Any], record: Record) -> bool:
            names = {"payload": payload, "record": RecordView(record)}
            try:
                if when_fn is not None and not _truthy(when_fn(**names)):
                    return False
                return not (skip_fn is not None and _truthy(skip_fn(**names)))
            except ExpressionError:
                return True

        return keep


def _origin(selector: str | None, constant: Any, expr: str | None) -> str:
    if expr is not None:
        base = f"expression {expr!r}"
        return f"{base} on {selector!r}" if selector else base
    if selector is not None:
        return repr(selector)
    return f"constant {constant!r}"


def _nothing(record: Record, ctx: _Ctx, parent: str) -> Any:
    return None

"""The builders: the closures that make one target value (a leaf), an object or a list out of
a record, each a ``Builder`` called as ``build(record, ctx, parent_pointer)`` (see
``context``). The compiler makes them once per mapping; the engine calls them for every
document: this is the hot path.

The common fields (one value read, then only trimmed, cased, mapped, looked up, converted)
skip even those calls: an object takes its record's row at once (``values_of``, see
``edigw.formats``) and computes such fields in one loop, those of its child objects made
only of such fields included; a list of such objects is built straight from its items'
rows. A value off that path (empty, not found, not convertible) goes through its field's
own function, so problems, locations and pointers are the same either way.

Separate from the compiler, which reads the mapping's YAML and decides what to build: here
is only what runs per record, and reads no YAML.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edigw.errors import DataProblem
from edigw.formats.limits import over
from edigw.mapping.context import _MISSING, Builder, Trace, _Ctx, _Records, _truthy
from edigw.mapping.exact import exact_number
from edigw.mapping.expressions import (
    Expression,
    ExpressionError,
    ReadingView,
    RecordView,
    number_reader,
)
from edigw.mapping.lookups import LookupTable
from edigw.mapping.types import to_string
from edigw.model import Location, Record


@dataclass(frozen=True, slots=True)
class _LeafPlan:
    suffix: str
    selector: str | None
    constant: Any
    is_constant: bool
    expr: Expression | None
    when: Expression | None
    trim: bool
    case: str | None
    value_map: dict[str, Any] | None
    table: LookupTable | None
    on_miss: str
    default: Any
    required: bool
    convert: Callable[[Any], Any]
    plain: re.Pattern[str] | None  # decimals: text that converts by replacing decimal_sep
    decimal_sep: str
    kind: str
    origin: str
    thousands: str = ""


_CASES: dict[str, Callable[[str], str]] = {
    "upper": str.upper,
    "lower": str.lower,
    "title": str.title,
}


def _leaf_builder(plan: _LeafPlan) -> tuple[Builder, _Simple | None]:
    """One field's closure, and its ``_Simple`` form when it has one.

    Plan attributes are copied to locals: the hot path reads no YAML.
    """
    suffix = plan.suffix
    selector = plan.selector
    is_constant = plan.is_constant
    constant = plan.constant
    expr = plan.expr
    when = plan.when
    trim = plan.trim
    case = _CASES[plan.case] if plan.case else None
    value_map = plan.value_map
    table = plan.table.values if plan.table is not None else None
    table_name = plan.table.name if plan.table is not None else ""
    table_column = f" (key column {plan.table.key_column!r})" if plan.table is not None else ""
    on_miss = plan.on_miss
    default = plan.default
    has_default = default is not _MISSING
    required = plan.required
    convert = plan.convert
    origin = plan.origin
    # An expression on a decimal field computes with the value as a Decimal (read with the
    # field's separators); a value that does not read as one is handed over as it is.
    as_number = (
        number_reader(plan.decimal_sep, plan.thousands)
        if plan.kind == "decimal" and expr is not None
        else None
    )

    def where(record: Record) -> Location:
        return record.where(selector) if selector is not None else record.location

    def problem(record: Record, ctx: _Ctx, parent: str, message: str) -> None:
        pointer = parent + suffix if suffix else None
        ctx.problems.append(DataProblem(message, where(record), pointer))

    def note(
        record: Record,
        ctx: _Ctx,
        parent: str,
        raw: Any,
        value: Any,
        how: str,
        inputs: Sequence[Location] = (),
    ) -> None:
        assert ctx.trace is not None
        pointer = parent + suffix
        ctx.trace[pointer] = Trace(
            pointer,
            value,
            how,
            where(record) if selector is not None else None,
            record.location,
            raw,
            tuple(dict.fromkeys(inputs)),
        )

    def missing(record: Record, ctx: _Ctx, parent: str, raw: Any, why: str) -> Any:
        if required:
            problem(record, ctx, parent, why)
        elif ctx.trace is not None:
            note(record, ctx, parent, raw, None, f"{origin}: empty, omitted")
        return None

    def miss(text: str) -> str:
        """Why ``text`` has no translation: the value map's known keys, or the lookup table
        and its key column, so the consultant knows which row to add where."""
        if value_map is not None:
            known = ", ".join(repr(k) for k in list(value_map)[:8])
            more = f" and {len(value_map) - 8} more" if len(value_map) > 8 else ""
            return f"{text!r} is not in the value map (known: {known}{more})"
        return f"{text!r} not found in lookup table {table_name}{table_column}"

    def translate(record: Record, ctx: _Ctx, parent: str, value: Any) -> Any:
        text = value if isinstance(value, str) else to_string(value)
        translation = value_map if value_map is not None else table
        assert translation is not None
        hit = translation.get(text, _MISSING)
        if hit is not _MISSING:
            return hit
        if on_miss == "passthrough":
            return value
        if on_miss == "default":
            return _MISSING
        problem(record, ctx, parent, miss(text))
        return None

    def passed_through(value: Any) -> str:
        """After a failed conversion: say so when the value is a lookup or map miss kept as
        it is (``on_miss: passthrough``), not a value the partner wrote like that."""
        if on_miss != "passthrough" or (value_map is None and table is None):
            return ""
        text = value if isinstance(value, str) else to_string(value)
        translation = value_map if value_map is not None else table
        assert translation is not None
        if text in translation:
            return ""
        return f" ({miss(text)}; on_miss: passthrough kept it as it is)"

    def build_leaf(record: Record, ctx: _Ctx, parent: str) -> Any:
        if when is not None:
            try:
                if not _truthy(when(record=RecordView(record), records=_Records(ctx.records))):
                    return None
            except ExpressionError as exc:
                problem(record, ctx, parent, str(exc))
                return None
        value = constant if is_constant else record.value(selector) if selector else None
        raw = value
        if trim and value.__class__ is str:
            value = value.strip() or None
        seen: list[Location] = []  # what the expression read, when traced
        if expr is not None:
            if value is not None:
                if as_number is not None:
                    value = as_number(value)
                elif value.__class__ is float:
                    value = exact_number(value)
            try:
                if ctx.trace is None:
                    view, views = RecordView(record), _Records(ctx.records)
                else:  # note what the expression reads, for --explain and refusals
                    view, views = ReadingView(record, seen), _Records(ctx.records, seen)
                value = expr(value=value, record=view, records=views)
            except ExpressionError as exc:
                problem(record, ctx, parent, str(exc))
                return None
            if value == "":
                value = None
        if value is None:
            if has_default:
                if ctx.trace is not None:
                    note(record, ctx, parent, raw, default, f"{origin}: empty, default", seen)
                return default
            why = f"required value missing ({origin} is empty)"
            if not required and ctx.trace is not None:
                note(record, ctx, parent, raw, None, f"{origin}: empty, omitted", seen)
                return None
            return missing(record, ctx, parent, raw, why)
        if is_constant:
            if ctx.trace is not None:
                note(record, ctx, parent, raw, value, origin)
            return value
        if case is not None and value.__class__ is str:
            value = case(value)
        if value_map is not None or table is not None:
            value = translate(record, ctx, parent, value)
            if value is None:
                return None
            if value is _MISSING:
                if ctx.trace is not None:
                    note(record, ctx, parent, raw, default, f"{origin}: not mapped, default")
                return default if has_default else None
        try:
            result = convert(value)
        except ValueError as exc:
            problem(record, ctx, parent, str(exc) + passed_through(value))
            return None
        if ctx.trace is not None:
            note(record, ctx, parent, raw, result, origin, seen)
        return result

    if when is not None or expr is not None or is_constant or selector is None:
        return build_leaf, None
    translation = value_map if table is None else table if value_map is None else None
    if translation is None and (value_map is not None or table is not None):
        return build_leaf, None  # both a map and a lookup: rare, keep the general path
    fast_convert = None if plan.kind == "string" else convert

    def fast_leaf(record: Record, ctx: _Ctx, parent: str) -> Any:
        """The common case (a text cell, present, maybe mapped): no detours."""
        value = record.value(selector)
        if value.__class__ is not str:
            return build_leaf(record, ctx, parent)
        raw = value
        if trim:
            value = value.strip()
            if not value:
                return build_leaf(record, ctx, parent)
        if case is not None:
            value = case(value)
        if translation is not None:
            value = translation.get(value, _MISSING)
            if value.__class__ is not str:
                return build_leaf(record, ctx, parent)  # a miss, or a non-text target value
        if fast_convert is not None:
            try:
                value = fast_convert(value)
            except ValueError as exc:
                problem(record, ctx, parent, str(exc))
                return None
        if ctx.trace is not None:
            note(record, ctx, parent, raw, value, origin)
        return value

    text_only = translation is None or all(v.__class__ is str for v in translation.values())
    plain = plan.plain.fullmatch if plan.plain is not None else None
    steps = (trim, case, translation, fast_convert, plain, plan.decimal_sep)
    return fast_leaf, (selector, steps, text_only)


# A leaf that reads one cell and only trims, cases, translates and converts it:
# (selector, steps, text_only) where steps are (trim, case, translation, converter or None
# for text, plain decimal match or None, decimal separator). For a present value (text, or
# an Excel number or date, which are neither trimmed nor cased), the field's value is
# exactly what the loops in ``_object_builder`` and ``_rows_to_objects`` compute; anything
# else (an empty cell, a miss, a conversion error, tracing) goes through the field's own
# builder. ``text_only`` (no value map to numbers or booleans) lets lists made of such
# objects be built straight from rows (``_RowList``).
_Steps = tuple[
    bool,
    Callable[[str], str] | None,
    Mapping[str, Any] | None,
    Callable[[Any], Any] | None,
    Callable[[str], Any] | None,
    str,
]
_Simple = tuple[str, _Steps, bool]
# An object made only of such leaves: names, selectors, (name, *steps) per field.
_RowPlan = tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[Any, ...], ...]]
# The same object as its parent sees it: its pointer suffix, (name, builder, leaf) per field.
_FlatObject = tuple[str, tuple[tuple[str, Builder, _Simple], ...]]
_NESTED = -2  # a step that opens a child object read from the parent's row
_INDEX_POINTERS = tuple(f"/{i}" for i in range(256))


def _row_reader(selectors: tuple[str, ...]) -> Callable[[Record], Sequence[Any] | None]:
    """The raw values at ``selectors`` in one go (``values_of`` when the record offers it)."""

    def row(record: Record) -> Sequence[Any] | None:
        values_of = getattr(record, "values_of", None)
        if values_of is not None:
            result: Sequence[Any] | None = values_of(selectors)
            return result
        return [record.value(s) for s in selectors]

    return row


def _object_builder(
    children: tuple[tuple[str, Builder], ...],
    simple: Mapping[Builder, _Simple],
    flat: Mapping[Builder, _FlatObject],
    *,
    suffix: str,
    root: bool,
) -> tuple[Builder, _RowPlan | None]:
    """An object's closure. Simple leaves, and those of child objects made only of simple
    leaves (``flat``), are computed in one loop over the record's row.

    An object made only of simple leaves also gets its ``_RowPlan``, for lists of it.
    """

    def build_object(record: Record, ctx: _Ctx, parent: str) -> Any:
        pointer = parent + suffix
        out: dict[str, Any] = {}
        for name, build in children:
            value = build(record, ctx, pointer)
            if value is not None:
                out[name] = value
        if out or root:
            return out
        return None

    selectors: list[str] = []
    plan: list[tuple[Any, ...]] = []
    fields: list[tuple[Any, ...]] = []
    nested_names: list[str] = []
    for name, build in children:
        leaf = simple.get(build)
        inner = flat.get(build)
        if leaf is not None:
            selector, leaf_steps, text_only = leaf
            if text_only:
                fields.append((name, *leaf_steps))
            plan.append((name, build, len(selectors), *leaf_steps, 0, ""))
            selectors.append(selector)
        elif inner is not None:  # an object of simple leaves: read from this row too
            inner_suffix, leaves = inner
            nested_names.append(name)
            slot = len(nested_names)
            plan.append((name, build, _NESTED, False, None, None, None, None, "", slot, ""))
            for leaf_name, leaf_build, (selector, leaf_steps, _) in leaves:
                step = (leaf_name, leaf_build, len(selectors), *leaf_steps, slot, inner_suffix)
                plan.append(step)
                selectors.append(selector)
        else:
            plan.append((name, build, -1, False, None, None, None, None, "", 0, ""))
    if not selectors:
        return build_object, None
    steps = tuple(plan)
    row_of = _row_reader(tuple(selectors))
    nested = tuple(nested_names)

    def build_row_object(record: Record, ctx: _Ctx, parent: str) -> Any:
        if ctx.trace is not None:
            return build_object(record, ctx, parent)
        row = row_of(record)
        if row is None:
            return build_object(record, ctx, parent)
        pointer = parent + suffix
        out: dict[str, Any] = {}
        targets = [out]
        for name, build, index, trim, case, translation, convert, plain, sep, slot, inner in steps:
            if index >= 0:
                value = row[index]
                if value.__class__ is str:
                    if trim:
                        value = value.strip()
                    if value:
                        if case is not None:
                            value = case(value)
                        if translation is not None:
                            value = translation.get(value, _MISSING)
                        if value.__class__ is str:
                            if plain is not None and plain(value):
                                targets[slot][name] = value.replace(sep, ".")
                                continue
                            if convert is None:
                                targets[slot][name] = value
                                continue
                            try:
                                targets[slot][name] = convert(value)
                                continue
                            except ValueError:
                                pass  # the field's builder reports it, with its location
                elif value is not None:  # a number, a date (Excel): no trim, no case
                    if translation is not None:
                        value = translation.get(to_string(value), _MISSING)
                    if value is not _MISSING:
                        try:
                            targets[slot][name] = (convert or to_string)(value)
                            continue
                        except ValueError:
                            pass
                value = build(record, ctx, pointer + inner if inner else pointer)
                if value is not None:
                    targets[slot][name] = value
            elif index == _NESTED:
                target: dict[str, Any] = {}
                out[name] = target
                targets.append(target)
            else:
                value = build(record, ctx, pointer)
                if value is not None:
                    out[name] = value
        if nested:
            for name, target in zip(nested, targets[1:], strict=True):
                if not target:
                    del out[name]  # an object without values is left out
        if out or root:
            return out
        return None

    row_plan = None
    if len(fields) == len(children):
        row_plan = (tuple(name for name, _ in children), tuple(selectors), tuple(fields))
    return build_row_object, row_plan


def _guarded_object(
    inner: Builder, when: Expression | None, *, required: bool, suffix: str
) -> Builder:
    if when is None and not required:
        return inner

    def build(record: Record, ctx: _Ctx, parent: str) -> Any:
        if when is not None:
            try:
                if not _truthy(when(record=RecordView(record), records=_Records(ctx.records))):
                    return None
            except ExpressionError as exc:
                ctx.problems.append(DataProblem(str(exc), record.location, parent + suffix))
                return None
        value = inner(record, ctx, parent)
        if value is None and required:
            message = "required object missing (all its fields are empty)"
            ctx.problems.append(DataProblem(message, record.location, parent + suffix))
        return value

    return build


class _RowList:
    """A list of simple objects computed straight from its items' rows, in one loop without
    a call per field. Its methods return None when any value is not a present text value
    that translates (to text) and converts: the list is then built item by item, which says
    what is wrong and where.
    """

    __slots__ = ("from_rows", "selectors")

    def __init__(self, plan: _RowPlan) -> None:
        _, selectors, fields = plan
        self.selectors = selectors
        self.from_rows = _rows_to_objects(fields)

    def from_records(self, items: Sequence[Record]) -> list[Any] | None:
        """The list made of ``items`` (records that offer ``rows_of`` or ``values_of``)."""
        if not items:
            return None
        selectors = self.selectors
        rows_of = getattr(items[0], "rows_of", None)
        if rows_of is None:
            row_of = _row_reader(selectors)
            rows = [row_of(item) for item in items]
        else:
            rows = rows_of(items, selectors)
        if rows is None or len(rows) != len(items):
            return None
        return self.from_rows(rows)

    def from_children(self, record: Record, each: str, most: int) -> list[Any] | None:
        """The list made of ``record.children(each)``, read without making their records
        (None as well when there are more than ``most``: the builder says so)."""
        child_rows = getattr(record, "child_rows", None)
        if child_rows is None:
            items = record.children(each)
            return self.from_records(items) if len(items) <= most else None
        rows = child_rows(each, self.selectors)
        return self.from_rows(rows) if rows and len(rows) <= most else None


def _rows_to_objects(
    fields: tuple[tuple[Any, ...], ...],
) -> Callable[[list[Any]], list[Any] | None]:
    def by_rows(rows: list[Any]) -> list[Any] | None:
        out: list[Any] = []
        append = out.append
        for row in rows:
            if row is None:
                return None
            item: dict[str, Any] = {}
            for (name, trim, case, translation, convert, plain, sep), value in zip(
                fields, row, strict=False
            ):
                if value.__class__ is not str:
                    if value is None:
                        return None
                    if translation is not None:  # a number, a date (Excel): no trim, no case
                        value = translation.get(to_string(value))
                        if value is None:
                            return None
                    try:
                        item[name] = (convert or to_string)(value)
                    except ValueError:
                        return None
                    continue
                if trim:
                    value = value.strip()
                if not value:
                    return None
                if case is not None:
                    value = case(value)
                if translation is not None:
                    value = translation.get(value)
                    if value is None:
                        return None
                if plain is not None and plain(value):
                    value = value.replace(sep, ".")
                elif convert is not None:
                    try:
                        value = convert(value)
                    except ValueError:
                        return None
                item[name] = value
            append(item)
        return out

    return by_rows


def _list_builder(
    item: Builder,
    each: str,
    when: Expression | None,
    *,
    required: bool,
    suffix: str,
    row_plan: _RowPlan | None = None,
) -> Builder:
    from_records = each == "records"
    by_rows = _RowList(row_plan) if row_plan is not None else None

    def build_list(record: Record, ctx: _Ctx, parent: str) -> Any:
        pointer = parent + suffix
        if by_rows is not None and ctx.trace is None:
            if from_records:
                done = by_rows.from_records(ctx.records)
            else:
                done = by_rows.from_children(record, each, ctx.most)
            if done is not None:
                return done
        items = ctx.records if from_records else record.children(each)
        if len(items) > ctx.most:
            message = (
                f"the list {each!r} has {len(items):,} items, "
                f"{over(ctx.most, 'max_lines_per_document')}; the document is refused"
            )
            ctx.problems.append(DataProblem(message, record.location, pointer))
            return None
        out: list[Any] = []
        for element in items:
            if when is not None:
                try:
                    if not _truthy(when(record=RecordView(element), records=_Records(ctx.records))):
                        continue
                except ExpressionError as exc:
                    ctx.problems.append(DataProblem(str(exc), element.location, pointer))
                    continue
            n = len(out)
            value = item(element, ctx, pointer + (_INDEX_POINTERS[n] if n < 256 else f"/{n}"))
            if value is not None:
                out.append(value)
        if out:
            return out
        if required:
            where = "records" if from_records else repr(each)
            message = f"required list is empty (no {where} with values)"
            ctx.problems.append(DataProblem(message, record.location, pointer))
        return None

    return build_list

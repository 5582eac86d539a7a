"""What an export asks Ecolix for, and what it leaves out itself.

A flow's ``query.filters`` are named after the list's query parameters::

    status: confirmed                                  one value: Ecolix filters
    status: [received, confirmed, prepared]            any of these values
    status: {not: [cancelled, delivered, invoiced]}    none of these values

Ecolix's list parameters take one value each, so several values and exclusions are applied by
the gateway to each record as it streams, on the field the parameter filters (``status``;
``customer_code`` for ``customer``, ...): no extra call, nothing held in memory. The delta
mark still moves over the records left out: they were seen, and one that changes later (a
cancelled order re-opened) comes back with its new ``updated_at``.

Every value is checked against the contract when the configuration loads, so a misspelt
status fails ``edigw config check`` naming the filter and the values the list knows, instead
of silently exporting nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from edigw import suggest
from edigw.ecolix.contract import OperationSpec, load_contract
from edigw.errors import ConfigError

Scalar = str | int | float | bool

EXCLUDE = "not"
"""The key of an exclusion: ``status: {not: [cancelled]}``."""


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """Keep the records whose ``field`` is one of ``values`` (or none of them)."""

    param: str
    field: str
    values: frozenset[str]
    exclude: bool

    def keeps(self, record: Mapping[str, Any]) -> bool:
        return (_text(record.get(self.field)) in self.values) != self.exclude


@dataclass(slots=True)
class QueryPlan:
    """The query parameters sent to Ecolix and the filters applied to what it returns."""

    params: dict[str, Scalar]
    filters: tuple[RecordFilter, ...] = ()
    left_out: int = field(default=0)

    def keep(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The records every filter keeps, counting the others in ``left_out``."""
        filters = self.filters
        if not filters:
            yield from records
            return
        for record in records:
            if all(f.keeps(record) for f in filters):
                yield record
            else:
                self.left_out += 1


def plan_query(resource: str, filters: Mapping[str, Any]) -> QueryPlan:
    """Split ``filters`` into Ecolix parameters and gateway filters; ``ConfigError`` (every
    problem) when a filter is unknown or a value is not one the list knows."""
    problems = filter_problems(resource, filters)
    if problems:
        raise ConfigError(problems[0], problems)
    spec = load_contract().operation(resource)
    params: dict[str, Scalar] = {}
    record_filters: list[RecordFilter] = []
    for name, raw in filters.items():
        values, exclude = _values(raw)
        if len(values) == 1 and not exclude:
            params[name] = values[0]
            continue
        record_filters.append(
            RecordFilter(
                name,
                _record_field(spec, name) or name,
                frozenset(_text(v) for v in values),
                exclude,
            )
        )
    return QueryPlan(params, tuple(record_filters))


def filter_problems(resource: str, filters: Mapping[str, Any]) -> list[str]:
    """Why ``filters`` cannot apply to the list ``resource``, one line per problem, each
    naming the filter (``status: 'closed' is not a value of ...``)."""
    spec = load_contract().operation(resource)
    known = {p.name: p.schema for p in spec.query_params if p.name not in _PAGING}
    problems: list[str] = []
    for name, raw in filters.items():
        if name not in known:
            message = f"{name}: {resource} takes no filter {name!r}"
            problems.append(suggest.unknown(message, name, sorted(known), noun="filters"))
            continue
        try:
            values, exclude = _values(raw)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            continue
        if (len(values) > 1 or exclude) and _record_field(spec, name) is None:
            problems.append(
                f"{name}: several values or {{not: ...}} are applied by edigw to each record, "
                f"but {resource} records have no field for {name!r}"
            )
        allowed = known[name].get("enum")
        if allowed:
            for value in values:
                if _text(value) not in allowed:
                    problems.append(
                        f"{name}: {_text(value)!r} is not a value of {resource}'s {name!r} "
                        f"(one of: {', '.join(allowed)})"
                    )
    return problems


_PAGING = frozenset({"updated_since", "cursor", "limit"})


def _values(raw: Any) -> tuple[list[Scalar], bool]:
    """``(values, exclude)`` of a filter as written; ``ValueError`` saying what is allowed."""
    exclude = False
    if isinstance(raw, Mapping):
        if set(raw) != {EXCLUDE}:
            keys = ", ".join(repr(k) for k in raw)
            msg = f"an exclusion is written {{not: [a, b]}}, not with {keys}"
            raise ValueError(msg)
        raw, exclude = raw[EXCLUDE], True
    values = list(raw) if isinstance(raw, list | tuple) else [raw]
    if not values:
        msg = "give at least one value"
        raise ValueError(msg)
    for value in values:
        if not isinstance(value, str | int | float | bool) or value == "":
            msg = f"{value!r} is not a value: write a text or a number, or a list of them"
            raise ValueError(msg)
    return values, exclude


def _record_field(spec: OperationSpec, name: str) -> str | None:
    """The field of the listed records a query parameter filters on: the parameter's own
    name (``status``, ``warehouse``), else ``<name>_code`` (``customer`` -> ``customer_code``)."""
    props = (spec.item_schema or {}).get("properties", {})
    for candidate in (name, f"{name}_code"):
        if candidate in props:
            return candidate
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)

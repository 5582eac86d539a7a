"""Scopes: the selectors a level of a mapping's source has, as far as anything declares them.

A scope answers two questions for the static checks (``edigw.mapping.checks``): is this
selector there (``problem``), and what do the records of ``each: selector`` hold (``each``)?
Declarations come from the mapping itself (a CSV's ``columns:``, a flat-file layout, the
e-invoice term table) or from sample files (a CSV or Excel header, the elements of an XML
sample). Where nothing declares the records, every selector is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edigw import suggest
from edigw.errors import EdigwError
from edigw.mapping.loader import KeyPath
from edigw.mapping.survey import Level, SurveyError, survey_for

_SIMPLE_STEP = r"(@)?[A-Za-z_][\w.-]*(:[A-Za-z_][\w.-]*)?"

Problem = tuple[KeyPath, str]


class Scope:
    """Every selector is fine, and so is every ``each:`` (nothing is declared)."""

    def problem(self, selector: str, *, optional: bool = False) -> str | None:
        """What is wrong with reading ``selector`` here; ``optional``: the expression
        expects it may be absent (it may then be missing from a sample, not from a header)."""
        return None

    def each(self, selector: str) -> tuple[Scope | None, str | None]:
        return Scope(), None


class Rows(Scope):
    """CSV and Excel rows: named columns (when known), and no nested records."""

    def __init__(self, names: Sequence[str] | None, where: str, fmt: str) -> None:
        self.names = list(names) if names is not None else None
        self.where = where
        self.fmt = fmt

    def problem(self, selector: str, *, optional: bool = False) -> str | None:
        if self.names is None or selector in self.names:
            return None
        return suggest.unknown(
            f"column {selector!r} is not in {self.where}", selector, self.names, noun="columns"
        )

    def each(self, selector: str) -> tuple[Scope | None, str | None]:
        if selector == "records":
            return self, None
        return None, (
            f"{self.fmt} rows have no nested records, so this list would always be empty: "
            "a list of the document's rows is `each: records`"
        )


class Positional(Rows):
    """CSV without a header nor ``columns:``: columns are ``"1"``, ``"2"``, ..."""

    def __init__(self, width: int | None, where: str) -> None:
        super().__init__(None, where, "CSV")
        self.width = width

    def problem(self, selector: str, *, optional: bool = False) -> str | None:
        if selector.isdigit() and int(selector) >= 1:
            if self.width is None or int(selector) <= self.width:
                return None
            return f"column {selector} is past the {self.width} columns of {self.where}"
        return (
            f"column {selector!r}: without a header (header: false) columns are numbered "
            '"1", "2", ...; or name them in source.columns'
        )


class Sampled(Scope):
    """An XML sample's elements below the document element (or a list's items)."""

    def __init__(self, level: Level, where: str) -> None:
        self.level = level
        self.where = where

    def problem(self, selector: str, *, optional: bool = False) -> str | None:
        if optional:
            return None  # an optional element may well be absent from the samples
        path = selector.strip()
        if path.startswith("./"):
            path = path[2:]
        steps = path.split("/")
        if not path or not all(_simple(step) for step in steps):
            return None  # an XPath expression: checked for syntax only
        if any(step.startswith("@") for step in steps[:-1]):
            return None
        if path in self.level.columns or self.level.child(path) is not None:
            return None
        return suggest.unknown(
            f"{selector!r} is no element or attribute of {self.where}",
            selector,
            [*self.level.columns, *self.level.lists],
            noun="paths",
        )

    def each(self, selector: str) -> tuple[Scope | None, str | None]:
        if not all(_simple(step) and not step.startswith("@") for step in selector.split("/")):
            return Scope(), None
        child = self.level.child(selector)
        if child is None:
            return None, suggest.unknown(
                f"{selector!r} is no element of {self.where}",
                selector,
                list(self.level.lists),
                noun="repeated elements",
            )
        return Sampled(child, f"{self.where}/{selector}"), None


class Flat(Scope):
    """A flat-file record type: its layout's fields, and its child record types."""

    def __init__(self, layout: Any, rtype: str) -> None:
        self.layout = layout
        self.rtype = rtype

    def problem(self, selector: str, *, optional: bool = False) -> str | None:
        record = self.layout.records[self.rtype]
        if selector in record.index:
            return None
        here = f"record {self.rtype} of layout {self.layout.name}"
        owners = [t for t, r in self.layout.records.items() if selector in r.index]
        if owners:
            return (
                f"field {selector!r} is not in {here}: it is a field of {', '.join(owners)}; "
                f"read it inside a list `each: {owners[0]}`"
            )
        return suggest.unknown(
            f"field {selector!r} is not in {here}",
            selector,
            [f.name for f in record.fields],
            noun="fields",
        )

    def each(self, selector: str) -> tuple[Scope | None, str | None]:
        if selector == "records":
            return self, None
        rtype = self.layout.resolve(selector)
        kids = [c.record for c in _children_of(self.layout, self.rtype)]
        if rtype in kids:
            return Flat(self.layout, rtype), None
        names = [n for k in kids for n in (k, self.layout.records[k].alias) if n]
        return None, suggest.unknown(
            f"{selector!r} is no record type nested in {self.rtype} (layout {self.layout.name})",
            selector,
            names,
            noun="nested record types",
        )


def _children_of(layout: Any, rtype: str) -> Sequence[Any]:
    def find(children: Sequence[Any]) -> Sequence[Any] | None:
        for child in children:
            if child.record == rtype:
                return child.children  # type: ignore[no-any-return]
            found = find(child.children)
            if found is not None:
                return found
        return None

    if rtype == layout.header:
        return layout.children  # type: ignore[no-any-return]
    return find(layout.children) or ()


class Invoice(Scope):
    """E-invoice business terms at one level (the invoice, or a group's items)."""

    def __init__(self, group: str | None) -> None:
        self.group = group

    def problem(self, selector: str, *, optional: bool = False) -> str | None:
        from edigw.einvoice.model import SelectorError, resolve_term

        try:
            resolve_term(selector, self.group)
        except SelectorError as exc:
            return str(exc)
        return None

    def each(self, selector: str) -> tuple[Scope | None, str | None]:
        from edigw.einvoice.model import SelectorError, resolve_group

        if selector == "records":
            return self, None
        try:
            return Invoice(resolve_group(selector, self.group).id), None
        except SelectorError as exc:
            return None, str(exc)


class Union(Scope):
    """Several samples: a selector is unknown only when no sample has it."""

    def __init__(self, scopes: Sequence[Scope]) -> None:
        self.scopes = list(scopes)

    def problem(self, selector: str, *, optional: bool = False) -> str | None:
        found = [s.problem(selector, optional=optional) for s in self.scopes]
        return None if None in found else found[0]

    def each(self, selector: str) -> tuple[Scope | None, str | None]:
        results = [s.each(selector) for s in self.scopes]
        children = [c for c, _ in results if c is not None]
        if children:
            return Union(children), None
        return None, results[0][1]


def _simple(step: str) -> bool:
    return re.fullmatch(_SIMPLE_STEP, step) is not None


def declared_scope(source: Mapping[str, Any], base: Path) -> Scope:
    """What the mapping's ``source`` block itself declares about the records."""
    kind = source.get("format")
    if kind == "csv":
        if source.get("columns"):
            return Rows(source["columns"], "the columns given in source.columns", "CSV")
        if source.get("header") is False:
            return Positional(None, "the file")
        return Rows(None, "", "CSV")
    if kind == "xlsx":
        return Rows(None, "", "Excel")
    if kind in ("flat-delimited", "flat-fixed"):
        from edigw.formats.layout import load_layout

        try:
            layout = load_layout(source["layout"], base=base)
        except EdigwError:
            return Scope()  # the loader reports the layout's own problems
        return Flat(layout, layout.header)
    if kind == "einvoice":
        return Invoice(None)
    return Scope()


def sample_scope(
    source: Mapping[str, Any], samples: Sequence[Path], base: Path
) -> tuple[Scope | None, list[Problem]]:
    """The scope read from sample files, and the problems reading them as the mapping says."""
    kind = source.get("format")
    if kind not in ("csv", "xlsx", "xml"):
        return None, []  # flat files and e-invoices declare their fields themselves
    scopes: list[Scope] = []
    problems: list[Problem] = []
    for path in samples:
        try:
            survey = survey_for(source, path, base=base)
        except SurveyError as exc:
            problems.append((("source",), f"sample {exc}"))
            continue
        if kind == "xml":
            if not survey.documents:
                from edigw.mapping.survey_xml import XmlSample

                found = XmlSample(path, source.get("namespaces")).document_path()
                problems.append(
                    (
                        ("source", "document_path"),
                        f"matches no element of sample {path.name}; did you mean {found}?",
                    )
                )
                continue
            where = f"sample {path.name} at {source['document_path']}"
            scopes.append(Sampled(survey.top, where))
            continue
        names = list(survey.top.columns)
        where = f"the header of sample {path.name}"
        if kind == "xlsx":
            where = f"the header row {source.get('header_row', 1)} of sample {path.name}"
        if kind == "csv" and len(names) == 1:
            from edigw.mapping.survey import survey_csv

            detected = survey_csv(path).source.get("delimiter", ",")
            if detected != source.get("delimiter", ","):
                problems.append(
                    (
                        ("source", "delimiter") if "delimiter" in source else ("source",),
                        f"sample {path.name} is separated by {detected!r}, not "
                        f"{source.get('delimiter', ',')!r}: set delimiter: {detected!r}",
                    )
                )
        if kind == "csv" and source.get("header") is False and not source.get("columns"):
            scopes.append(Positional(len(names), f"sample {path.name}"))
        else:
            scopes.append(Rows(names, where, "CSV" if kind == "csv" else "Excel"))
    if not scopes:
        return None, problems
    return (scopes[0] if len(scopes) == 1 else Union(scopes)), problems

"""XML reader: one record per element at the mapping's document path, streamed with lxml.

``iterparse`` builds each document element, the reader detaches it from the tree before
handing it over, and nothing keeps it afterwards: a 1 GB feed maps in flat memory.
Field selectors are XPaths relative to the document element, compiled once per mapping;
plain child paths (``o:Lines/o:Line``, ``@currency``) take lxml's faster ``find`` route.

Secure by default: no DTD loading, no entity resolution, no network, no huge trees; no
entity is ever dropped, one value and one document element are bounded by the flow's limits,
control characters are refused by name (``edigw.formats.xml_guard``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lxml import etree

from edigw.errors import DataProblem, MalformedFileError, MappingError
from edigw.formats.limits import DEFAULT_LIMITS, ReaderLimits
from edigw.formats.xml_guard import (
    GuardedXml,
    Refused,
    refuse_dropped_entities,
    refuse_dtd_entities,
    refuse_entity_declarations_in_file,
    syntax_error,
)
from edigw.model import Location

_NAME = r"[A-Za-z_][\w.-]*"
_QNAME = rf"(?:{_NAME}:)?{_NAME}"
_CHILD_PATH = re.compile(rf"{_QNAME}(?:/{_QNAME})*")
_QNAME_RE = re.compile(_QNAME)
_ATTRIBUTE = re.compile(rf"(?:({_QNAME}(?:/{_QNAME})*)/)?@({_QNAME})")

Accessor = Callable[[Any], Any]


class _Paths:
    """Selectors compiled once per reader (so once per mapping load and file)."""

    def __init__(self, namespaces: Mapping[str, str]) -> None:
        self.namespaces = dict(namespaces)
        self.values: dict[str, Accessor] = {}
        self.children: dict[str, Accessor] = {}
        self.rows: dict[tuple[str, ...], Callable[[Any], list[Any]]] = {}

    def qualify(self, name: str) -> str:
        if ":" not in name:
            return name
        prefix, local = name.split(":", 1)
        try:
            return "{" + self.namespaces[prefix] + "}" + local
        except KeyError:
            msg = f"namespace prefix {prefix!r} is not declared in source.namespaces"
            raise ValueError(msg) from None

    def qualify_path(self, path: str) -> str:
        return "/".join(self.qualify(step) for step in path.split("/"))

    def value(self, selector: str) -> Accessor:
        accessor = self.values.get(selector)
        if accessor is None:
            accessor = self.values[selector] = self._compile_value(selector)
        return accessor

    def child(self, selector: str) -> Accessor:
        accessor = self.children.get(selector)
        if accessor is None:
            accessor = self.children[selector] = self._compile_children(selector)
        return accessor

    def row(self, selectors: tuple[str, ...]) -> Callable[[Any], list[Any]]:
        """Raw values of ``selectors`` from one element (as its ``value`` accessors give them,
        '' for an empty element): plain child names are read in a single pass over the
        children, other selectors by their accessors."""
        accessor = self.rows.get(selectors)
        if accessor is None:
            accessor = self.rows[selectors] = self._compile_row(selectors)
        return accessor

    def _compile_row(self, selectors: tuple[str, ...]) -> Callable[[Any], list[Any]]:
        width = len(selectors)
        fill = self._filler(list(enumerate(selectors)))

        def row(el: Any) -> list[Any]:
            out: list[Any] = [None] * width
            fill(el, out)
            return out

        return row

    def _filler(self, items: list[tuple[int, str]]) -> Callable[[Any, list[Any]], None]:
        """Fill ``out[i]`` with the value of each ``(i, selector)``, as ``value`` reads it.

        Child paths (``o:Payment/o:Amount``: the first child of each name, step by step) and
        attributes of the element or of one child (``@id``, ``o:Payment/@method``) are read
        in one pass over the children; other selectors through their own accessor.
        """
        attributes: list[tuple[int, str]] = []
        texts: dict[str, list[int]] = {}
        nested: dict[str, list[tuple[int, str]]] = {}
        others: list[tuple[int, Accessor]] = []
        for i, selector in items:
            attribute = _ATTRIBUTE.fullmatch(selector)
            if _CHILD_PATH.fullmatch(selector):
                first, _, rest = selector.partition("/")
            elif attribute and attribute.group(1) is None:
                attributes.append((i, self.qualify(attribute.group(2))))
                continue
            elif attribute and _QNAME_RE.fullmatch(attribute.group(1)):
                first, rest = attribute.group(1), "@" + attribute.group(2)
            else:
                others.append((i, self.value(selector)))
                continue
            tag = self.qualify(first)
            if rest:
                nested.setdefault(tag, []).append((i, rest))
            else:
                texts.setdefault(tag, []).append(i)
        handlers: dict[str, tuple[tuple[int, ...], Callable[[Any, list[Any]], None] | None]] = {
            tag: (
                tuple(texts.get(tag, ())),
                self._filler(nested[tag]) if tag in nested else None,
            )
            for tag in {**texts, **nested}
        }

        if not (attributes or nested or others) and all(len(t) == 1 for t in texts.values()):
            return self._text_filler({tag: indexes[0] for tag, indexes in texts.items()})

        def fill(el: Any, out: list[Any]) -> None:
            for i, name in attributes:
                out[i] = el.get(name)
            if handlers:
                pending = handlers.copy()
                pop = pending.pop
                for child in el:
                    handler = pop(child.tag, None)
                    if handler is not None:
                        indexes, inner = handler
                        if indexes:
                            text = child.text or ""
                            for i in indexes:
                                out[i] = text
                        if inner is not None:
                            inner(child, out)
                        if not pending:
                            break
            for i, accessor in others:
                out[i] = accessor(el)

        return fill

    @staticmethod
    def _text_filler(positions: dict[str, int]) -> Callable[[Any, list[Any]], None]:
        """``_filler`` for distinct plain child names only (a line's cells)."""
        get = positions.get
        wanted = len(positions)

        def fill(el: Any, out: list[Any]) -> None:
            found = 0
            for child in el:
                i = get(child.tag)
                if i is not None and out[i] is None:
                    out[i] = child.text or ""
                    found += 1
                    if found == wanted:
                        return

        return fill

    def _compile_value(self, selector: str) -> Accessor:
        if selector.startswith("/"):
            msg = (
                f"XPath {selector!r} is absolute; fields are read relative to the document "
                "element (document_path): drop the leading /"
            )
            raise ValueError(msg)
        if _CHILD_PATH.fullmatch(selector):
            steps = [self.qualify(step) for step in selector.split("/")]
            if len(steps) == 1:
                tag = steps[0]

                def child_text(el: Any) -> Any:
                    for child in el.iterchildren(tag):
                        return child.text or ""
                    return None

                return child_text

            def descendant_text(el: Any) -> Any:
                node = el
                for step in steps:
                    for child in node.iterchildren(step):
                        node = child
                        break
                    else:
                        return None
                return node.text or ""

            return descendant_text
        attribute = _ATTRIBUTE.fullmatch(selector)
        if attribute:
            owner, name = attribute.groups()
            qname = self.qualify(name)
            if owner is None:
                return lambda el: el.get(qname)
            owner_path = self.qualify_path(owner)

            def owned(el: Any) -> Any:
                found = el.find(owner_path)
                return None if found is None else found.get(qname)

            return owned
        xpath = self._xpath(selector)

        def evaluate(el: Any) -> Any:
            result = xpath(el)
            if isinstance(result, list):
                if not result:
                    return None
                result = result[0]
            if isinstance(result, etree._Element):
                return "".join(result.itertext())
            if isinstance(result, bool):
                return result
            if isinstance(result, float):
                return int(result) if result.is_integer() else result
            return None if result is None else str(result)

        return evaluate

    def _compile_children(self, selector: str) -> Accessor:
        if selector.startswith("/"):
            msg = f"XPath {selector!r} is absolute; lists are read relative to the document element"
            raise ValueError(msg)
        if _CHILD_PATH.fullmatch(selector):
            # What el.findall(path) returns, in the same order, without ElementPath's detour.
            steps = [self.qualify(step) for step in selector.split("/")]
            if len(steps) == 1:
                tag = steps[0]
                return lambda el: list(el.iterchildren(tag))

            def descendants(el: Any) -> list[Any]:
                level = [el]
                for step in steps:
                    level = [child for node in level for child in node.iterchildren(step)]
                return level

            return descendants
        xpath = self._xpath(selector)

        def elements(el: Any) -> list[Any]:
            result = xpath(el)
            return (
                [r for r in result if isinstance(r, etree._Element)]
                if isinstance(result, list)
                else []
            )

        return elements

    def _xpath(self, selector: str) -> etree.XPath:
        try:
            return etree.XPath(selector, namespaces=self.namespaces, smart_strings=False)
        except etree.XPathSyntaxError as exc:
            msg = f"invalid XPath {selector!r}: {exc}"
            raise ValueError(msg) from exc


class _Shared:
    __slots__ = ("accessors", "name", "paths")

    def __init__(self, name: str, paths: _Paths) -> None:
        self.name = name
        self.paths = paths
        self.accessors = paths.values  # compiled selectors, read directly on the hot path


class XmlRecord:
    """One document element (or a nested element from ``children``).

    Its XPath is ``base[index]`` (``base`` alone without an index), made when a location
    needs it.
    """

    __slots__ = ("_shared", "base", "element", "index")
    problem = None  # no reader-made problem (see edigw.formats): read fast by the engine

    def __init__(self, shared: _Shared, element: Any, base: str, index: int | None = None) -> None:
        self._shared = shared
        self.element = element
        self.base = base
        self.index = index

    @property
    def xpath(self) -> str:
        return self.base if self.index is None else f"{self.base}[{self.index}]"

    @property
    def location(self) -> Location:
        return Location(self._shared.name, line=self.element.sourceline, xpath=self.xpath)

    def value(self, selector: str) -> Any:
        shared = self._shared
        accessor = shared.accessors.get(selector) or shared.paths.value(selector)
        value = accessor(self.element)
        if value.__class__ is str:
            return value or None
        return value

    def values_of(self, selectors: tuple[str, ...]) -> list[Any]:
        """The raw values at ``selectors`` in one go ('' when empty, None when absent)."""
        return self._shared.paths.row(selectors)(self.element)

    def child_rows(self, selector: str, selectors: tuple[str, ...]) -> list[list[Any]]:
        """``values_of(selectors)`` of each of ``children(selector)``, without the records."""
        paths = self._shared.paths
        row = paths.row(selectors)
        return [row(el) for el in paths.child(selector)(self.element)]

    def rows_of(
        self, records: Sequence[XmlRecord], selectors: tuple[str, ...]
    ) -> list[list[Any]] | None:
        """``values_of`` for each of ``records`` (elements of the same file as this one)."""
        row = self._shared.paths.row(selectors)
        try:
            return [row(r.element) for r in records]
        except AttributeError:  # not an XML record
            return None

    def where(self, selector: str) -> Location:
        line = self.element.sourceline
        paths = self._shared.paths
        attribute = _ATTRIBUTE.fullmatch(selector)
        owner = attribute.group(1) if attribute else selector
        try:
            if owner and _CHILD_PATH.fullmatch(owner):
                found = self.element.find(paths.qualify_path(owner))
                if found is not None:
                    line = found.sourceline
        except (ValueError, SyntaxError):
            pass
        return Location(self._shared.name, line=line, xpath=f"{self.xpath}/{selector}")

    def children(self, selector: str) -> Sequence[XmlRecord]:
        elements = self._shared.paths.child(selector)(self.element)
        base = f"{self.xpath}/{selector}"
        shared = self._shared
        return [XmlRecord(shared, el, base, i) for i, el in enumerate(elements, 1)]


class XmlReader:
    """Streams the elements at ``document_path``; selectors are relative XPaths."""

    def __init__(
        self,
        document_path: str,
        namespaces: Mapping[str, str],
        *,
        limits: ReaderLimits = DEFAULT_LIMITS,
    ) -> None:
        self.document_path = document_path
        self.limits = limits
        self._paths = _Paths(namespaces)
        steps = [s for s in document_path.split("/") if s]
        if not steps or not all(re.fullmatch(_QNAME, s) for s in steps):
            msg = f"document_path {document_path!r} must be a plain path like /o:Orders/o:Order"
            raise MappingError(msg)
        try:
            self._tags = [self._paths.qualify(s) for s in steps]
        except ValueError as exc:
            raise MappingError(str(exc)) from exc

    @classmethod
    def from_source(
        cls, source: Mapping[str, Any], *, limits: ReaderLimits = DEFAULT_LIMITS
    ) -> XmlReader:
        return cls(source.get("document_path", "/"), source.get("namespaces", {}), limits=limits)

    def check_selector(self, selector: str) -> str | None:
        """Compile ``selector`` now, so a bad XPath fails the mapping at load time."""
        try:
            self._paths.value(selector)
            self._paths.child(selector)
        except ValueError as exc:
            return str(exc)
        return None

    def records(self, path: Path, *, source_name: str) -> Iterator[XmlRecord]:
        refuse_entity_declarations_in_file(path, source_name)
        shared = _Shared(source_name, self._paths)
        tags = self._tags
        depth = len(tags)
        base = self.document_path.rstrip("/")
        index = 0
        where = Location(source_name)
        etree.clear_error_log()  # this thread's: the parser's messages are read from it
        try:
            with path.open("rb") as raw:
                guarded = GuardedXml(raw, source_name, self.limits)
                context = etree.iterparse(
                    guarded,
                    events=("end",),
                    tag=tags[-1],
                    resolve_entities=False,
                    no_network=True,
                    load_dtd=False,
                    huge_tree=False,
                    remove_comments=True,
                    remove_pis=True,
                )
                for _, element in context:
                    if index == 0:
                        refuse_dtd_entities(element.getroottree(), path, guarded)
                    if context.error_log:
                        refuse_dropped_entities(context.error_log, where)
                    guarded.document_done()
                    if not _at_path(element, tags, depth):
                        continue
                    index += 1
                    parent = element.getparent()
                    if parent is not None:
                        parent.remove(element)  # detached: freed once the engine is done
                    yield XmlRecord(shared, element, base, index)
                if context.root is not None:
                    refuse_dtd_entities(context.root.getroottree(), path, guarded)
                if context.error_log:
                    refuse_dropped_entities(context.error_log, where)
        except Refused as exc:
            raise MalformedFileError(exc.problem) from None
        except etree.XMLSyntaxError as exc:
            raise syntax_error(exc, where) from exc
        except OSError as exc:
            problem = DataProblem(f"cannot read XML: {exc}", Location(source_name))
            raise MalformedFileError(problem) from exc


def _at_path(element: Any, tags: list[str], depth: int) -> bool:
    node = element
    for i in range(depth - 2, -1, -1):
        node = node.getparent()
        if node is None or node.tag != tags[i]:
            return False
    return node.getparent() is None

"""Surveying an XML sample: element and attribute paths below the document element.

Paths use the mapping's prefixes where it declares the namespace, the document's own prefixes
otherwise, and a made-up one for a default namespace (``o:Order`` for ``<Order xmlns=...>``),
so that every path is one a mapping can write. A list is an element found more than once
under one parent (order lines); the document element is the repeated child of the root (a
feed of orders), else the root itself (one document per file).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from edigw.errors import EdigwError
from edigw.mapping.guess import guess
from edigw.mapping.survey import Level, Survey, SurveyError, bounded

XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
_ELEMENT_PATH = re.compile(r"[\w.-]+(:[\w.-]+)?(/[\w.-]+(:[\w.-]+)?)*")


class XmlSample:
    """A parsed XML sample with the prefixes a mapping uses for its namespaces."""

    def __init__(self, path: Path, namespaces: Mapping[str, str] | None = None) -> None:
        from edigw.formats.xml_guard import parse_guarded
        from edigw.model import Location

        self.path = path
        bounded(path)
        try:
            # The XML reader's rules and guards (entities never dropped nor declared).
            self.root = parse_guarded(path.read_bytes(), Location(path.name))
        except OSError as exc:
            msg = f"{path.name}: not readable XML: {exc}"
            raise SurveyError(msg) from exc
        except EdigwError as exc:
            raise SurveyError(str(exc)) from exc
        self.prefixes: dict[str, str] = {uri: p for p, uri in (namespaces or {}).items()}
        for element in self.root.iter():
            for prefix, uri in element.nsmap.items():
                self._prefix_for(uri, prefix)

    def _prefix_for(self, uri: str, wanted: str | None) -> str:
        if uri in self.prefixes:
            return self.prefixes[uri]
        base = wanted or (re.sub(r"[^a-z]", "", _local(self.root.tag)[:1].lower()) or "n")
        prefix, number = base, 1
        while prefix in self.prefixes.values() or prefix == "xml":
            number += 1
            prefix = f"{base}{number}"
        self.prefixes[uri] = prefix
        return prefix

    @property
    def namespaces(self) -> dict[str, str]:
        """Prefix to URI, for the mapping's ``source.namespaces``."""
        return {p: uri for uri, p in self.prefixes.items() if uri != XML_NAMESPACE}

    def name(self, tag: str) -> str:
        """``{uri}Local`` as ``prefix:Local``."""
        if tag.startswith("{"):
            uri, local = tag[1:].split("}", 1)
            return f"{self._prefix_for(uri, None)}:{local}"
        return tag

    def path_of(self, element: Any) -> str:
        steps = []
        while element is not None:
            steps.append(self.name(element.tag))
            element = element.getparent()
        return "/" + "/".join(reversed(steps))

    def documents(self, document_path: str) -> list[Any]:
        """The elements at ``document_path`` (absolute, with this sample's prefixes)."""
        steps = [s for s in document_path.split("/") if s]
        found = [self.root] if steps and self.name(self.root.tag) == steps[0] else []
        for step in steps[1:]:
            found = [c for e in found for c in _elements(e) if self.name(c.tag) == step]
        return found

    def document_path(self) -> str:
        """The repeated element under the root (a feed of orders), else the root."""
        children = _elements(self.root)
        tags = [c.tag for c in children]
        if tags:
            common = max(set(tags), key=tags.count)
            has_children = any(len(c) for c in children if c.tag == common)
            most = tags.count(common) >= 2 and tags.count(common) * 2 >= len(tags)
            if has_children and (most or len(set(tags)) == 1):
                return f"{self.path_of(self.root)}/{self.name(common)}"
        return self.path_of(self.root)

    def level(self, elements: Sequence[Any], name: str) -> Level:
        """Columns (relative element and attribute paths) and lists of ``elements``.

        Lists are the elements found more than once under one parent (order lines), reached
        through elements that are not lists themselves; ``more`` finds any other path.
        """
        values: dict[str, list[Any]] = {}
        nested: set[str] = set()
        repeated: set[str] = set()
        for element in elements:
            self._walk(element, "", values, repeated, nested, inside=False)
        level = Level(name, count=len(elements), more=lambda path: self.below(elements, path))
        for selector, found in values.items():
            column = guess(selector, found, label=selector)
            level.columns[selector] = replace(column, nested=True) if selector in nested else column
        for selector in sorted(repeated, key=lambda s: (s.count("/"), s)):
            if any(selector.startswith(other + "/") for other in repeated):
                continue  # a list inside a list: found from its own level
            child = self.level(self.select(elements, selector), selector)
            child.repeats = True
            level.lists[selector] = child
        return level

    def select(self, elements: Sequence[Any], selector: str) -> list[Any]:
        """The elements at the relative element path ``selector`` below ``elements``."""
        found = list(elements)
        for step in selector.split("/"):
            found = [c for e in found for c in _elements(e) if self.name(c.tag) == step]
        return found

    def below(self, elements: Sequence[Any], selector: str) -> Level | None:
        """The level of the elements at ``selector``; None when it names none."""
        if not _ELEMENT_PATH.fullmatch(selector):
            return None
        found = self.select(elements, selector)
        return self.level(found, selector) if found else None

    def _walk(
        self,
        element: Any,
        prefix: str,
        values: dict[str, list[Any]],
        repeated: set[str],
        nested: set[str],
        *,
        inside: bool,
    ) -> None:
        for attribute, value in element.attrib.items():
            if attribute.startswith(XSI):
                continue
            selector = f"{prefix}@{self.name(attribute)}"
            values.setdefault(selector, []).append(value.strip())
            if inside:
                nested.add(selector)
        children = _elements(element)
        counts: dict[str, int] = {}
        for child in children:
            selector = prefix + self.name(child.tag)
            counts[selector] = counts.get(selector, 0) + 1
        repeated.update(s for s, n in counts.items() if n > 1)
        for child in children:
            selector = prefix + self.name(child.tag)
            is_list = inside or selector in repeated
            if not len(child):
                values.setdefault(selector, []).append((child.text or "").strip() or None)
                if is_list:
                    nested.add(selector)
            self._walk(child, selector + "/", values, repeated, nested, inside=is_list)


def _elements(element: Any) -> list[Any]:
    return [c for c in element if isinstance(c.tag, str)]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def survey_xml(
    path: Path, *, document_path: str | None = None, namespaces: Mapping[str, str] | None = None
) -> Survey:
    """Element and attribute paths of an XML sample, relative to its document element."""
    sample = XmlSample(path, namespaces)
    notes = []
    if document_path is None:
        document_path = sample.document_path()
        why = "the root: one document per file" if document_path.count("/") == 1 else "repeated"
        notes.append(f"document_path {document_path} ({why})")
    documents = sample.documents(document_path)
    top = sample.level(documents, document_path)
    source: dict[str, Any] = {
        "format": "xml",
        "document_path": document_path,
        "namespaces": dict(sorted(sample.namespaces.items())),
    }
    return Survey(path, "xml", source, top, notes, len(documents))

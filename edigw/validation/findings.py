"""Findings: what a layer found, with its rule id and the source line it points at.

The schematron layers answer in SVRL; each ``failed-assert`` or ``successful-report`` is
one finding. Its ``@location`` is an XPath in the skeleton's "full path" form
(``/*:Invoice[namespace-uri()='…'][1]/*:LegalMonetaryTotal[namespace-uri()='…'][1]``),
which lxml's XPath 1.0 cannot evaluate; :func:`resolve` walks it step by step over the
lxml tree of the same bytes to find the element, hence its ``sourceline``, and a readable
path with the document's own prefixes (``/Invoice/cac:LegalMonetaryTotal``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lxml import etree

from edigw.errors import DataProblem
from edigw.model import Location
from edigw.validation.artefacts import Layer

SVRL = "http://purl.oclc.org/dsdl/svrl"
_FAILED = f"{{{SVRL}}}failed-assert"
_REPORT = f"{{{SVRL}}}successful-report"
_TEXT = f"{{{SVRL}}}text"


class Severity(StrEnum):
    """As the rule set flags it (a schematron assertion without a flag is an error)."""

    FATAL = "fatal"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def is_error(self) -> bool:
        return self in (Severity.FATAL, Severity.ERROR)


_FLAGS = {
    "fatal": Severity.FATAL,
    "error": Severity.ERROR,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "information": Severity.INFO,
    "info": Severity.INFO,
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule broken by the invoice.

    ``rule`` is the id people look up (``BR-CO-16``, ``BR-FR-05``, ``UBL-CR-099``, ``XSD``);
    ``assertion`` is the artefact's own id when it differs (``BR-FR-05_BT-22-1``,
    ``FX-SCH-A-000293``). ``location`` is the XPath the SVRL gives (or libxml2's, for the
    XSD); ``path`` the same node written with the document's prefixes; ``line`` its line
    in the XML that was validated (for a Factur-X PDF: in its XML attachment).
    """

    layer: Layer
    rule: str
    severity: Severity
    message: str
    file: str
    line: int | None = None
    path: str | None = None
    location: str | None = None
    assertion: str | None = None

    @property
    def where(self) -> Location:
        return Location(self.file, line=self.line, xpath=self.path or self.location)

    def to_problem(self) -> DataProblem:
        """``invoice.xml:42 /Invoice/cac:LegalMonetaryTotal: [BR-CO-16] Amount due ...``"""
        return DataProblem(f"[{self.rule}] {self.message}", self.where)

    def __str__(self) -> str:
        return str(self.to_problem())


# "[BR-CO-16]-Amount…", "[BR-FR-05/BT-22] : La mention…", "BR-FR-01/BT-1 : L'identifiant…",
# "[CII-SR-474] - An invoice line…", "[PEPPOL-EN16931-R008]-Document MUST…"
_RULE_PREFIX = re.compile(
    r"^\[?(?P<rule>[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)(?:/(?P<term>B[TG]-[0-9]+(?:-[0-9]+)?))?\]?"
    r"\s*[-:]?\s*(?P<rest>.*)$",
    re.DOTALL,
)


def split_rule(text: str, assertion: str | None, fallback: str) -> tuple[str, str]:
    """(rule id, message) from an SVRL text and the assertion's ``@id``.

    The id printed in the text wins: it is the one the specification publishes (the
    Factur-X schematrons number their assertions ``FX-SCH-A-…`` but print ``[BR-CO-15]``;
    BR-FR suffixes the business term, ``BR-FR-05_BT-22-1``). Without either, the artefact's
    name stands in, so that every finding says which rule set produced it.
    """
    message = " ".join(text.split())
    match = _RULE_PREFIX.match(message)
    if match and match.group("rest"):
        rest = match.group("rest")
        term = match.group("term")
        return match.group("rule"), f"{term}: {rest}" if term else rest
    if assertion:
        return assertion.split("_", 1)[0], message
    return fallback, message


def svrl_findings(
    svrl: bytes, *, layer: Layer, fallback_rule: str, doc: Any, file: str
) -> list[Finding]:
    """Every failed assertion and successful report of an SVRL document, located."""
    root = etree.fromstring(svrl, parser=_SVRL_PARSER)
    resolver = _Resolver(doc)
    findings = []
    for node in root.iter(_FAILED, _REPORT):
        text_node = node.find(_TEXT)
        text = "".join(text_node.itertext()) if text_node is not None else ""
        assertion = node.get("id")
        rule, message = split_rule(text, assertion, fallback_rule)
        flag = (node.get("flag") or node.get("role") or "error").strip().lower()
        location = node.get("location")
        line, path = resolver.resolve(location)
        findings.append(
            Finding(
                layer=layer,
                rule=rule,
                severity=_FLAGS.get(flag, Severity.ERROR),
                message=message,
                file=file,
                line=line,
                path=path,
                location=location,
                assertion=assertion if assertion != rule else None,
            )
        )
    return findings


_SVRL_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)

# One step of the skeleton's full path: *:name[namespace-uri()='ns'][n] | name[n] |
# @name | @*[local-name()='name' and namespace-uri()='ns'] | Q{ns}name[n]
_STEP = re.compile(
    r"\*:(?P<local>[^\[/]+)\[namespace-uri\(\)='(?P<ns>[^']*)'\](?:\[(?P<n>\d+)\])?"
    r"|Q\{(?P<qns>[^}]*)\}(?P<qlocal>[^\[/]+)(?:\[(?P<qn>\d+)\])?"
    r"|@\*\[local-name\(\)='(?P<alocal>[^']*)' and namespace-uri\(\)='(?P<ans>[^']*)'\]"
    r"|@(?P<attr>[\w.:-]+)"
    r"|(?P<plain>[\w.-]+)(?:\[(?P<pn>\d+)\])?"
)


def _steps(location: str) -> Iterator[str]:
    """The steps of a path, splitting on "/" outside brackets and quotes (URIs have "/")."""
    depth = 0
    quote = ""
    start = 0
    for i, char in enumerate(location):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "/" and depth == 0:
            if i > start:
                yield location[start:i]
            start = i + 1
    if start < len(location):
        yield location[start:]


class _Resolver:
    """Resolves SVRL locations against one lxml tree; repeated locations are cached."""

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.prefixes = document_prefixes(doc)
        self._cache: dict[str, tuple[int | None, str | None]] = {}

    def resolve(self, location: str | None) -> tuple[int | None, str | None]:
        """(line, readable path) of ``location``; (None, None) when it cannot be walked."""
        if not location:
            return None, None
        cached = self._cache.get(location)
        if cached is None:
            cached = self._cache[location] = self._walk(location)
        return cached

    def _walk(self, location: str) -> tuple[int | None, str | None]:
        element: Any = None
        attribute = ""
        for step in _steps(location):
            match = _STEP.fullmatch(step)
            if match is None or attribute:
                break  # a text() or other step: the element found so far is the place
            if match.group("attr") or match.group("alocal") is not None:
                if element is None:
                    return None, None
                attribute = match.group("attr") or _qualified_attribute(element, match)
                continue
            tag, index = _element_step(match)
            element = self._child(element, tag, index)
            if element is None:
                return None, None
        if element is None:
            return None, None
        path = readable_path(element, self.prefixes)
        return element.sourceline, f"{path}/@{attribute}" if attribute else path

    def _child(self, parent: Any, tag: str, index: int) -> Any:
        if parent is None:
            root = self.doc
            return root if root.tag == tag and index == 1 else None
        for i, child in enumerate(parent.iterchildren(tag), 1):
            if i == index:
                return child
        return None


def _element_step(match: re.Match[str]) -> tuple[str, int]:
    if match.group("local") is not None:
        ns, local, n = match.group("ns"), match.group("local"), match.group("n")
    elif match.group("qlocal") is not None:
        ns, local, n = match.group("qns"), match.group("qlocal"), match.group("qn")
    else:
        ns, local, n = "", match.group("plain"), match.group("pn")
    return (f"{{{ns}}}{local}" if ns else local), int(n or 1)


def _qualified_attribute(element: Any, match: re.Match[str]) -> str:
    ns, local = match.group("ans"), match.group("alocal")
    if not ns:
        return str(local)
    prefix = next((p for p, uri in element.nsmap.items() if uri == ns and p), None)
    return f"{prefix}:{local}" if prefix else f"{{{ns}}}{local}"


def document_prefixes(doc: Any) -> dict[str, str]:
    """namespace → prefix declared on the root, for elements written without a prefix."""
    return {uri: prefix for prefix, uri in doc.nsmap.items() if prefix}


def readable_path(element: Any, prefixes: dict[str, str] | None = None) -> str:
    """``/Invoice/cac:InvoiceLine[2]/cbc:ID``: the document's prefixes (the root's, for an
    element that redeclares its namespace as the default), an index only where siblings
    share the name."""
    steps = []
    node = element
    while node is not None:
        qname = etree.QName(node)
        prefix = node.prefix
        if prefix is None and prefixes and node.getparent() is not None:
            prefix = prefixes.get(qname.namespace or "")
        name = f"{prefix}:{qname.localname}" if prefix else qname.localname
        parent = node.getparent()
        if parent is not None:
            same = list(parent.iterchildren(node.tag))
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        steps.append(name)
        node = parent
    return "/" + "/".join(reversed(steps))


_CLARK = re.compile(r"\{([^}]*)\}([\w.-]+)")


def xsd_findings(error_log: Any, *, doc: Any, file: str) -> list[Finding]:
    """libxml2's schema errors as findings: its line, and a readable path when found."""
    prefixes = document_prefixes(doc)
    namespaces = {p: uri for p, uri in doc.nsmap.items() if p}
    tree = doc.getroottree()
    findings = []
    for entry in error_log:
        raw_path = entry.path or None
        path = raw_path
        if raw_path:
            try:
                nodes = tree.xpath(raw_path, namespaces=namespaces)
            except etree.XPathError:
                nodes = []
            if nodes and isinstance(nodes[0], etree._Element):
                path = readable_path(nodes[0], prefixes)
        message = _CLARK.sub(lambda m: _prefixed(m, prefixes), entry.message)
        findings.append(
            Finding(
                layer=Layer.XSD,
                rule="XSD",
                severity=Severity.WARNING if entry.level_name == "WARNING" else Severity.ERROR,
                message=message,
                file=file,
                line=entry.line or None,
                path=path,
                location=raw_path,
                assertion=entry.type_name,
            )
        )
    return findings


def _prefixed(match: re.Match[str], prefixes: dict[str, str]) -> str:
    prefix = prefixes.get(match.group(1))
    return f"{prefix}:{match.group(2)}" if prefix else match.group(2)

"""The e-invoice reader: one record per invoice on the EN 16931 semantic model.

Registered as source format ``einvoice`` (``edigw.formats.READERS``): a mapping says
``source: {format: einvoice}`` and its fields read business terms, whatever the syntax::

    number: {from: BT-1}                      # or: from: number
    payable: {from: totals.payable, type: decimal}
    lines:
      each: lines                             # BG-25, one record per line
      fields:
        net_amount: {from: line.net_amount, type: decimal}

The file is detected (``edigw.einvoice.detect``), then read through the term table
(``edigw.einvoice.terms``). Values are the document's text with one meaning across
syntaxes: dates as ISO ``YYYY-MM-DD`` (CII's format 102 converted), amounts, quantities
and rates as written (signs included: a credit note's amounts keep the sign the document
gives them; ``document_kind`` tells a credit note from an invoice, from BT-3 or UBL's
CreditNote root). ``where(selector)`` names the file, the PDF attachment, the XML line, the
XPath of the node that gave the value and the business term, which ``mapping test
--explain`` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lxml import etree

from edigw.einvoice.detect import DEFAULT_LIMITS, Detected, Limits, Syntax, detect
from edigw.einvoice.model import (
    INDEX,
    Identifier,
    SelectorError,
    check,
    date_text,
    resolve_group,
    resolve_term,
    siren_of,
    siret_of,
)
from edigw.einvoice.terms import CREDIT_NOTE_TYPES, NAMESPACES, Group, Kind, Term
from edigw.errors import DataProblem, MalformedFileError, MappingError
from edigw.model import Location

_PREFIXES = {uri: prefix for prefix, uri in NAMESPACES.items()}
_NUMERIC = (Kind.AMOUNT, Kind.QUANTITY, Kind.PERCENT)


class _Document:
    """What the records of one invoice share: the detection, names, compiled XPaths."""

    __slots__ = ("detected", "name", "part", "paths", "ubl")

    def __init__(self, detected: Detected, name: str, paths: _Paths) -> None:
        self.detected = detected
        self.name = name
        self.part = detected.attachment
        self.ubl = detected.syntax.is_ubl
        self.paths = paths

    def path_of(self, term: Term | Group) -> str | None:
        return term.ubl if self.ubl else term.cii


class _Paths:
    """XPaths compiled on first use, once per reader (lxml XPath objects stay in one thread)."""

    def __init__(self) -> None:
        self._compiled: dict[str, etree.XPath] = {}

    def nodes(self, path: str, element: Any) -> list[Any]:
        xpath = self._compiled.get(path)
        if xpath is None:
            xpath = self._compiled[path] = etree.XPath(path, namespaces=dict(NAMESPACES))
        result = xpath(element)
        return result if isinstance(result, list) else [result]


class InvoiceRecord:
    """The invoice, or one item of a repeating group (a line, a VAT breakdown, ...)."""

    __slots__ = ("_doc", "element", "group", "xpath")

    def __init__(self, doc: _Document, element: Any, group: Group | None, xpath: str) -> None:
        self._doc = doc
        self.element = element
        self.group = group
        self.xpath = xpath

    @property
    def detected(self) -> Detected:
        return self._doc.detected

    @property
    def location(self) -> Location:
        doc = self._doc
        term = None if self.group is None else f"{self.group.id} {self.group.alias}"
        return Location(
            doc.name, line=self.element.sourceline, xpath=self.xpath, part=doc.part, term=term
        )

    # -- the Record protocol ---------------------------------------------------------

    def value(self, selector: str) -> Any:
        term = self._term(selector)
        if term.kind is Kind.DERIVED:
            return self._derived(term)[0]
        node = self._first(term)
        return None if node is None else self._text(term, node)

    def where(self, selector: str) -> Location:
        term = self._term(selector)
        doc = self._doc
        if term.kind is Kind.DERIVED:
            node, label = self._derived(term)[1:]
        else:
            node, label = self._first(term), term.label
        if node is None:
            path = self._path(term)
            # Where it would be; each alternative of a union (cbc:DueDate|...) in full.
            xpath = " | ".join(f"{self.xpath}/{p}" for p in path.split("|")) if path else self.xpath
            return Location(
                doc.name, line=self.element.sourceline, xpath=xpath, part=doc.part, term=label
            )
        owner = node.getparent() if _is_attribute(node) else node
        xpath = _render(owner)
        if _is_attribute(node):
            xpath += f"/@{node.attrname}"
        return Location(doc.name, line=owner.sourceline, xpath=xpath, part=doc.part, term=label)

    def children(self, selector: str) -> Sequence[InvoiceRecord]:
        try:
            group = resolve_group(selector, None if self.group is None else self.group.id)
        except SelectorError as exc:
            raise MappingError(str(exc)) from exc
        doc = self._doc
        path = doc.path_of(group)
        if path is None:
            return []
        elements = [e for e in doc.paths.nodes(path, self.element) if _is_element(e)]
        return [InvoiceRecord(doc, e, group, _render(e)) for e in elements]

    # -- internals -------------------------------------------------------------------

    def _term(self, selector: str) -> Term:
        try:
            return resolve_term(selector, None if self.group is None else self.group.id)
        except SelectorError as exc:
            raise MappingError(str(exc)) from exc

    def _path(self, term: Term) -> str | None:
        if term.attribute_of is not None:
            base = INDEX.terms_by_alias[term.attribute_of[0]]
            path = self._doc.path_of(base)
            return None if path is None else f"{path}/@{term.attribute_of[1]}"
        return self._doc.path_of(term)

    def _nodes(self, term: Term) -> list[Any]:
        if term.attribute_of is not None:
            alias, attribute = term.attribute_of
            base = self._first(INDEX.terms_by_alias[alias])
            if base is None or _is_attribute(base) or base.get(attribute) is None:
                return []
            return base.xpath(f"@{attribute}")  # type: ignore[no-any-return]
        path = self._doc.path_of(term)
        if path is None:
            return []
        return self._doc.paths.nodes(path, self.element)

    def _first(self, term: Term) -> Any:
        nodes = self._nodes(term)
        return nodes[0] if nodes else None

    def _text(self, term: Term, node: Any) -> str | None:
        if _is_attribute(node):
            text = str(node).strip()
        elif _is_element(node):
            text = "".join(node.itertext()).strip()
        else:
            text = str(node).strip()
        if not text:
            return None
        if term.kind is Kind.DATE and not self._doc.ubl:
            return date_text(text, node.get("format") if _is_element(node) else None)
        return text

    def _derived(self, term: Term) -> tuple[Any, Any, str]:
        """(value, node it comes from, label for locations) of a derived term."""
        compute = _DERIVED.get(term.alias)
        if compute is None:  # pragma: no cover - every DERIVED row has a function
            msg = f"no computation for derived term {term.alias!r}"
            raise MappingError(msg)
        return compute(self)

    def _identifiers(self, party: str) -> list[Identifier]:
        found: list[Identifier] = []
        for alias in (f"{party}.legal_id", f"{party}.id", f"{party}.electronic_address"):
            for node in self._nodes(INDEX.terms_by_alias[alias]):
                if not _is_element(node):
                    continue
                text = "".join(node.itertext()).strip()
                if text:
                    found.append(Identifier(alias, text, node.get("schemeID"), node))
        return found

    def _party_siren(self, party: str) -> tuple[Any, Any, str]:
        vat_node = self._first(INDEX.terms_by_alias[f"{party}.vat_id"])
        vat = None
        if vat_node is not None and _is_element(vat_node):
            vat = Identifier(
                f"{party}.vat_id", "".join(vat_node.itertext()).strip(), None, vat_node
            )
        country = self.value(f"{party}.address.country")
        hit = siren_of(self._identifiers(party), vat, country)
        if hit is None:
            return None, None, f"{party}.siren"
        siren, source = hit
        return siren, source.node, f"{party}.siren (from {_label(source.alias)})"

    def _party_siret(self, party: str) -> tuple[Any, Any, str]:
        country = self.value(f"{party}.address.country")
        hit = siret_of(self._identifiers(party), country)
        if hit is None:
            return None, None, f"{party}.siret"
        return "".join(hit.value.split()), hit.node, f"{party}.siret (from {_label(hit.alias)})"


def _label(alias: str) -> str:
    return INDEX.terms_by_alias[alias].label


def _document_kind(record: InvoiceRecord) -> tuple[Any, Any, str]:
    type_term = INDEX.terms_by_alias["type_code"]
    node = record._first(type_term)
    code = None if node is None else record._text(type_term, node)
    credit = code in CREDIT_NOTE_TYPES or (
        code is None and record.detected.syntax is Syntax.UBL_CREDIT_NOTE
    )
    return ("credit_note" if credit else "invoice"), node, "document_kind (from BT-3)"


_DERIVED: Mapping[str, Callable[[InvoiceRecord], tuple[Any, Any, str]]] = {
    "profile": lambda r: (r.detected.profile.value, None, "profile (from BT-24)"),
    "syntax": lambda r: (r.detected.syntax.value, None, "syntax"),
    "document_kind": _document_kind,
    "seller.siren": lambda r: r._party_siren("seller"),
    "seller.siret": lambda r: r._party_siret("seller"),
    "buyer.siren": lambda r: r._party_siren("buyer"),
    "buyer.siret": lambda r: r._party_siret("buyer"),
}


def _is_element(node: Any) -> bool:
    return isinstance(node, etree._Element)


def _is_attribute(node: Any) -> bool:
    return bool(getattr(node, "is_attribute", False))


def _render(element: Any) -> str:
    """The element's absolute XPath with the usual prefixes (cbc:, ram:), indexed when it
    has same-named siblings: what a person finds in the file."""
    steps: list[str] = []
    node = element
    while node is not None:
        qname = etree.QName(node)
        prefix = _PREFIXES.get(qname.namespace or "")
        step = f"{prefix}:{qname.localname}" if prefix else qname.localname
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent.iterchildren(node.tag)]
            if len(same) > 1:
                step += f"[{same.index(node) + 1}]"
        steps.append(step)
        node = parent
    return "/" + "/".join(reversed(steps))


class EinvoiceReader:
    """Reads one e-invoice file (UBL, CII, Factur-X PDF) as one record."""

    def __init__(self, *, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self._paths = _Paths()

    @classmethod
    def from_source(cls, source: Mapping[str, Any]) -> EinvoiceReader:
        return cls()

    def check_selector(self, selector: str) -> str | None:
        """A selector must name a business term or group (BT-/BG- id or alias)."""
        return check(selector)

    def records(self, path: Path, *, source_name: str) -> Iterator[InvoiceRecord]:
        yield self.read(_read_bytes(path, source_name, self.limits), source_name=source_name)

    def read(self, data: bytes, *, source_name: str) -> InvoiceRecord:
        """The invoice record of ``data`` (a whole file)."""
        detected = detect(data, name=source_name, limits=self.limits)
        return self.record_of(detected, source_name=source_name)

    def record_of(self, detected: Detected, *, source_name: str) -> InvoiceRecord:
        """The invoice record of an already detected file (validation layers share it)."""
        doc = _Document(detected, source_name, self._paths)
        root = detected.root
        return InvoiceRecord(doc, root, None, _render(root))


def _read_bytes(path: Path, source_name: str, limits: Limits) -> bytes:
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            msg = (
                f"the file is {size:,} bytes, more than the {limits.max_file_bytes:,} an "
                "e-invoice may have here; ask the sender what it is"
            )
            raise MalformedFileError(DataProblem(msg, Location(source_name)))
        return path.read_bytes()
    except OSError as exc:
        problem = DataProblem(f"cannot read the file: {exc}", Location(source_name))
        raise MalformedFileError(problem) from exc

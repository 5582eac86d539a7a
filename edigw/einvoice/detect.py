"""Which e-invoice a file is, from its content alone, never from its name.

``detect(data, name=...) -> Detected`` is a pure function (bytes in, value out, no I/O): the
reader calls it, and so can the validation layers. It recognises:

- UBL 2.1 ``Invoice`` and ``CreditNote`` (OASIS namespaces);
- UN/CEFACT ``CrossIndustryInvoice`` (CII D16B and D22B share one namespace, ``:100``);
- Factur-X / ZUGFeRD 2.x PDFs: the CII is taken from the PDF's attachment named
  ``factur-x.xml``, ``zugferd-invoice.xml`` or ``xrechnung.xml`` (the names the standards
  fix); the PDF itself stays the archived original;

and the profile from the specification identifier BT-24 (``Profile``). Anything else raises
``NotAnInvoiceError`` whose message names what was found (an Order-X order, a CDAR status
message, a UBL order, ZUGFeRD 1.0, a PDF without an invoice attachment, HTML, ...) and whose
``found`` is a stable key for code; a file that cannot be read at all raises
``MalformedFileError``. Never an empty success.

Hostile input: the XML is parsed with the rules and guards of the XML reader
(``edigw.formats.xml_guard.parse_guarded``: no DTD loading, no entity expansion, no network, no
huge trees; a DTD declaring entities is refused in any encoding and after any prolog, and an
entity reference the parser cannot expand is an error, never dropped).
Sizes are bounded (``Limits``): the file, and the XML (standalone or attached, checked on the
PDF's declared size first and enforced while pypdf inflates the stream, so a "zip bomb"
attachment stops at the limit).

PDF extraction uses pypdf directly rather than the ``factur-x`` package's
``get_xml_from_pdf``: that helper (built on pypdf itself) logs and returns ``(False, False)``
when it finds nothing, so it cannot say *what* the PDF held (ZUGFeRD 1.0, an Order-X, a PDF
with other attachments); it runs an XSD check as a side effect by default (validation is a
layer of its own here, with located findings); and it has no size bounds. The names it looks
for are the same.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from edigw.errors import DataProblem, MalformedFileError, NotAnInvoiceError
from edigw.model import Location

UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
UBL_PREFIX = "urn:oasis:names:specification:ubl:schema:xsd:"
CII = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
_ZUGFERD_1 = "urn:ferd:CrossIndustryDocument:invoice:1p0"
_ORDER_X = "urn:un:unece:uncefact:data:SCRDMCCBDACIOMessageStructure:100"
_CDAR = "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100"

# The attachment names Factur-X 1.0, ZUGFeRD 2.x and XRechnung fix, in order of preference.
INVOICE_ATTACHMENTS = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")
_ORDER_ATTACHMENT = "order-x.xml"

_PDF_HEADER_WINDOW = 1024  # PDF readers accept junk before %PDF- within the first KiB
MAX_FILE_BYTES = 50 * 1024 * 1024  # a PDF with its pictures
MAX_XML_BYTES = (
    20 * 1024 * 1024
)  # an invoice XML, standalone or attached (a 10,000-line CII is ~15 MB)


class Syntax(StrEnum):
    UBL_INVOICE = "UBL 2.1 Invoice"
    UBL_CREDIT_NOTE = "UBL 2.1 CreditNote"
    CII = "UN/CEFACT CII"

    @property
    def is_ubl(self) -> bool:
        return self is not Syntax.CII


class Profile(StrEnum):
    """The profile a document claims in BT-24 (specification identifier)."""

    MINIMUM = "MINIMUM"
    BASIC_WL = "BASIC WL"
    BASIC = "BASIC"
    EN16931 = "EN 16931"
    EXTENDED = "EXTENDED"
    EXTENDED_CTC_FR = "EXTENDED-CTC-FR"
    XRECHNUNG = "XRechnung"
    PEPPOL_BIS = "PEPPOL BIS"
    OTHER = "other"  # no BT-24, or one that claims no EN 16931 conformance

    @property
    def has_lines(self) -> bool:
        """MINIMUM and BASIC WL invoices carry no lines (header-only invoices)."""
        return self not in (Profile.MINIMUM, Profile.BASIC_WL)


@dataclass(frozen=True, slots=True)
class Limits:
    """Size bounds for one file; the defaults suit any real invoice."""

    max_file_bytes: int = MAX_FILE_BYTES
    max_xml_bytes: int = MAX_XML_BYTES


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Detected:
    """What a file is. ``xml`` is the invoice XML (the attachment's bytes for a PDF).

    ``root`` is the parsed document (lxml), kept so that the reader and the validation
    layers need not parse it again; it is not part of equality.
    """

    syntax: Syntax
    profile: Profile
    guideline: str | None  # BT-24 exactly as written, None when absent
    xml: bytes
    container: str  # "xml" or "pdf"
    attachment: str | None = None  # the PDF attachment's name
    root: Any = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        """One line for people, e.g. ``Factur-X PDF (factur-x.xml): UN/CEFACT CII, BASIC``."""
        head = f"PDF ({self.attachment}): " if self.container == "pdf" else ""
        return f"{head}{self.syntax.value}, profile {self.profile.value}"


def detect(data: bytes, *, name: str = "", limits: Limits = DEFAULT_LIMITS) -> Detected:
    """The syntax and profile of ``data`` (a whole file); ``name`` is only for messages."""
    where = Location(name)
    if len(data) > limits.max_file_bytes:
        msg = (
            f"the file is {len(data):,} bytes, more than the {limits.max_file_bytes:,} an "
            "e-invoice may have here; ask the sender what it is"
        )
        raise _error(
            msg,
            where,
        )
    head = data[:_PDF_HEADER_WINDOW]
    if b"%PDF-" in head:
        return _from_pdf(data, where, limits)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        msg = "the file is empty: there is no invoice in it"
        raise _error(msg, where)
    if text.startswith(b"PK\x03\x04"):
        msg = "a ZIP archive, not an e-invoice (send the invoices unzipped)"
        raise _not_invoice(msg, where, "zip")
    lowered = text[:64].lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        msg = "an HTML page, not an e-invoice"
        raise _not_invoice(msg, where, "html")
    if not text.startswith(b"<"):
        shown = text[:16].decode("latin-1").encode("unicode_escape").decode("ascii")
        msg = f"neither XML nor PDF (it starts with {shown!r}): not an e-invoice"
        raise _not_invoice(msg, where, "unknown")
    root = _parse(data, where, limits)
    return _classify(root, data, where, container="xml", attachment=None)


def profile_of(guideline: str | None) -> Profile:
    """The profile named by a BT-24 value (Factur-X, ZUGFeRD 2.x, XRechnung, PEPPOL BIS)."""
    if not guideline:
        return Profile.OTHER
    text = guideline.strip().lower()
    en16931 = text.startswith("urn:cen.eu:en16931:2017")
    if "extended-ctc-fr" in text:
        return Profile.EXTENDED_CTC_FR
    if en16931 and "xrechnung" in text:
        return Profile.XRECHNUNG
    if en16931 and "peppol.eu" in text:
        return Profile.PEPPOL_BIS  # BIS Billing 3.0; BIS 2 (cenbii) predates EN 16931
    for suffix, profile in (
        (":minimum", Profile.MINIMUM),
        (":basicwl", Profile.BASIC_WL),
        (":basic", Profile.BASIC),
        (":extended", Profile.EXTENDED),
    ):
        if text.endswith(suffix) and ("factur-x.eu" in text or "zugferd.de" in text):
            return profile
    if en16931:
        return Profile.EN16931
    return Profile.OTHER


# -- XML -------------------------------------------------------------------------------


def _parse(xml: bytes, where: Location, limits: Limits) -> Any:
    if len(xml) > limits.max_xml_bytes:
        msg = (
            f"the invoice XML is {len(xml):,} bytes, more than the {limits.max_xml_bytes:,} "
            "allowed; ask the sender what it is"
        )
        raise _error(
            msg,
            where,
        )
    # lxml (4 MB) at the first invoice read: a gateway imports this module for its types
    from edigw.formats.xml_guard import parse_guarded

    return parse_guarded(xml, where)


def _classify(
    root: Any, xml: bytes, where: Location, *, container: str, attachment: str | None
) -> Detected:
    from lxml import etree  # see _parse

    qname = etree.QName(root)
    ns, local = qname.namespace or "", qname.localname
    at = Location(where.file, line=root.sourceline, part=where.part)
    if ns == UBL_INVOICE and local == "Invoice":
        syntax = Syntax.UBL_INVOICE
        guideline = _text(root.find(f"{{{_CBC}}}CustomizationID"))
    elif ns == UBL_CREDIT_NOTE and local == "CreditNote":
        syntax = Syntax.UBL_CREDIT_NOTE
        guideline = _text(root.find(f"{{{_CBC}}}CustomizationID"))
    elif ns == CII and local == "CrossIndustryInvoice":
        syntax = Syntax.CII
        guideline = _text(
            root.find(
                f"{{{CII}}}ExchangedDocumentContext/{{{_RAM}}}GuidelineSpecifiedDocumentContextParameter/{{{_RAM}}}ID"
            )
        )
    else:
        found, what = _what_else(ns, local)
        raise _not_invoice(what, at, found)
    return Detected(
        syntax=syntax,
        profile=profile_of(guideline),
        guideline=guideline,
        xml=xml,
        container=container,
        attachment=attachment,
        root=root,
    )


_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"


def _text(element: Any) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip() or None


def _what_else(ns: str, local: str) -> tuple[str, str]:
    """(found key, message) for an XML root that is no invoice."""
    if ns == _ZUGFERD_1:
        return "zugferd-1", (
            "a ZUGFeRD 1.0 invoice (CrossIndustryDocument, urn:ferd:...:1p0): the old version, "
            "before EN 16931, which the French reform does not accept; ask the supplier for "
            "Factur-X / ZUGFeRD 2.x"
        )
    if ns == _ORDER_X:
        return "order-x", (
            "an Order-X order (SCRDMCCBDACIOMessageStructure), not an invoice: orders go to an "
            "orders flow"
        )
    if ns == _CDAR or local == "CrossDomainAcknowledgementAndResponse":
        return "cdar", (
            "a CDAR status message (CrossDomainAcknowledgementAndResponse): an invoice "
            "lifecycle status, not an invoice"
        )
    if ns.startswith(UBL_PREFIX):
        return f"ubl-{local.lower()}", (
            f"a UBL {local}, not an invoice or credit note (UBL Invoice / CreditNote expected)"
        )
    if local == "FatturaElettronica":
        return "fatturapa", (
            "an Italian FatturaPA invoice (FatturaElettronica): not an EN 16931 syntax; only "
            "UBL 2.1, CII and Factur-X/ZUGFeRD 2.x are read"
        )
    if local.lower() == "html":
        return "html", "an HTML page, not an e-invoice"
    shown = f"<{local}> in namespace {ns}" if ns else f"<{local}> without a namespace"
    return "unknown-xml", f"an XML document {shown}: not a UBL or CII invoice"


def _error(message: str, where: Location) -> MalformedFileError:
    return MalformedFileError(DataProblem(message, where))


def _not_invoice(message: str, where: Location, found: str) -> NotAnInvoiceError:
    return NotAnInvoiceError(DataProblem(message, where), found=found)


# -- PDF -------------------------------------------------------------------------------


def _from_pdf(data: bytes, where: Location, limits: Limits) -> Detected:
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PyPdfError

    cap = limits.max_xml_bytes + 1
    try:
        with apply_configuration(
            zlib_maximum_output_length=cap,
            lzw_maximum_output_length=cap,
            run_length_maximum_output_length=cap,
            brotli_maximum_output_length=cap,
            array_based_stream_maximum_output_length=cap,
            maximum_declared_stream_length=limits.max_file_bytes,
        ):
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                msg = (
                    "the PDF is encrypted: its attachments cannot be read; ask the supplier "
                    "for an unprotected Factur-X PDF"
                )
                raise _error(
                    msg,
                    where,
                )
            files = list(reader.attachment_list)
            names = [f.name for f in files]
            chosen = None
            for wanted in (*INVOICE_ATTACHMENTS, _ORDER_ATTACHMENT):
                chosen = next((f for f in files if f.name.lower() == wanted), None)
                if chosen is not None:
                    break
            if chosen is None:
                listed = ", ".join(repr(n) for n in names) if names else "none"
                msg = (
                    "a PDF without an invoice attachment (attachments: "
                    f"{listed}; a Factur-X / ZUGFeRD PDF attaches factur-x.xml, "
                    "zugferd-invoice.xml or xrechnung.xml): a plain PDF is not an e-invoice"
                )
                raise _not_invoice(
                    msg,
                    where,
                    "pdf-without-invoice",
                )
            assert chosen is not None
            part = Location(where.file, part=chosen.name)
            declared = chosen.size
            if declared is not None and int(declared) > limits.max_xml_bytes:
                msg = (
                    f"the PDF's {chosen.name} declares {int(declared):,} bytes, more than the "
                    f"{limits.max_xml_bytes:,} allowed"
                )
                raise _error(
                    msg,
                    part,
                )
            xml = chosen.content
    except LimitReachedError as exc:
        msg = (
            f"the PDF holds a stream that inflates past the {limits.max_xml_bytes:,}-byte limit "
            f"(refused, a decompression bomb is likely): {exc}"
        )
        raise _error(
            msg,
            where,
        ) from exc
    except FileNotDecryptedError as exc:
        msg = f"the PDF is encrypted: {exc}"
        raise _error(msg, where) from exc
    except (
        PyPdfError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        NotImplementedError,  # a stream filter pypdf does not know (found by fuzzing)
        zlib.error,
    ) as exc:
        msg = f"the PDF cannot be read ({type(exc).__name__}: {exc})"
        raise _error(msg, where) from exc
    except RecursionError as exc:
        msg = "the PDF's object structure is nested too deep to read"
        raise _error(msg, where) from exc
    root = _parse(xml, part, limits)
    if chosen.name.lower() == _ORDER_ATTACHMENT:
        msg = "an Order-X PDF (order-x.xml attached): an order, not an invoice"
        raise _not_invoice(msg, part, "order-x")
    return _classify(root, xml, part, container="pdf", attachment=chosen.name)

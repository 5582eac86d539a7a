"""Detection of e-invoices from their content: syntaxes, profiles, what is not an invoice,
and hostile files."""

from __future__ import annotations

import codecs
import io
import zlib
from pathlib import Path

import pytest
from pypdf import PdfWriter

from edigw.einvoice.detect import Limits, Profile, Syntax, detect, profile_of
from edigw.errors import MalformedFileError, NotAnInvoiceError

CORPUS = Path(__file__).resolve().parent.parent / "samples" / "einvoices"
CII_EN16931 = CORPUS / "ferd" / "zugferd_2p3_EN16931_Einfach.xml"


def pdf_with(*attachments: tuple[str, bytes]) -> bytes:
    """A one-page PDF carrying ``attachments`` (name, bytes), as pypdf writes them."""
    writer = PdfWriter()
    writer.add_blank_page(72, 72)
    for name, content in attachments:
        writer.add_attachment(name, content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_with_deflated(name: str, content: bytes) -> bytes:
    """A PDF written by hand whose one attachment is a FlateDecode stream (no declared size)."""
    packed = zlib.compress(content, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [("
        + name.encode()
        + b") 4 0 R] >> >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>",
        b"<< /Type /Filespec /F (" + name.encode() + b") /EF << /F 5 0 R >> >>",
        b"<< /Type /EmbeddedFile /Filter /FlateDecode /Length %d >>\nstream\n" % len(packed)
        + packed
        + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.mark.parametrize(
    ("name", "syntax", "profile", "attachment"),
    [
        pytest.param(
            "oasis/UBL-Invoice-2.1-Example.xml",
            Syntax.UBL_INVOICE,
            Profile.OTHER,
            None,
            id="ubl-invoice",
        ),
        pytest.param(
            "cen/ubl-tc434-creditnote1.xml",
            Syntax.UBL_CREDIT_NOTE,
            Profile.PEPPOL_BIS,
            None,
            id="ubl-credit-note",
        ),
        pytest.param(
            "factur-x/ubl-21-extended-ctc-fr.xml",
            Syntax.UBL_INVOICE,
            Profile.EXTENDED_CTC_FR,
            None,
            id="ubl-ctc-fr",
        ),
        pytest.param(
            "erechnung-core/de-standard-19.xml",
            Syntax.UBL_INVOICE,
            Profile.XRECHNUNG,
            None,
            id="ubl-xrechnung",
        ),
        pytest.param(
            "factur-x/factur-x-minimum.xml", Syntax.CII, Profile.MINIMUM, None, id="cii-minimum"
        ),
        pytest.param(
            "ferd/zugferd_2p3_BASIC-WL_Einfach.xml",
            Syntax.CII,
            Profile.BASIC_WL,
            None,
            id="cii-basic-wl",
        ),
        pytest.param(
            "ferd/zugferd_2p3_BASIC_Einfach.xml", Syntax.CII, Profile.BASIC, None, id="cii-basic"
        ),
        pytest.param(
            "ferd/zugferd_2p3_EN16931_Einfach.xml",
            Syntax.CII,
            Profile.EN16931,
            None,
            id="cii-en16931",
        ),
        pytest.param(
            "ferd/zugferd_2p3_EXTENDED_Warenrechnung.xml",
            Syntax.CII,
            Profile.EXTENDED,
            None,
            id="cii-extended",
        ),
        pytest.param(
            "ferd/zugferd_2p3_XRECHNUNG_Einfach.xml",
            Syntax.CII,
            Profile.XRECHNUNG,
            None,
            id="cii-xrechnung",
        ),
        pytest.param(
            "fnfe-mpe/Facture_FR_BASICWL.pdf",
            Syntax.CII,
            Profile.BASIC_WL,
            "factur-x.xml",
            id="factur-x-pdf",
        ),
        pytest.param(
            "ferd/multiple.pdf",
            Syntax.CII,
            Profile.EN16931,
            "factur-x.xml",
            id="pdf-with-two-attachments",
        ),
    ],
)
def test_the_syntax_and_profile_come_from_the_content(
    name: str, syntax: Syntax, profile: Profile, attachment: str | None
) -> None:
    found = detect((CORPUS / name).read_bytes(), name="whatever.bin")
    assert (found.syntax, found.profile, found.attachment) == (syntax, profile, attachment)
    assert found.container == ("pdf" if attachment else "xml")


def test_the_file_name_plays_no_part() -> None:
    data = CII_EN16931.read_bytes()
    assert detect(data, name="order.pdf") == detect(data, name="invoice.xml")


def test_a_pdf_gives_the_attached_xml_itself() -> None:
    xml = CII_EN16931.read_bytes()
    found = detect(pdf_with(("factur-x.xml", xml)), name="f.pdf")
    assert found.xml == xml


@pytest.mark.parametrize(
    "attachment", ["zugferd-invoice.xml", "ZUGFeRD-invoice.xml", "xrechnung.xml"]
)
def test_the_other_standard_attachment_names_are_read(attachment: str) -> None:
    found = detect(pdf_with((attachment, CII_EN16931.read_bytes())), name="f.pdf")
    assert found.attachment == attachment
    assert found.syntax is Syntax.CII


@pytest.mark.parametrize(
    ("guideline", "profile"),
    [
        ("urn:factur-x.eu:1p0:minimum", Profile.MINIMUM),
        ("urn:factur-x.eu:1p0:basicwl", Profile.BASIC_WL),
        ("urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic", Profile.BASIC),
        ("urn:cen.eu:en16931:2017", Profile.EN16931),
        ("urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended", Profile.EXTENDED),
        ("urn:cen.eu:en16931:2017#conformant#urn:zugferd.de:2p0:extended", Profile.EXTENDED),
        (
            "urn:cen.eu:en16931:2017#conformant#urn.cpro.gouv.fr:1p0:extended-ctc-fr",
            Profile.EXTENDED_CTC_FR,
        ),
        (
            "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0",
            Profile.XRECHNUNG,
        ),
        (
            "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0",
            Profile.PEPPOL_BIS,
        ),
        (
            "urn:www.cenbii.eu:transaction:biitrns010:ver2.0:extended:urn:www.peppol.eu:bis:peppol5a:ver2.0",
            Profile.OTHER,
        ),
        (None, Profile.OTHER),
    ],
)
def test_the_profile_is_named_by_bt_24(guideline: str | None, profile: Profile) -> None:
    assert profile_of(guideline) is profile


# -- what is not an invoice ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "found", "words"),
    [
        pytest.param(b"<html><body>Login</body></html>", "html", "HTML page", id="html"),
        pytest.param(b"PK\x03\x04rest", "zip", "ZIP archive", id="zip"),
        pytest.param(b"Invoice 42, total 12.00", "unknown", "neither XML nor PDF", id="text"),
        pytest.param(
            b'<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"/>',
            "ubl-order",
            "a UBL Order",
            id="ubl-order",
        ),
        pytest.param(
            b'<ApplicationResponse xmlns="urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2"/>',
            "ubl-applicationresponse",
            "a UBL ApplicationResponse",
            id="ubl-application-response",
        ),
        pytest.param(
            b"<invoice><total>1</total></invoice>",
            "unknown-xml",
            "<invoice> without a namespace",
            id="home-made-xml",
        ),
    ],
)
def test_something_else_is_named(data: bytes, found: str, words: str) -> None:
    with pytest.raises(NotAnInvoiceError) as caught:
        detect(data, name="in.xml")
    assert caught.value.found == found
    assert words in str(caught.value)


def test_an_order_x_pdf_is_named_an_order() -> None:
    order = (CORPUS / "not-invoices" / "order-x-basic.xml").read_bytes()
    with pytest.raises(NotAnInvoiceError) as caught:
        detect(pdf_with(("order-x.xml", order)), name="po.pdf")
    assert caught.value.found == "order-x"
    assert str(caught.value).startswith("po.pdf!order-x.xml: an Order-X PDF")


def test_a_zugferd_1_pdf_is_named_the_old_version_at_its_line() -> None:
    with pytest.raises(NotAnInvoiceError) as caught:
        detect(
            (CORPUS / "not-invoices" / "ZUGFeRD_1p0_COMFORT_Rabatte.pdf").read_bytes(), name="z.pdf"
        )
    assert str(caught.value).startswith("z.pdf!ZUGFeRD-invoice.xml:47: a ZUGFeRD 1.0 invoice")
    assert "the old version" in str(caught.value)


def test_a_pdf_with_other_attachments_lists_them() -> None:
    with pytest.raises(NotAnInvoiceError) as caught:
        detect(pdf_with(("delivery-note.pdf", b"%PDF-1.4"), ("notes.txt", b"hi")), name="p.pdf")
    assert caught.value.found == "pdf-without-invoice"
    assert "attachments: 'delivery-note.pdf', 'notes.txt'" in str(caught.value)


# -- hostile and broken files ------------------------------------------------------------


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(MalformedFileError, match="the file is empty"):
        detect(b"\xef\xbb\xbf \n", name="e.xml")


def test_entity_declarations_are_refused_before_parsing() -> None:
    bomb = (
        b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        b' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
        b"<Invoice>&lol2;</Invoice>"
    )
    with pytest.raises(MalformedFileError) as caught:
        detect(bomb, name="bomb.xml")
    assert str(caught.value).startswith("bomb.xml:3: the XML declares entities")


def test_an_external_entity_is_refused_inside_a_pdf_too() -> None:
    xxe = b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<x>&xxe;</x>'
    with pytest.raises(MalformedFileError) as caught:
        detect(pdf_with(("factur-x.xml", xxe)), name="x.pdf")
    assert str(caught.value).startswith("x.pdf!factur-x.xml:2: the XML declares entities")


def cii(declared: str, prolog: str, doctype: str) -> str:
    """The corpus CII with ``prolog`` and ``doctype`` after its XML declaration, and the
    entity reference ``&xxe;`` in its number (BT-1)."""
    text = CII_EN16931.read_text(encoding="utf-8")
    body = text[text.index("\n") + 1 :].replace("<ram:ID>471102<", "<ram:ID>471102&xxe;<", 1)
    return f"<?xml version='1.0' encoding='{declared}'?>\n{prolog}{doctype}{body}"


ENTITY_DTD = '<!DOCTYPE rsm:CrossIndustryInvoice [\n<!ENTITY xxe "-2">\n]>\n'
LONG_COMMENT = "<!-- " + "é" * 70_000 + " -->\n"


@pytest.mark.parametrize(
    ("data", "line"),
    [
        pytest.param(cii("UTF-8", "", ENTITY_DTD).encode("utf-8"), 3, id="utf-8"),
        pytest.param(
            cii("UTF-8", LONG_COMMENT, ENTITY_DTD).encode("utf-8"), 4, id="after-a-70k-comment"
        ),
        pytest.param(
            cii("ISO-8859-1", LONG_COMMENT, ENTITY_DTD).encode("latin-1", "xmlcharrefreplace"),
            4,
            id="latin-1-after-a-70k-comment",
        ),
    ],
)
def test_entity_declarations_are_refused_in_any_position(data: bytes, line: int) -> None:
    """Before: the e-invoice detection looked for them in the first 64 KB of bytes only, so
    after a long comment the invoice was read with ``471102&xxe;`` as ``471102``."""
    with pytest.raises(MalformedFileError) as caught:
        detect(data, name="inv.xml")
    assert str(caught.value).startswith(f"inv.xml:{line}: the XML declares entities in its DTD")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            codecs.BOM_UTF16_LE + cii("UTF-16", "", ENTITY_DTD).encode("utf-16-le"),
            id="utf-16-le-bom",
        ),
        pytest.param(
            codecs.BOM_UTF16_BE + cii("UTF-16", "", ENTITY_DTD).encode("utf-16-be"),
            id="utf-16-be-bom",
        ),
        pytest.param(cii("UTF-16", "", ENTITY_DTD).encode("utf-16-le"), id="utf-16-le-no-bom"),
        pytest.param(cii("UTF-16", "", ENTITY_DTD).encode("utf-16-be"), id="utf-16-be-no-bom"),
    ],
)
def test_entity_declarations_in_a_utf16_attachment_are_refused(data: bytes) -> None:
    """Before: in UTF-16 the byte scan found no ``<!ENTITY`` and the attached invoice was read
    with ``471102&xxe;`` as ``471102``."""
    with pytest.raises(MalformedFileError) as caught:
        detect(pdf_with(("factur-x.xml", data)), name="x.pdf")
    assert str(caught.value).startswith("x.pdf!factur-x.xml:3: the XML declares entities")


def test_an_entity_it_cannot_expand_is_an_error_in_an_invoice_never_dropped() -> None:
    xml = cii("UTF-8", "", '<!DOCTYPE rsm:CrossIndustryInvoice SYSTEM "cii.dtd">\n')
    line = xml[: xml.index("&xxe;")].count("\n") + 1
    with pytest.raises(MalformedFileError) as caught:
        detect(pdf_with(("factur-x.xml", xml.encode())), name="x.pdf")
    assert str(caught.value).startswith(
        f"x.pdf!factur-x.xml:{line}:24: the entity reference &xxe; is not defined here"
    )


def test_truncated_xml_is_malformed_at_its_line() -> None:
    data = CII_EN16931.read_bytes()[:2000]
    with pytest.raises(MalformedFileError) as caught:
        detect(data, name="cut.xml")
    assert str(caught.value).startswith("cut.xml:")
    assert "malformed XML" in str(caught.value)


def test_a_file_over_the_size_limit_is_refused() -> None:
    with pytest.raises(MalformedFileError, match="more than the 1,000 an e-invoice may have"):
        detect(CII_EN16931.read_bytes(), name="big.xml", limits=Limits(max_file_bytes=1_000))


def test_a_deflated_attachment_is_read() -> None:
    found = detect(pdf_with_deflated("factur-x.xml", CII_EN16931.read_bytes()), name="d.pdf")
    assert found.xml == CII_EN16931.read_bytes()


def test_a_compressed_attachment_inflating_past_the_limit_is_refused() -> None:
    bomb = b"<a>" + b" " * 5_000_000 + b"</a>"
    data = pdf_with_deflated("factur-x.xml", bomb)
    assert len(data) < 100_000  # small on disk: the danger is in inflating it
    with pytest.raises(MalformedFileError, match="inflates past the 1,000,000-byte limit"):
        detect(data, name="bomb.pdf", limits=Limits(max_xml_bytes=1_000_000))


def test_an_uncompressed_attachment_over_the_limit_is_refused() -> None:
    data = pdf_with(("factur-x.xml", b"<a>" + b" " * 20_000 + b"</a>"))
    with pytest.raises(MalformedFileError, match="more than the 10,000 allowed"):
        detect(data, name="big.pdf", limits=Limits(max_xml_bytes=10_000))


def test_an_encrypted_pdf_is_refused_with_the_reason() -> None:
    writer = PdfWriter()
    writer.add_blank_page(72, 72)
    writer.add_attachment("factur-x.xml", CII_EN16931.read_bytes())
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(MalformedFileError, match="the PDF is encrypted"):
        detect(out.getvalue(), name="locked.pdf")


def test_a_broken_pdf_is_malformed_not_a_crash() -> None:
    with pytest.raises(MalformedFileError, match="the PDF cannot be read"):
        detect(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\n%%EOF", name="broken.pdf")


@pytest.mark.parametrize(
    ("filter_name", "raised"),
    [
        pytest.param(b"/Bogus", "NotImplementedError", id="unknown-filter"),
        pytest.param(b"0.0", "NotImplementedError", id="a-number-as-filter"),
    ],
)
def test_an_attachment_the_pdf_library_cannot_decode_is_malformed_not_a_crash(
    filter_name: bytes, raised: str
) -> None:
    """Found by benchmarks/fuzz_readers.py: pypdf's NotImplementedError escaped the reader."""
    pdf = pdf_with_deflated("factur-x.xml", CII_EN16931.read_bytes())
    pdf = pdf.replace(b"/Filter /FlateDecode", b"/Filter " + filter_name, 1)
    with pytest.raises(MalformedFileError) as caught:
        detect(pdf, name="f.pdf")
    assert str(caught.value).startswith(f"f.pdf: the PDF cannot be read ({raised}")

"""XML: no entity is ever dropped, in any encoding, after any prolog; and the limits that
keep one element from costing the gateway its memory are explicit and located."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from edigw.errors import MalformedFileError
from edigw.formats.limits import ReaderLimits
from edigw.formats.xml import XmlReader

ENTITY_REFUSAL = (
    "the XML declares entities in its DTD; edigw refuses them (entity-expansion bombs). "
    "Ask the partner to send the file without a DOCTYPE"
)
BODY = "<Orders>\n<Order><Number>XU-1&xxe;</Number></Order>\n</Orders>\n"


def numbers(path: Path, limits: ReaderLimits | None = None) -> list[str]:
    reader = XmlReader("/Orders/Order", {}, limits=limits or ReaderLimits())
    return [r.value("Number") for r in reader.records(path, source_name=path.name)]


def refusal(path: Path, limits: ReaderLimits | None = None) -> str:
    with pytest.raises(MalformedFileError) as caught:
        numbers(path, limits)
    return str(caught.value)


def document(declaration: str, prolog: str, encoding: str, *, bom: bytes = b"") -> bytes:
    text = f'<?xml version="1.0" encoding="{declaration}"?>\n{prolog}' + (
        '<!DOCTYPE Orders [\n<!ENTITY xxe "-2">\n]>\n' + BODY
    )
    return bom + text.encode(encoding)


LONG_COMMENT = "<!-- " + "é" * 70_000 + " -->\n"
LONG_PI = "<?generator " + "x" * 70_000 + "?>\n"


@pytest.mark.parametrize(
    ("data", "line"),
    [
        pytest.param(document("UTF-8", "", "utf-8"), 3, id="utf-8"),
        pytest.param(
            document("UTF-16", "", "utf-16-le", bom=codecs.BOM_UTF16_LE), 3, id="utf-16-le-bom"
        ),
        pytest.param(
            document("UTF-16", "", "utf-16-be", bom=codecs.BOM_UTF16_BE), 3, id="utf-16-be-bom"
        ),
        pytest.param(document("UTF-16", "", "utf-16-le"), 3, id="utf-16-le-no-bom"),
        pytest.param(document("UTF-16", "", "utf-16-be"), 3, id="utf-16-be-no-bom"),
        pytest.param(document("ISO-8859-1", "", "latin-1"), 3, id="latin-1-declared"),
        pytest.param(document("UTF-8", LONG_COMMENT, "utf-8"), 4, id="after-a-70k-comment"),
        pytest.param(
            document("ISO-8859-1", LONG_COMMENT, "latin-1"), 4, id="latin-1-after-comment"
        ),
        pytest.param(document("UTF-8", LONG_PI, "utf-8"), 4, id="after-a-long-pi"),
        pytest.param(
            document("UTF-16", LONG_PI, "utf-16-le", bom=codecs.BOM_UTF16_LE),
            4,
            id="utf-16-after-a-long-pi",
        ),
    ],
)
def test_a_dtd_declaring_entities_is_refused_in_any_encoding_and_position(
    tmp_path: Path, data: bytes, line: int
) -> None:
    """Before: in UTF-16, or after 64 KB of prolog, the refusal was bypassed and
    ``XU-1&xxe;`` was read as ``XU-1``."""
    path = tmp_path / "orders.xml"
    path.write_bytes(data)
    assert refusal(path) == f"orders.xml:{line}: {ENTITY_REFUSAL}"


def test_a_parameter_entity_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "orders.xml"
    path.write_text(
        "<?xml version='1.0'?>\n<!-- " + "x" * 70_000 + " -->\n<!DOCTYPE Orders [\n"
        '<!ENTITY % pe "x">\n]>\n' + BODY.replace("&xxe;", "")
    )
    assert refusal(path) == f"orders.xml:4: {ENTITY_REFUSAL}"


@pytest.mark.parametrize(
    ("doctype", "at"),
    [
        pytest.param("", "2:25", id="no-dtd"),
        pytest.param('<!DOCTYPE Orders SYSTEM "orders.dtd">\n', "3:25", id="external-dtd"),
    ],
)
def test_an_undefined_entity_in_a_text_is_an_error_never_removed(
    tmp_path: Path, doctype: str, at: str
) -> None:
    path = tmp_path / "orders.xml"
    path.write_text(doctype + BODY)
    assert refusal(path) == (
        f"orders.xml:{at}: the entity reference &xxe; is not defined here (edigw neither "
        "loads DTDs nor drops what it cannot expand): ask the partner to write the character "
        "itself, or only &amp; &lt; &gt; &quot; &apos; and &#...; references"
    )


def test_an_undefined_entity_in_an_attribute_is_an_error_never_removed(tmp_path: Path) -> None:
    """libxml2 drops it from the attribute value with only a warning."""
    path = tmp_path / "orders.xml"
    path.write_text(
        '<!DOCTYPE Orders SYSTEM "orders.dtd">\n<Orders>\n'
        '<Order ref="XU-1&yyy;"><Number>1</Number></Order>\n</Orders>\n'
    )
    assert refusal(path).startswith("orders.xml:3:22: the entity reference &yyy; is not defined")


def test_predefined_entities_and_character_references_are_read(tmp_path: Path) -> None:
    path = tmp_path / "orders.xml"
    path.write_text("<Orders><Order><Number>A&amp;B &#233;&#x20AC;</Number></Order></Orders>")
    assert numbers(path) == ["A&B é€"]


def test_an_external_dtd_without_entities_is_accepted(tmp_path: Path) -> None:
    """cXML and other feeds name an external DTD: it is neither fetched nor held against
    the file."""
    path = tmp_path / "orders.xml"
    path.write_text(
        '<!DOCTYPE Orders SYSTEM "http://example.invalid/orders.dtd">\n' + BODY.replace("&xxe;", "")
    )
    assert numbers(path) == ["XU-1"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("A\x00B", "orders.xml:2:17: control character U+0000 (NUL)", id="nul"),
        pytest.param(
            "A\x0cB", "orders.xml:2:17: control character U+000C (FF, form feed)", id="ff"
        ),
        pytest.param("A&#1;B", "orders.xml:2:21: control character U+0001 (SOH)", id="reference"),
    ],
)
def test_control_characters_are_refused_named_and_located(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "orders.xml"
    path.write_bytes(BODY.replace("XU-1&xxe;", text).encode())
    message = refusal(path)
    assert message.startswith(expected)
    assert message.endswith(
        ": XML 1.0 forbids it (the flow's control_characters setting cannot admit it in XML)"
    )


def test_nesting_deeper_than_256_levels_is_refused_and_located(tmp_path: Path) -> None:
    path = tmp_path / "orders.xml"
    path.write_text("<Orders>\n<Order>" + "<a>" * 300 + "</a>" * 300 + "</Order></Orders>")
    assert refusal(path) == (
        "orders.xml:2:772: elements nested deeper than 256 levels, edigw's XML limit"
    )


def test_a_text_over_the_value_limit_is_refused_before_it_is_built(tmp_path: Path) -> None:
    path = tmp_path / "orders.xml"
    path.write_text("<Orders>\n<Order>\n<Number>" + "9" * 5000 + "</Number></Order></Orders>")
    assert refusal(path, ReaderLimits(max_value_chars=1000)) == (
        "orders.xml:3: a text or attribute value of more than 1,000 characters, over the "
        "limit of 1,000 (limits.max_value_chars)"
    )


def test_an_attribute_over_the_value_limit_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "orders.xml"
    path.write_text('<Orders>\n<Order ref="' + "9" * 5000 + '"><Number>1</Number></Order></Orders>')
    assert refusal(path, ReaderLimits(max_value_chars=1000)).startswith(
        "orders.xml:2: a text or attribute value of more than 1,000 characters"
    )


def test_a_document_element_over_the_size_limit_is_refused_before_it_is_built(
    tmp_path: Path,
) -> None:
    lines = "".join(f"<Line><Sku>S{i}</Sku></Line>\n" for i in range(20_000))
    path = tmp_path / "orders.xml"
    path.write_text(
        "<Orders>\n<Order><Number>1</Number></Order>\n"
        f"<Order><Number>2</Number>\n{lines}</Order>\n</Orders>\n"
    )
    message = refusal(path, ReaderLimits(max_document_bytes=100_000))
    line = int(message.split(":")[1])
    assert 3 < line < 20_000  # inside the second order, where reading stopped
    assert message.endswith(
        ": a document element (with what precedes it) has grown over 100,000 bytes by this "
        "line, over the limit of 100,000 (limits.max_document_bytes); it is refused before "
        "it is built"
    )


def test_many_small_documents_are_not_held_against_the_document_limit(tmp_path: Path) -> None:
    orders = "".join(f"<Order><Number>{i}</Number></Order>\n" for i in range(20_000))
    path = tmp_path / "orders.xml"
    path.write_text(f"<Orders>\n{orders}</Orders>\n")
    assert len(numbers(path, ReaderLimits(max_document_bytes=100_000))) == 20_000


def test_a_document_element_of_too_many_tags_is_refused_before_it_is_built(
    tmp_path: Path,
) -> None:
    """Tiny elements cost the tree far more than their bytes: ``<a/>`` is 4 bytes, and a
    few hundred in memory."""
    path = tmp_path / "orders.xml"
    path.write_text(
        "<Orders>\n<Order><Number>1</Number>\n" + "<a/>\n" * 50_000 + "</Order></Orders>"
    )
    message = refusal(path, ReaderLimits(max_document_tags=10_000))
    assert message.endswith(
        ": a document element (with what precedes it) has grown over 10,000 tags by this "
        "line, over the limit of 10,000 (limits.max_document_tags); it is refused before it "
        "is built"
    )

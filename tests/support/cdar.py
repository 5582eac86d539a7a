"""Check a CDAR lifecycle message as the platform would: the CDAR D22B XSD (lxml), then the
French BR-FR-CDV rules (the vendored schematron XSLT, run with saxonche)."""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

SCHEMAS = Path(__file__).resolve().parents[2] / "templates" / "schemas" / "cdar"
XSD = SCHEMAS / "CrossDomainAcknowledgementAndResponse_100pD22B.xsd"
RULES = SCHEMAS / "BR-FR-CDV-Schematron-CDAR.xslt"
SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}


@functools.cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def xsd_errors(path: Path) -> list[str]:
    schema = _schema()
    schema.validate(etree.parse(str(path)))
    return [f"{e.line}: {e.message}" for e in schema.error_log]


def rule_failures(path: Path) -> list[str]:
    """The BR-FR-CDV rules the message breaks, as ``id: text`` (empty when it keeps them)."""
    from saxonche import PySaxonProcessor

    with PySaxonProcessor(license=False) as proc:
        xslt = proc.new_xslt30_processor()
        executable = xslt.compile_stylesheet(stylesheet_file=str(RULES))
        report = executable.transform_to_string(source_file=str(path))
    root = etree.fromstring(report.encode("utf-8"))
    fired = root.xpath("//svrl:fired-rule", namespaces=SVRL)
    assert fired, "the rules never ran on the message (wrong namespace?)"
    return [
        f"{a.get('id')}: {' '.join(a.xpath('string(svrl:text)', namespaces=SVRL).split())}"
        for a in root.xpath("//svrl:failed-assert", namespaces=SVRL)
    ]


def value(path: Path, xpath: str) -> list[str]:
    return [str(v) for v in etree.parse(str(path)).xpath(xpath, namespaces=NS)]

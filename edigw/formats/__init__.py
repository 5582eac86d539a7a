"""Readers: bytes to records, streaming, each record with its source Location.

The mapping engine picks a reader by the mapping's ``source.format`` from ``READERS``, a
read-only registry of factories. Each factory takes the (schema-validated) ``source`` block
and the flow's budget (``edigw.formats.limits.ReaderLimits``) and returns a ``Reader``
(``edigw.model.Reader``) that keeps within it: a file over a limit is a
``MalformedFileError`` naming the file, the place, the size and the limit. To add a format: write
``edigw/formats/<name>.py`` with a reader whose records implement ``edigw.model.Record``,
add one entry below, and one ``$defs/source_<name>`` entry in ``edigw/mapping/schema.json``.

A reader may also offer ``check_selector(selector) -> str | None`` (an error message, or
None when fine): the mapping loader then rejects bad XPaths or unknown layout fields at
load time rather than on the first file.

Records may offer shortcuts that the engine uses when present (speed only: without them it
calls ``value`` per field). Each gives the raw values ``value`` would give, except that an
empty text stays ``''``, or None when it cannot answer (``value`` then says what is wrong):
``values_of(selectors)`` (one record), ``rows_of(records, selectors)`` (``values_of`` of
each record of the same file) and ``child_rows(selector, selectors)`` (``values_of`` of each
of ``children(selector)``, without making their records).

A record may carry ``problem`` (a ``DataProblem``, else None): a reader that refused to hold
a document over ``max_lines_per_document`` (flat files) marks its first record so, and the
engine fails that document with it instead of mapping it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from edigw.errors import MappingError
from edigw.formats.limits import DEFAULT_LIMITS, ReaderLimits
from edigw.model import Reader

ReaderFactory = Callable[[Mapping[str, Any], ReaderLimits], Reader]


def _csv(source: Mapping[str, Any], limits: ReaderLimits) -> Reader:
    from edigw.formats.csv import CsvReader

    return CsvReader.from_source(source, limits=limits)


def _xml(source: Mapping[str, Any], limits: ReaderLimits) -> Reader:
    from edigw.formats.xml import XmlReader

    return XmlReader.from_source(source, limits=limits)


def _xlsx(source: Mapping[str, Any], limits: ReaderLimits) -> Reader:
    from edigw.formats.xlsx import XlsxReader

    return XlsxReader.from_source(source, limits=limits)


def _flat_delimited(source: Mapping[str, Any], limits: ReaderLimits) -> Reader:
    from edigw.formats.delimited_records import DelimitedRecordsReader

    return DelimitedRecordsReader.from_source(source, limits=limits)


def _flat_fixed(source: Mapping[str, Any], limits: ReaderLimits) -> Reader:
    from edigw.formats.fixed_width import FixedWidthReader

    return FixedWidthReader.from_source(source, limits=limits)


def _einvoice(source: Mapping[str, Any], limits: ReaderLimits) -> Reader:
    # An e-invoice is read whole, within its own size bounds (edigw.einvoice.detect.Limits)
    # and the XML reader's entity guards; the flow's limits bound it through the engine
    # (max_lines_per_document, max_seconds). XML 1.0 itself forbids control characters.
    from edigw.einvoice.reader import EinvoiceReader

    return EinvoiceReader.from_source(source)


READERS: Mapping[str, ReaderFactory] = MappingProxyType(
    {
        "csv": _csv,
        "xml": _xml,
        "xlsx": _xlsx,
        "flat-delimited": _flat_delimited,
        "flat-fixed": _flat_fixed,
        "einvoice": _einvoice,
    }
)


def reader_for(source: Mapping[str, Any], limits: ReaderLimits = DEFAULT_LIMITS) -> Reader:
    """The reader for a mapping's ``source`` block (``format`` picks it), within ``limits``."""
    name = source.get("format")
    factory = READERS.get(str(name))
    if factory is None:
        msg = f"unknown source format {name!r} (known: {', '.join(sorted(READERS))})"
        raise MappingError(msg)
    return factory(source, limits)

"""What one file may cost a reader: the per-flow budget that keeps a hostile file from
taking the gateway down.

A partner file is data from outside. A few of its bytes can ask for a great deal: one Excel
cell at ``XFD1048576`` makes the Excel library allocate 512 GiB, a line of 50 million
separators becomes a list of 50 million cells, one order of 200,000 lines builds a payload of
almost a gigabyte. Each limit below caps one such amplifier. A file that goes over one fails
alone, as a whole-file error naming the file, the place, the size found and the limit (and
the key to raise it, ``limits.<name>`` of the flow), and the gateway goes on with the others.

The defaults keep the reading of any file under about 300 MB of memory and let through every
real partner file we know of; a flow that needs more says so in ``edigw.yaml``::

    flows:
      orders:
        limits: {max_lines_per_document: 50000, control_characters: allow}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MAX_CELLS = 2_000_000
"""Excel: rows x columns of the area a sheet's cells span (the library reads it densely)."""
MAX_VALUE_CHARS = 1_000_000
"""One value: a CSV field, an XML text or attribute, an Excel cell (bytes as stored for XML
and Excel)."""
MAX_LINE_CHARS = 1_000_000
"""One physical line of a text file (a line of separators is as many cells)."""
MAX_EXPANDED_BYTES = 100 * 1024 * 1024
"""Excel: the workbook uncompressed, and the text its sheet repeats from shared strings."""
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""XML: one document element (an order and all it holds), with what precedes it."""
MAX_DOCUMENT_TAGS = 500_000
"""XML: tags in one document element (each element has one or two): what its tree costs."""
MAX_LINES_PER_DOCUMENT = 10_000
"""Records of one document (grouped rows, flat-file detail records, XML list items); Ecolix
itself accepts at most 1,000 lines per order."""
MAX_SECONDS = 300.0
"""Wall-clock seconds to read and map one file."""
CONTROL_CHARACTERS: Literal["refuse", "allow"] = "refuse"
"""NUL and the other C0 control characters (tab, CR and LF aside)."""

XML_MAX_DEPTH = 256
"""XML nesting depth; libxml2's own bound without its "huge" mode (not configurable)."""
XML_MAX_TEXT = 10_000_000
"""XML text node or attribute value in bytes; libxml2's own bound (not configurable)."""


@dataclass(frozen=True, slots=True)
class ReaderLimits:
    """A flow's reader budget (``limits:`` in edigw.yaml); every field has a named default."""

    max_cells: int = MAX_CELLS
    max_value_chars: int = MAX_VALUE_CHARS
    max_line_chars: int = MAX_LINE_CHARS
    max_expanded_bytes: int = MAX_EXPANDED_BYTES
    max_document_bytes: int = MAX_DOCUMENT_BYTES
    max_document_tags: int = MAX_DOCUMENT_TAGS
    max_lines_per_document: int = MAX_LINES_PER_DOCUMENT
    max_seconds: float = MAX_SECONDS
    control_characters: Literal["refuse", "allow"] = CONTROL_CHARACTERS

    @property
    def refuse_controls(self) -> bool:
        return self.control_characters == "refuse"


DEFAULT_LIMITS = ReaderLimits()


def over(limit: int | float, name: str, unit: str = "") -> str:
    """``over the limit of 2,000,000 cells (limits.max_cells)``: the tail of a limit error."""
    figure = f"{limit:,}" if isinstance(limit, int) else f"{limit:g}"
    return f"over the limit of {figure}{' ' + unit if unit else ''} (limits.{name})"

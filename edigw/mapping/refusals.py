"""Where a value Ecolix refused came from: a JSON pointer traced back to its cell.

Ecolix names what it refuses by a JSON pointer into the request (``/lines/1/quantity``). The
consultant needs the source: ``commandes.csv:3:6 field quantite``, an XPath and its line,
``Feuil1!C12``. The mapping engine can tell, for every value of a document, where it came
from (``CompiledMapping.traceable_documents``); this module turns those traces and Ecolix's
field errors into problem entries that carry both::

    commandes.csv:2:9 field montant_paye_ttc [/payment/amount]: payment 999.99 does not match…

A computed value names its expression and the cells it read; a constant, the mapping; a
value filled when sent, the answer it comes from. A pointer with no value of its own (an
object, a list, a value Ecolix adds) is placed at the record it belongs to, and a pointer
into nothing the mapping made at the document's first record. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edigw.errors import FieldError
from edigw.mapping.context import Trace
from edigw.model import Location, MappedDocument
from edigw.problems import ProblemEntry


def source_of(trace: Trace) -> str:
    """Where one traced value came from, for people."""
    origin = trace.origin
    if origin.startswith("expression "):
        head = trace.location or trace.record
        read = ", ".join(str(where) for where in trace.inputs)
        return f"{head} computed by {origin}" + (f" from {read}" if read else "")
    if origin.startswith("constant "):
        return f"{origin} of the mapping (record at {trace.record})"
    if trace.location is None:  # filled when sent: an answer of step 1, the original file
        return f"{origin} (record at {trace.record})"
    return str(trace.location)


def place_of(pointer: str, traces: Mapping[str, Trace], fallback: Location) -> str:
    """The source of the value at ``pointer``; for an object or list, the record of its
    first value; for a pointer beneath a value, that value's record; else ``fallback``."""
    hit = traces.get(pointer)
    if hit is not None:
        return source_of(hit)
    prefix = pointer + "/"
    for candidate, trace in traces.items():
        if candidate.startswith(prefix):
            return str(trace.record)
    probe = pointer
    while probe:
        probe = probe.rsplit("/", 1)[0]
        hit = traces.get(probe)
        if hit is not None:
            return str(hit.record)
    return str(fallback)


def located(
    errors: Sequence[FieldError],
    traces: Mapping[str, Trace],
    fallback: Location,
    *,
    prefix: str = "",
) -> list[ProblemEntry]:
    """Ecolix's field errors with their source places. ``prefix`` is where the refused
    payload sits in the traces: ``/then/0`` for a document's second step."""
    return [
        ProblemEntry(
            place_of(prefix + _pointer(error.pointer), traces, fallback),
            error.pointer or "/",
            error.message,
        )
        for error in errors
    ]


def _pointer(pointer: str) -> str:
    return "" if pointer in ("", "/") else pointer


def chain_prefix(document: MappedDocument, position: int) -> str:
    """Where the write at chain ``position`` (1-based: its ``before:`` steps, its own write,
    its ``then:`` steps) sits in a document's traces: ``/before/0``, ``""``, ``/then/0``."""
    before, main = len(document.before), document.main_position
    if position <= before:
        return f"/before/{position - 1}"
    if position == main:
        return ""
    return f"/then/{position - main - 1}"

"""Rendering mapped documents for consultants: JSON for ``mapping test``, text for ``--explain``."""

from __future__ import annotations

import json
from typing import Any

from edigw.mapping.context import Trace
from edigw.mapping.engine import ExplainedDocument
from edigw.model import MappedDocument


def document_json(document: MappedDocument, *, file: str) -> dict[str, Any]:
    """The JSON form of one document, as ``edigw mapping test`` prints it (golden files)."""
    entry: dict[str, Any] = {
        "file": file,
        "key": document.key,
        "operation": document.operation,
        "location": str(document.location),
        "payload": document.payload,
    }
    if document.before:
        entry["before"] = [
            {"operation": s.operation, "payload": s.payload} for s in document.before
        ]
    if document.skipped:
        entry["skipped"] = document.skipped
    if document.steps:
        entry["then"] = [{"operation": s.operation, "payload": s.payload} for s in document.steps]
    if document.problems:
        entry["problems"] = [
            {
                "location": str(p.location) if p.location else None,
                "pointer": p.pointer,
                "message": p.message,
            }
            for p in document.problems
        ]
    return entry


def explain_lines(explained: ExplainedDocument) -> list[str]:
    """One line per target value: pointer = value  ←  origin at location (raw text)."""
    doc = explained.document
    lines = [f"{doc.operation} {doc.key} ({doc.location})"]
    if doc.skipped:
        lines.append(f"  SKIPPED {doc.skipped}")
    if doc.before or doc.steps:
        chain = [
            *(f"{i} {s.operation} (/before/{i - 1})" for i, s in enumerate(doc.before, 1)),
            f"{len(doc.before) + 1} {doc.operation} (this document)",
            *(
                f"{len(doc.before) + 2 + i} {s.operation} (/then/{i})"
                for i, s in enumerate(doc.steps)
            ),
        ]
        lines.append("  chain: " + ", then ".join(chain))
    for trace in explained.traces:
        lines.append("  " + _trace_line(trace))
    for problem in doc.problems:
        lines.append(f"  PROBLEM {problem}")
    return lines


def _trace_line(trace: Trace) -> str:
    value = json.dumps(trace.value, ensure_ascii=False)
    where = trace.location or trace.record
    text = f"{trace.pointer} = {value}  <-  {trace.origin} at {where}"
    if trace.raw is not None and trace.raw != trace.value:
        text += f" (source text {json.dumps(_plain(trace.raw), ensure_ascii=False)})"
    return text


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)

"""Declarative mapping files: load and validate, compile once, apply to records.

mapping = load_mapping(Path("mappings/webshop-orders.yaml"))   # MappingError if wrong
for doc in mapping.map_file(path, source_name="orders.csv"):
    doc.key, doc.operation, doc.payload, doc.problems
"""

from __future__ import annotations

from edigw.errors import MappingError
from edigw.mapping.compiler import load_mapping
from edigw.mapping.context import Trace
from edigw.mapping.engine import CompiledMapping, ExplainedDocument

__all__ = ["CompiledMapping", "ExplainedDocument", "MappingError", "Trace", "load_mapping"]

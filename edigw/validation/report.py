"""What validating one invoice gave: per layer, and the findings that block or warn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from edigw.errors import DataProblem, SourceDataError
from edigw.validation.artefacts import Artefact, Layer, Profile, Syntax
from edigw.validation.findings import Finding
from edigw.validation.policy import LayerMode


class LayerStatus(StrEnum):
    PASSED = "passed"  # ran, found nothing
    WARNINGS = "warnings"  # ran, found only what does not block
    FAILED = "failed"  # ran, found errors (they block when the layer's mode is block)
    SKIPPED = "skipped"  # not run because an earlier blocking layer failed (reason says)
    OFF = "off"  # switched off by the flow's policy
    NOT_APPLICABLE = "not-applicable"  # no rule set for this profile (BR-FR on MINIMUM)


@dataclass(frozen=True, slots=True)
class LayerResult:
    """One layer's outcome, with the artefact (and its version) that decided it."""

    layer: Layer
    mode: LayerMode
    artefact: Artefact | None
    status: LayerStatus
    seconds: float = 0.0
    findings: int = 0
    reason: str = ""

    @classmethod
    def of(
        cls,
        layer: Layer,
        mode: LayerMode,
        artefact: Artefact,
        found: Sequence[Finding],
        seconds: float,
    ) -> LayerResult:
        if not found:
            status = LayerStatus.PASSED
        elif any(f.severity.is_error for f in found):
            status = LayerStatus.FAILED
        else:
            status = LayerStatus.WARNINGS
        return cls(layer, mode, artefact, status, seconds, len(found))


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """``blocking`` fails the file; ``warnings`` go to the journal with it.

    A finding blocks when its layer is ``block`` and the rule set flags it fatal or error.
    ``timings`` holds seconds per step: ``parse`` (lxml, and Saxon when a rule layer runs),
    then each layer that ran (compiling its rules, the first time, included).
    """

    source_name: str
    syntax: Syntax
    profile: Profile
    blocking: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    layers: tuple[LayerResult, ...]
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing blocks the file (there may be warnings)."""
        return not self.blocking

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.blocking + self.warnings

    def layer(self, layer: Layer | str) -> LayerResult:
        return next(r for r in self.layers if r.layer == layer)

    def problems(self) -> list[DataProblem]:
        """The blocking findings as edigw's data problems, each with its Location."""
        return [f.to_problem() for f in self.blocking]

    def warning_problems(self) -> list[DataProblem]:
        return [f.to_problem() for f in self.warnings]

    def raise_if_blocked(self) -> None:
        """SourceDataError with every blocking finding, when there is one."""
        if self.blocking:
            raise SourceDataError(self.problems())

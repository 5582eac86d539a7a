"""Validating an e-invoice on reception, between reading and mapping.

A flow whose mapping reads ``format: einvoice`` (or whose configuration says
``validation:``) runs the validation layers on each file after it is archived and journalled,
before its documents are mapped::

    archived file ─▶ detect (syntax, profile, the PDF's XML) ─▶ layers per the flow's policy
        blocking findings ─▶ the file fails: each finding by rule id, message, location
        warnings only      ─▶ kept in the journal (``edigw show``), the file is mapped

Where it runs. Intake happens on the flow's own poller thread (``poller.FlowPoller``), so
the einvoice flow validates on its own path: other flows' pollers never wait for it. The
rules run on the validation engine's one thread (``edigw.validation.engine``), compiled once
per process and warmed when the gateway starts (:func:`warm_up`). Saxon releases the GIL
while it transforms, so other flows keep their intake while an invoice is checked.

A file that is no e-invoice (an Order-X, a plain PDF) is not validated: the reader then
fails it naming what it is, as it always did.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edigw.einvoice.detect import Detected
from edigw.einvoice.detect import Profile as DetectedProfile
from edigw.einvoice.detect import Syntax as DetectedSyntax
from edigw.errors import DataProblem, EdigwError, MalformedFileError, SourceDataError
from edigw.journal.findings import FindingRow
from edigw.model import Location
from edigw.problems import MAX_MESSAGE, describe
from edigw.validation.artefacts import Profile, Syntax
from edigw.validation.policy import LayerMode, ValidationPolicy

log = logging.getLogger(__name__)

_SYNTAXES = {
    DetectedSyntax.UBL_INVOICE: Syntax.UBL_INVOICE,
    DetectedSyntax.UBL_CREDIT_NOTE: Syntax.UBL_CREDIT_NOTE,
    DetectedSyntax.CII: Syntax.CII,
}
# XRechnung and PEPPOL BIS are CIUS of EN 16931: the EN 16931 rules apply to them (their own
# national rules are not run here). A document claiming no EN 16931 conformance (BT-24
# absent or foreign) is checked as an EN 16931 invoice, so that what it lacks is named.
_PROFILES = {
    DetectedProfile.MINIMUM: Profile.MINIMUM,
    DetectedProfile.BASIC_WL: Profile.BASIC_WL,
    DetectedProfile.BASIC: Profile.BASIC,
    DetectedProfile.EN16931: Profile.EN16931,
    DetectedProfile.EXTENDED: Profile.EXTENDED,
    DetectedProfile.EXTENDED_CTC_FR: Profile.EXTENDED_CTC_FR,
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What validating one file gave: every finding for the journal, those that block it,
    and one line per layer (``summary``) for its history."""

    findings: tuple[FindingRow, ...]
    blocking: tuple[DataProblem, ...]
    summary: str

    @property
    def blocked(self) -> bool:
        return bool(self.blocking)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if not f.blocking)

    def error(self) -> str:
        """The file's error text: what blocked it, each finding by rule, message and place
        (bounded like every error text; ``edigw show F-n --all`` lists them all)."""
        n = len(self.blocking)
        what = "1 finding blocks" if n == 1 else f"{n} findings block"
        head = f"validation failed ({self.summary}); {what} the invoice:"
        return f"{head}\n{describe(self.blocking, limit=max(MAX_MESSAGE - len(head) - 1, 500))}"


def validation_target(detected: Detected) -> tuple[Syntax, Profile]:
    """The rule set that checks a detected invoice: its syntax, and the profile it claims."""
    return _SYNTAXES[detected.syntax], _PROFILES.get(detected.profile, Profile.EN16931)


def validate_file(archived: Path, *, source_name: str, policy: ValidationPolicy) -> Verdict | None:
    """Run the layers of ``policy`` on the invoice in ``archived``.

    ``None`` when the file is no e-invoice, or cannot be read as one: the reader fails it
    with what it found. A file the rules engine cannot take (malformed for Saxon, over the
    time limit) is blocked with that reason. Raises ``ConfigError`` when the rule files are
    missing (the installation's trouble, not the file's).
    """
    from edigw.einvoice.detect import detect
    from edigw.validation.engine import shared_validator

    try:
        detected = detect(_read(archived, source_name), name=source_name)
    except (MalformedFileError, SourceDataError):
        return None
    syntax, profile = validation_target(detected)
    try:
        report = shared_validator().validate(
            detected.xml, syntax=syntax, profile=profile, policy=policy, source_name=source_name
        )
    except SourceDataError as exc:  # MalformedFileError included
        problems = tuple(_in_part(p, detected.attachment) for p in exc.problems)
        summary = f"{detected.describe()}: not validated"
        return Verdict((), problems or (DataProblem(str(exc)),), summary)
    rows: list[FindingRow] = []
    blocking: list[DataProblem] = []
    for finding, blocks in [(f, True) for f in report.blocking] + [
        (f, False) for f in report.warnings
    ]:
        where = Location(
            source_name,
            line=finding.line,
            xpath=finding.path or finding.location,
            part=detected.attachment,
        )
        rows.append(
            FindingRow(
                layer=finding.layer.value,
                rule=finding.rule,
                severity=finding.severity.value,
                blocking=blocks,
                message=finding.message,
                location=str(where),
            )
        )
        if blocks:
            blocking.append(DataProblem(f"[{finding.rule}] {finding.message}", where))
    layers = ", ".join(
        _layer_text(r.layer.value, r.status.value, r.findings, r.mode) for r in report.layers
    )
    return Verdict(tuple(rows), tuple(blocking), f"{detected.describe()}: {layers}")


def _layer_text(layer: str, status: str, findings: int, mode: LayerMode) -> str:
    if status in ("passed", "off", "not-applicable", "skipped"):
        return f"{layer} {status}"
    if status == "failed":
        status += " (blocking)" if mode is LayerMode.BLOCK else " (kept as warnings)"
    return f"{layer} {status}: {findings}"


def _in_part(problem: DataProblem, part: str | None) -> DataProblem:
    """``problem`` located in the PDF's attachment, when the XML came from one."""
    location = problem.location
    if part is None or location is None or location.part is not None:
        return problem
    moved = Location(location.file, line=location.line, xpath=location.xpath, part=part)
    return DataProblem(problem.message, moved, pointer=problem.pointer)


def _read(archived: Path, source_name: str) -> bytes:
    try:
        return archived.read_bytes()
    except OSError as exc:
        problem = DataProblem(f"cannot read the file: {exc}", Location(source_name))
        raise MalformedFileError(problem) from exc


def warm_up(policies: Sequence[ValidationPolicy]) -> None:
    """Compile every rule set once for the process, in the background, when a flow
    validates (``policies``): the first invoice then does not pay for it, and nothing else
    waits for it. Each rule set is its own job on the engine's thread, so an invoice that
    arrives meanwhile waits for one rule set at most, not for all of them."""
    if not policies:
        return

    def compile_all() -> None:
        from edigw.validation.artefacts import all_rule_sets
        from edigw.validation.engine import shared_validator

        validator = shared_validator()
        seconds = 0.0
        try:
            for rules in all_rule_sets():
                seconds += validator.warm_up([rules])
        except EdigwError as exc:
            log.error("validation rules could not be compiled: %s", exc)
            return
        log.info("validation rules compiled in %.1f s", seconds)

    threading.Thread(target=compile_all, name="edigw-validation-warm-up", daemon=True).start()

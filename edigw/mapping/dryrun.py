"""``edigw mapping test --against-ecolix``: would Ecolix accept what a sample maps to?

Offline checks stop at the contract's schema; business rules (the payment does not match the
total, an unknown customer or article, a duplicate) only show when Ecolix is asked. Each
document the sample maps to without problems is sent to Ecolix as a dry run (``?dry_run=true``
in the contract): Ecolix answers what the write would get and creates nothing. One call per
write checked, counted in the call budget like any other.

A refusal comes back with each field error traced to its source cell
(:mod:`edigw.mapping.refusals`). The writes of a chain (``before:``, the document's own,
``then:``) are checked together in one call (``POST /dry-runs``), each on what the earlier
ones would have made (the order on the customer upserted just before it), as far as they can
be sent: a step that needs the answer to the document's own write (``answer:``) or the
original file as sent (``original:``), and the steps after it, are reported *not checked*,
with why, rather than guessed; the steps after a refused one are not tried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edigw.errors import (
    EcolixAuthError,
    EcolixError,
    EcolixFinalError,
    EcolixNotSentError,
    Problem,
    SourceDataError,
)
from edigw.mapping.context import Trace
from edigw.mapping.engine import CompiledMapping
from edigw.mapping.explain import document_json
from edigw.mapping.refusals import chain_prefix, located
from edigw.mapping.sample import sample_files
from edigw.mapping.steps import ANSWER, ORIGINAL
from edigw.model import MappedDocument, MappedStep
from edigw.problems import ProblemEntry


class Validator(Protocol):
    """What a dry run needs of the Ecolix client (``EcolixClient.validate`` and
    ``validate_chain``)."""

    def validate(self, operation: str, payload: Mapping[str, Any]) -> Any: ...

    def validate_chain(self, writes: Sequence[tuple[str, Mapping[str, Any]]]) -> Sequence[Any]: ...


class DryRunAborted(EcolixError):
    """Ecolix cannot check anything now (no token, unreachable): the run stops at once."""


@dataclass(slots=True)
class StepCheck:
    """What Ecolix said of one write of a document's chain (``step``: its position, 1-based;
    ``chained``: the chain has more than one write)."""

    step: int
    operation: str
    checked: bool
    chained: bool = False
    status: int | None = None
    accepted: bool = False
    title: str = ""
    why: str = ""
    problems: list[ProblemEntry] = field(default_factory=list)

    def data(self) -> dict[str, Any]:
        if not self.checked:
            return {"checked": False, "why": self.why}
        entry: dict[str, Any] = {"checked": True, "status": self.status, "accepted": self.accepted}
        if not self.accepted:
            entry["title"] = self.title
            entry["problems"] = [
                {"location": p.location, "pointer": p.pointer, "message": p.message}
                for p in self.problems
            ]
        if self.why:
            entry["note"] = self.why
        return entry

    def lines(self) -> list[str]:
        """This check for people: one line, then one per problem."""
        name = f"step {self.step} {self.operation}" if self.chained else self.operation
        if not self.checked:
            return [f"{name} not checked: {self.why}"]
        if self.accepted:
            return [f"{name}: accepted by Ecolix ({self.status}, dry run: nothing created)"]
        head = f"{name}: refused by Ecolix: {self.status} {self.title}".rstrip()
        if self.why:
            head += f" ({self.why})"
        return [head, *(f"  {p}" for p in self.problems)]


@dataclass(slots=True)
class DocumentCheck:
    """One document of a sample and Ecolix's answers to its writes."""

    entry: dict[str, Any]  # the document as ``mapping test`` prints it
    steps: list[StepCheck] = field(default_factory=list)  # the chain's writes, in order

    @property
    def refused(self) -> bool:
        return any(s.checked and not s.accepted for s in self.steps)

    @property
    def accepted(self) -> bool:
        """Mapped without problems, its first write checked, and nothing refused."""
        return bool(self.steps) and self.steps[0].checked and not self.refused

    def data(self) -> dict[str, Any]:
        entry = dict(self.entry)
        if not self.steps:
            return entry
        checks = iter(self.steps)
        if entry.get("before"):
            entry["before"] = [{**s, "ecolix": next(checks).data()} for s in entry["before"]]
        entry["ecolix"] = next(checks).data()
        if entry.get("then"):
            entry["then"] = [{**s, "ecolix": next(checks).data()} for s in entry["then"]]
        return entry

    def lines(self) -> list[str]:
        head = f"{self.entry.get('key', '?')} ({self.entry.get('location') or self.entry['file']})"
        if "error" in self.entry:
            return [f"{self.entry['file']}: not checked: {self.entry['error']}"]
        if self.entry.get("skipped"):
            return [f"{head}: not sent, {self.entry['skipped']}"]
        if not self.steps:
            return [f'{head}: not sent: the mapping reported problems (see "problems")']
        lines = [head]
        for step in self.steps:
            lines += [f"  {line}" for line in step.lines()]
        return lines


@dataclass(slots=True)
class DryRun:
    """Every document of the samples, checked; ``calls``: dry runs made (budget spent)."""

    documents: list[DocumentCheck] = field(default_factory=list)
    calls: int = 0
    #: HTTP requests they took, retries included, when the client counts them
    requests: int = 0

    @property
    def ok(self) -> bool:
        """Every document skipped by the mapping or accepted by Ecolix."""
        return all(d.entry.get("skipped") or d.accepted for d in self.documents)

    def data(self) -> list[dict[str, Any]]:
        return [d.data() for d in self.documents]

    def summary(self) -> str:
        docs = self.documents
        refused = sum(1 for d in docs if d.refused)
        skipped = sum(1 for d in docs if d.entry.get("skipped"))
        unsent = sum(1 for d in docs if not d.steps) - skipped
        unchecked = sum(1 for d in docs if d.steps and not d.steps[0].checked)
        accepted = sum(1 for d in docs if d.accepted)
        calls = f"{self.calls} call{'s' if self.calls != 1 else ''}"
        if self.requests > self.calls:
            calls += f" ({self.requests} requests with retries)"
        more = f", {unchecked} not checked" if unchecked else ""
        more += f", {skipped} skipped by the mapping" if skipped else ""
        return (
            f"dry run: {len(docs)} document(s), {accepted} accepted, {refused} refused, "
            f"{unsent} not sent{more}; {calls} to Ecolix, counted in the call budget"
        )


def dry_run(
    mapping: CompiledMapping,
    sample: Path,
    validator: Validator,
    *,
    encoding: str | None = None,
) -> DryRun:
    """Map every sample file and ask Ecolix about each document that mapped without problems.

    Raises :class:`DryRunAborted` when Ecolix refuses the token or cannot be reached: no
    document could be checked then.
    """
    run = DryRun()
    for path in sample_files(sample):
        try:
            for document, trace in _documents(mapping, path, encoding):
                entry = document_json(document, file=path.name)
                check = DocumentCheck(entry)
                if document.ok and document.payload is not None:
                    check.steps = _check_writes(document, trace(), validator, run)
                run.documents.append(check)
        except SourceDataError as exc:
            run.documents.append(DocumentCheck({"file": path.name, "error": str(exc)}))
    usage = getattr(validator, "usage", None)
    run.requests = int(getattr(usage, "calls", 0))
    return run


def _documents(
    mapping: CompiledMapping, path: Path, encoding: str | None
) -> Iterator[tuple[MappedDocument, Callable[[], dict[str, Trace]]]]:
    records = mapping.reader(encoding=encoding).records(path, source_name=path.name)
    return mapping.traceable_documents(records, source_name=path.name)


def _check_writes(
    document: MappedDocument, traces: dict[str, Trace], validator: Validator, run: DryRun
) -> list[StepCheck]:
    """Ask Ecolix about the document's chain of writes, as far as it can be sent."""
    writes = document.writes()
    chained = len(writes) > 1
    sendable: list[MappedStep] = []
    for write in writes:
        if _waits_for(write):
            break
        sendable.append(write)
    checks: list[StepCheck] = []
    if len(sendable) == 1:
        write = sendable[0]
        checks.append(_ask(validator, run, write, traces, document, chained=chained))
    elif sendable:
        checks += _ask_chain(validator, run, sendable, traces, document)
    for number in range(len(checks) + 1, len(writes) + 1):
        write = writes[number - 1]
        refused = next((c.step for c in checks if c.checked and not c.accepted), None)
        waits = _waits_for(write)
        if refused is not None:
            why = f"step {refused} was refused"
        elif ANSWER in waits:
            why = (
                f"needs the answer of step {document.main_position} "
                "(known only once it is really sent)"
            )
        elif ORIGINAL in waits:
            why = "sends the original file, attached only when the document is sent"
        else:
            why = f"comes after step {len(sendable) + 1}, which cannot be checked before it is sent"
        checks.append(StepCheck(number, write.operation, checked=False, chained=chained, why=why))
    return checks


def _waits_for(write: MappedStep) -> set[str]:
    """The placeholders (``$answer``, ``$original``) a write waits for: known when sent."""
    return {next(iter(v)) for v in write.payload.values() if _placeholder(v)}


def _ask(
    validator: Validator,
    run: DryRun,
    write: MappedStep,
    traces: Mapping[str, Trace],
    document: MappedDocument,
    *,
    chained: bool,
) -> StepCheck:
    """One write alone, as a dry run on its own path (``?dry_run=true``)."""
    run.calls += 1
    try:
        answer = validator.validate(write.operation, write.payload)
    except (EcolixAuthError, EcolixNotSentError) as exc:
        raise DryRunAborted(str(exc), operation=write.operation, problem=exc.problem) from exc
    except EcolixFinalError as exc:
        if exc.problem is None:  # e.g. an Ecolix that did not confirm the dry run: stop at once
            raise DryRunAborted(str(exc), operation=write.operation) from exc
        return _refusal(1, write.operation, exc.problem, traces, document, chained=chained)
    except EcolixError as exc:  # could not answer now (429 after retries, 5xx)
        why = f"Ecolix could not answer: {exc}"
        return StepCheck(1, write.operation, checked=False, chained=chained, why=why)
    status = int(answer.status)
    return StepCheck(
        1, write.operation, checked=True, chained=chained, status=status, accepted=True
    )


def _ask_chain(
    validator: Validator,
    run: DryRun,
    writes: Sequence[MappedStep],
    traces: Mapping[str, Trace],
    document: MappedDocument,
) -> list[StepCheck]:
    """Several writes in one call (``POST /dry-runs``), each on what the earlier ones made."""
    run.calls += 1
    try:
        answers = validator.validate_chain([(w.operation, w.payload) for w in writes])
    except (EcolixAuthError, EcolixNotSentError) as exc:
        raise DryRunAborted(str(exc), operation="dry_runs.create", problem=exc.problem) from exc
    except EcolixFinalError as exc:
        if exc.problem is None:
            raise DryRunAborted(str(exc), operation="dry_runs.create") from exc
        why = f"Ecolix refused the dry run itself: {exc}"
        return [StepCheck(1, writes[0].operation, checked=False, chained=True, why=why)]
    except EcolixError as exc:
        why = f"Ecolix could not answer: {exc}"
        return [StepCheck(1, writes[0].operation, checked=False, chained=True, why=why)]
    checks = []
    for number, (write, answer) in enumerate(zip(writes, answers, strict=False), start=1):
        if answer.problem is not None and answer.status >= 400:
            checks.append(
                _refusal(number, write.operation, answer.problem, traces, document, chained=True)
            )
        else:
            checks.append(
                StepCheck(
                    number,
                    write.operation,
                    checked=True,
                    chained=True,
                    status=answer.status,
                    accepted=True,
                )
            )
    return checks


def _refusal(
    number: int,
    operation: str,
    problem: Problem,
    traces: Mapping[str, Trace],
    document: MappedDocument,
    *,
    chained: bool,
) -> StepCheck:
    title = problem.title or problem.type
    if not problem.errors and problem.detail:
        title += f": {problem.detail}"
    prefix = chain_prefix(document, number)
    return StepCheck(
        number,
        operation,
        checked=True,
        chained=chained,
        status=problem.status,
        title=title,
        problems=located(problem.errors, traces, document.location, prefix=prefix),
    )


def _placeholder(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and (ANSWER in value or ORIGINAL in value)


def lines_of(run: DryRun) -> Sequence[str]:
    """The dry run for people (stderr of ``mapping test --against-ecolix``)."""
    out: list[str] = []
    for document in run.documents:
        out += document.lines()
    out.append(run.summary())
    return out

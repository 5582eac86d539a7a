"""What ``edigw mapping check`` and ``edigw mapping test`` do, without the command line."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edigw.errors import MappingError, SourceDataError
from edigw.mapping.checks import merge, static_problems
from edigw.mapping.compiler import load_mapping
from edigw.mapping.engine import CompiledMapping
from edigw.mapping.explain import document_json, explain_lines
from edigw.mapping.loader import read_mapping

MAPPING_SUFFIXES = (".yaml", ".yml")


@dataclass(slots=True)
class CheckResult:
    """One mapping file checked: its problems (empty when fine)."""

    path: Path
    problems: list[str]
    mapping: CompiledMapping | None = None


def mapping_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The mapping files named, folders expanded to the YAML files they hold."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.suffix in MAPPING_SUFFIXES and child.is_file():
                    yield child
        else:
            yield path


def check_mappings(paths: Iterable[Path], *, samples: Sequence[Path] = ()) -> list[CheckResult]:
    """Load every mapping (and its lookup tables), collecting problems instead of stopping.

    Beyond loading, the static checks (``edigw.mapping.checks``) report what would fail on
    every file; ``samples`` (files) tell the columns or elements the partner's files have.
    """
    results = []
    for path in mapping_files(paths):
        try:
            source = read_mapping(path)
        except MappingError as exc:
            results.append(CheckResult(path, exc.problems))
            continue
        static = static_problems(source, samples=samples)
        try:
            compiled: CompiledMapping | None = load_mapping(path)
            loaded: list[str] = []
        except MappingError as exc:
            compiled, loaded = None, exc.problems
        problems = merge(loaded, static)
        results.append(CheckResult(path, problems, None if problems else compiled))
    return results


@dataclass(slots=True)
class SampleRun:
    """The outcome of mapping one or more sample files."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    explanations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0

    @property
    def ok(self) -> bool:
        return all(entry_ok(d) for d in self.documents)

    def to_json(self) -> str:
        return json.dumps(self.documents, indent=2, ensure_ascii=False) + "\n"


def entry_ok(entry: Mapping[str, Any]) -> bool:
    """Whether a ``mapping test`` entry is a document without problems (not a file that
    could not be read)."""
    return "problems" not in entry and "error" not in entry


def sample_files(sample: Path) -> list[Path]:
    """``sample`` itself, or the visible files of a folder, sorted by name."""
    if sample.is_dir():
        return sorted(p for p in sample.iterdir() if p.is_file() and not p.name.startswith("."))
    return [sample]


@dataclass(slots=True)
class SampleStream:
    """Mapping the samples entry by entry (a big file is never held whole): ``entries()``
    yields each document's JSON form as it is mapped; ``explained`` receives the
    ``--explain`` lines of each document as it comes, ``notes`` what the readers decided on
    their own. ``files``, ``documents`` and ``with_problems`` count what was yielded."""

    mapping: CompiledMapping
    sample: Path
    explain: bool = False
    encoding: str | None = None
    explained: Callable[[list[str]], None] = lambda _: None
    notes: list[str] = field(default_factory=list)
    files: int = 0
    documents: int = 0
    with_problems: int = 0
    unreadable: int = 0

    @property
    def ok(self) -> bool:
        return not self.with_problems and not self.unreadable

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every document of every sample file; a malformed file becomes an ``error``
        entry, not an abort."""
        for path in sample_files(self.sample):
            self.files += 1
            try:
                for entry in self._of(path):
                    self.documents += 1
                    self.with_problems += "problems" in entry
                    yield entry
            except SourceDataError as exc:
                self.unreadable += 1
                yield {"file": path.name, "error": str(exc)}

    def _of(self, path: Path) -> Iterator[dict[str, Any]]:
        if self.explain:
            for explained in self.mapping.explain_file(
                path, source_name=path.name, encoding=self.encoding
            ):
                self.explained(explain_lines(explained))
                yield document_json(explained.document, file=path.name)
        else:
            for document in self.mapping.map_file(
                path, source_name=path.name, encoding=self.encoding, notes=self.notes
            ):
                yield document_json(document, file=path.name)

    def summary(self) -> str:
        """What was mapped, for the end of ``mapping test``."""
        text = (
            f"{self.documents} document(s) from {self.files} file(s): "
            f"{self.documents - self.with_problems} without problems, "
            f"{self.with_problems} with problems"
        )
        if self.unreadable:
            text += f"; {self.unreadable} file(s) could not be read"
        return text


def run_samples(
    mapping: CompiledMapping,
    sample: Path,
    *,
    explain: bool = False,
    encoding: str | None = None,
) -> SampleRun:
    """Map every sample file, keeping every entry (``--expect`` compares them whole); a
    malformed file becomes an ``error`` entry, not an abort."""
    run = SampleRun()
    stream = SampleStream(
        mapping, sample, explain=explain, encoding=encoding, explained=run.explanations.extend
    )
    run.notes = stream.notes
    run.documents = list(stream.entries())
    run.files = stream.files
    return run


class JsonArrayWriter:
    """Writes a JSON array item by item, byte for byte as ``json.dumps(items, indent=2,
    ensure_ascii=False)`` and a newline would: ``mapping test`` prints a 40,000-document
    file without holding it."""

    def __init__(self, write: Callable[[str], Any]) -> None:
        self._write = write
        self._count = 0

    def add(self, item: Any) -> None:
        text = json.dumps(item, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        self._write(("[\n  " if not self._count else ",\n  ") + text)
        self._count += 1

    def close(self) -> None:
        self._write("\n]\n" if self._count else "[]\n")


def diff_expected(run: SampleRun, expected: Path) -> list[str]:
    """A unified diff from the golden file to this run (empty when they agree)."""
    try:
        wanted = json.loads(expected.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"{expected}: cannot read the expected JSON: {exc}"
        raise MappingError(msg) from exc
    if wanted == run.documents:
        return []
    before = json.dumps(wanted, indent=2, ensure_ascii=False, sort_keys=True).splitlines()
    after = json.dumps(run.documents, indent=2, ensure_ascii=False, sort_keys=True).splitlines()
    return list(difflib.unified_diff(before, after, str(expected), "actual", lineterm="", n=3))


@dataclass(slots=True)
class Trial:
    """A mapping checked against a sample and tried on it (``edigw mapping new`` reports it)."""

    problems: list[str]
    target: str = ""
    documents: int = 0
    valid: int = 0
    first_problem: str = ""


def try_mapping(mapping: Path, sample: Path) -> Trial:
    """``mapping check --sample`` then ``mapping test`` on ``mapping``, summed up."""
    [result] = check_mappings([mapping], samples=sample_files(sample))
    if result.problems or result.mapping is None:
        return Trial(result.problems)
    run = run_samples(result.mapping, sample)
    bad = [d for d in run.documents if not entry_ok(d)]
    first = ""
    if bad:
        if "error" in bad[0]:
            first = bad[0]["error"]
        else:
            problem = bad[0]["problems"][0]
            pointer = f" [{problem['pointer']}]" if problem.get("pointer") else ""
            first = f"{problem['location']}{pointer}: {problem['message']}"
    return Trial(
        [], result.mapping.target, len(run.documents), len(run.documents) - len(bad), first
    )

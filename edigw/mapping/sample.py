"""What ``edigw mapping check`` and ``edigw mapping test`` do, without the command line."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edigw.errors import MappingError, SourceDataError
from edigw.mapping.engine import CompiledMapping, load_mapping
from edigw.mapping.explain import document_json, explain_lines

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


def check_mappings(paths: Iterable[Path]) -> list[CheckResult]:
    """Load every mapping (and its lookup tables), collecting problems instead of stopping."""
    results = []
    for path in mapping_files(paths):
        try:
            results.append(CheckResult(path, [], load_mapping(path)))
        except MappingError as exc:
            results.append(CheckResult(path, exc.problems))
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
        return all("problems" not in d and "error" not in d for d in self.documents)

    def to_json(self) -> str:
        return json.dumps(self.documents, indent=2, ensure_ascii=False) + "\n"


def sample_files(sample: Path) -> list[Path]:
    """``sample`` itself, or the visible files of a folder, sorted by name."""
    if sample.is_dir():
        return sorted(p for p in sample.iterdir() if p.is_file() and not p.name.startswith("."))
    return [sample]


def run_samples(
    mapping: CompiledMapping,
    sample: Path,
    *,
    explain: bool = False,
    encoding: str | None = None,
) -> SampleRun:
    """Map every sample file; a malformed file becomes an ``error`` entry, not an abort."""
    run = SampleRun()
    for path in sample_files(sample):
        run.files += 1
        try:
            if explain:
                for explained in mapping.explain_file(
                    path, source_name=path.name, encoding=encoding
                ):
                    run.documents.append(document_json(explained.document, file=path.name))
                    run.explanations.extend(explain_lines(explained))
            else:
                for document in mapping.map_file(
                    path, source_name=path.name, encoding=encoding, notes=run.notes
                ):
                    run.documents.append(document_json(document, file=path.name))
        except SourceDataError as exc:
            run.documents.append({"file": path.name, "error": str(exc)})
    return run


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

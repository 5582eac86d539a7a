"""The "from sample to production" walk-through of docs/mappings.md works as printed.

Its ``sh`` commands run in order in a fresh folder, against a sandbox of their own, as a
consultant would type them: each must exit 0 (or 1 where the doc says ``# exits 1``), and
each line of the ``text`` block that follows a ``sh`` block must be in what its commands
printed (spacing aside: a terminal wraps long lines). A command ending with ``&`` runs in
the background until the end; after a file is dropped into an inbox the test waits, as a
person would, until the running gateway has settled it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from edigw.journal.store import Journal
from tests.fixtures.gateway import FINAL, ROOT, wait_until
from tests.fixtures.sandbox import SandboxProcess

DOC = ROOT / "docs" / "mappings.md"
SECTION = "## From sample to production: a walk-through"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
EXITS = re.compile(r"#\s*exits (\d+)\s*$")


@dataclass
class Step:
    """A ``sh`` block: its commands, and the output lines the ``text`` block after it shows."""

    commands: list[str]
    shown: list[str] = field(default_factory=list)


def walkthrough() -> list[Step]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    steps: list[Step] = []
    for language, body in FENCE.findall(text[start : end if end != -1 else None]):
        lines = [line for line in body.splitlines() if line.strip()]
        if language == "sh":
            steps.append(Step([line for line in lines if not line.lstrip().startswith("#")]))
        elif language == "text" and steps:
            steps[-1].shown += lines
    return steps


def spaced(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def settled(workspace: Path, files: int) -> Callable[[], bool]:
    journal_path = workspace / "edigw-data" / "journal.sqlite"

    def check() -> bool:
        if not journal_path.exists():
            return False
        with Journal.open(f"sqlite:///{journal_path}") as journal:
            rows = journal.files(limit=1000)
        return len(rows) >= files and all(r.state in FINAL for r in rows)

    return check


def test_the_walkthrough_runs_as_printed(
    tmp_path: Path,
    sandbox_factory: Callable[..., SandboxProcess],
    background: list[subprocess.Popen[bytes]],
) -> None:
    sandbox = sandbox_factory()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "edigw"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m edigw.cli "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "ECOLIX_URL": sandbox.base_url,
        "ECOLIX_TOKEN": sandbox.token,
        "EDIGW_SAMPLES": str(ROOT / "samples"),
        "COLUMNS": "200",
    }
    cwd = tmp_path / "work"
    cwd.mkdir()
    steps = walkthrough()
    assert len(steps) >= 6, "the walk-through lost its commands"
    drops = 0
    for step in steps:
        printed = ""
        for command in step.commands:
            if command.startswith("cd "):
                cwd = cwd / command[3:].strip()
                continue
            if command.rstrip().endswith("&"):
                with (tmp_path / f"background-{len(background)}.log").open("wb") as log:
                    background.append(
                        subprocess.Popen(
                            ["bash", "-c", "exec " + command.rstrip()[:-1]],
                            cwd=cwd,
                            env=env,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
                continue
            exits = EXITS.search(command)
            ran = subprocess.run(
                ["bash", "-c", command],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            assert ran.returncode == (int(exits.group(1)) if exits else 0), (
                command,
                ran.stdout[-3000:],
                ran.stderr[-3000:],
            )
            printed += ran.stdout + ran.stderr
            if command.startswith("cp ") and " inbox/" in command:
                drops += 1
                wait_until(settled(cwd, drops), timeout=90, what=f"the gateway to settle {command}")
        for line in step.shown:
            assert spaced(line) in spaced(printed), (line, printed[-4000:])

"""The README is a newcomer's first screen: its commands are the ones CI runs, its mapping
table lists every shipped mapping, and its links (and the guides') lead somewhere."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The lines a newcomer copies: install, demo, and the test command CI runs (.ci/run).
TEST_COMMAND = "pip install -e '.[test]' && pytest -q -n 2"
FIRST_SCREEN_COMMANDS = ("pip install -e .", "edigw demo", TEST_COMMAND)
FIRST_SCREEN_LINES = 60


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.DOTALL)


def test_the_first_screen_holds_the_install_demo_and_test_commands() -> None:
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN_LINES])
    lines = {line.strip() for block in shell_blocks(first_screen) for line in block.splitlines()}

    assert set(FIRST_SCREEN_COMMANDS) <= lines


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")

    assert "pip install -q -e '.[test]'" in ci
    assert ci.rstrip().endswith(TEST_COMMAND.split(" && ")[1])


def test_the_mapping_table_lists_every_shipped_mapping() -> None:
    rows = [
        line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| `")
    ]
    named: set[str] = set()
    for row in rows:
        first_cell = row.split("|")[1]
        names = re.findall(r"`([^`]+)`", first_cell)
        base = names[0]
        for name in names:
            # "`supplier-confirmations-xlsx` / `-ubl`": a suffix replaces the first name's last part
            named.add(base.rsplit("-", 1)[0] + name if name.startswith("-") else name)

    shipped = {path.stem for path in (ROOT / "mappings").glob("*.yaml")}

    assert shipped <= named, sorted(shipped - named)
    assert named <= shipped, sorted(named - shipped)


@pytest.mark.parametrize(
    "page",
    [README, *sorted((ROOT / "docs").glob("*.md"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_relative_links_lead_to_files_that_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t.split("#", 1)[0] for t in targets if not re.match(r"[a-z]+:|#", t)]

    missing = [t for t in local if not (page.parent / t).exists()]

    assert not missing, missing


def test_the_quick_start_environment_passes_config_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The variables the quick start exports are all the starter needs: `config check` on a
    fresh `edigw init` workspace, with those and nothing else of edigw's, says ok."""
    from click.testing import CliRunner

    from edigw.cli import main

    [quick_start] = [b for b in shell_blocks(README.read_text()) if "edigw init" in b]
    exported = dict(re.findall(r'^export (\w+)="?([^"#\n]*?)"?\s*(?:#.*)?$', quick_start, re.M))
    assert {"ECOLIX_TOKEN", "EDIGW_COMPANY_NAME", "EDIGW_COMPANY_SIREN"} <= set(exported)
    for name in [n for n in os.environ if n.startswith(("EDIGW_", "ECOLIX_"))]:
        monkeypatch.delenv(name)
    for name, value in exported.items():
        monkeypatch.setenv(name, value)

    workspace = tmp_path / "gateway"
    assert CliRunner().invoke(main, ["init", str(workspace)]).exit_code == 0
    result = CliRunner().invoke(main, ["config", "check", "-c", str(workspace / "edigw.yaml")])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok ")

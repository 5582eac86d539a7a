"""`python -m tests.repeat`: runs pytest N times and names the tests that failed, and how often."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.repeat import main

SPECS = """
from pathlib import Path

def test_passes():
    pass

def test_fails_the_first_time():
    marker = Path(__file__).with_name("marker")
    first = not marker.exists()
    marker.touch()
    assert not first
"""


def test_it_counts_the_runs_that_failed_and_names_their_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A project of its own: the inner pytest roots at its config, so the tests are named
    # from there whatever folder this suite runs from (without it, pytest falls back to the
    # common ancestor of the working directory and the file: /tmp for a checkout in /tmp).
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    specs = tmp_path / "test_specs.py"
    specs.write_text(SPECS, encoding="utf-8")

    status = main(["-n", "2", str(specs)])

    out = capsys.readouterr().out.splitlines()
    assert status == 1
    assert out[0].startswith("run 1/2: FAILED test_specs::test_fails_the_first_time (")
    assert out[1].startswith("    FAILED ")
    assert out[1].endswith("test_specs.py::test_fails_the_first_time - assert not True")
    assert out[2].startswith("run 2/2: passed (")
    assert out[3:] == ["1 of 2 runs passed", "  1x test_specs::test_fails_the_first_time"]

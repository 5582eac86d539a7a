"""Run some tests N times in a row and tell which runs failed, and in which tests.

    python -m tests.repeat -n 20 tests/test_pipeline_gateway.py
    python -m tests.repeat -n 5 -- tests/test_pipeline_gateway.py -k dropped

A flaky test shows itself only now and then: this runs pytest again and again (each run in a
fresh process, as CI would) and sums up. It runs on demand, not in CI: 20 runs of the gateway
tests take minutes. Exit status 0 only when every run passed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path


def failed_tests(junit_xml: Path) -> list[str]:
    """The ids of the tests that failed or errored in one pytest run's JUnit report."""
    try:
        root = ET.parse(junit_xml).getroot()
    except (OSError, ET.ParseError):
        return ["(no report: pytest did not finish)"]
    failed = []
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname', '')}::{case.get('name', '')}")
    return failed


def run_once(pytest_args: list[str], report: Path) -> tuple[int, float, list[str]]:
    """One pytest run: its exit status, seconds, and the one-line reasons of its failures."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += [f"--junitxml={report}", *pytest_args]
    started = time.monotonic()
    wide = {**os.environ, "COLUMNS": "240"}  # room for each failure's reason in the summary
    completed = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=wide, check=False
    )
    seconds = time.monotonic() - started
    output = completed.stdout.decode(errors="replace")
    reasons = [line for line in output.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    if completed.returncode not in (0, 1):  # 1 = some tests failed; others = pytest broke
        reasons.append(output[-3000:])
    return completed.returncode, seconds, reasons


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.repeat", description=__doc__.split("\n")[0]
    )
    parser.add_argument("-n", "--runs", type=int, default=20, help="how many runs (default 20)")
    parser.add_argument("pytest_args", nargs="*", help="what to run, as pytest takes it")
    options = parser.parse_args(argv)
    failures: Counter[str] = Counter()
    bad_runs = 0
    with tempfile.TemporaryDirectory(prefix="edigw-repeat-") as folder:
        for n in range(1, options.runs + 1):
            report = Path(folder) / f"run-{n}.xml"
            code, seconds, reasons = run_once(options.pytest_args, report)
            failed = failed_tests(report) if code != 0 else []
            if code != 0 and not failed:
                failed = [f"(pytest exit status {code})"]
            failures.update(failed)
            bad_runs += bool(failed)
            verdict = "passed" if not failed else "FAILED " + ", ".join(failed)
            print(f"run {n}/{options.runs}: {verdict} ({seconds:.0f} s)", flush=True)
            for reason in reasons:
                print(f"    {reason}", flush=True)
    print(f"{options.runs - bad_runs} of {options.runs} runs passed")
    for test, count in failures.most_common():
        print(f"  {count}x {test}")
    return 0 if bad_runs == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

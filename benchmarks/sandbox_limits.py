"""Sandbox figures: what hostile templates and expressions cost before they are stopped.

    python benchmarks/sandbox_limits.py

Each case runs in a child process: it renders a template (or evaluates a mapping expression)
that tries to eat memory or time, and reports how it ended, how long it took and its peak RSS
over the same process's peak after a harmless render (``VmHWM``). Goal (issue 17): every case
stops with a limit error, under 100 MB over that baseline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEMPLATES = {
    "'x' * 10**9": "{{ 'x' * 10**9 }}",
    "range(10**9)|list": "{{ range(10**9)|list }}",
    "[0] * 10**8": "{{ [0] * 10**8 }}",
    "'{:>999999999}'.format(1)": "{{ '{:>999999999}'.format(1) }}",
    "'%s'|format(1 MB ~ 'y')": "{{ '%s'|format('x' * 1000000 ~ 'y') }}",
    "string doubled in a loop": (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
    ),
    "range(10**5)|join(100 chars)": "{{ range(100000)|join('x' * 100) }}",
    "nested loops 10**5 x 10**5": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "map('center', 10**5)|list": "{{ range(100000)|map('center', 100000)|list|length }}",
    "a list of 1 MB strings printed": "{% set s = 'x' * 1000000 %}{{ [s] * 1000 }}",
    "1 MB printed 10**5 times": (
        "{% set s = 'x' * 1000000 %}{% for i in range(100000) %}{{ s }}{% endfor %}"
    ),
    "macro recursion": "{% macro m(s) %}{{ m(s ~ 'x' * 1000) }}{% endmacro %}{{ m('') }}",
}

EXPRESSIONS = {
    "'x' * 10**9": "'x' * 10**9",
    "range(10**9)|list": "range(10**9)|list",
    "'%999999999d' % 1": "'%999999999d' % 1",
    "range(10**5)|map('center', 10**5)|list": "range(100000)|map('center', 100000)|list",
}


def peak_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def child(kind: str, text: str) -> None:
    from edigw.mapping.expressions import ExpressionError, compile_expression, make_environment
    from edigw.outbound.render import load_template, render_to_file

    work = Path(tempfile.mkdtemp(prefix="edigw-bench-limits-"))
    (work / "ok.csv.j2").write_text("{% for r in records %}{{ r.code }}\n{% endfor %}")
    render_to_file(load_template(work / "ok.csv.j2"), iter([{"code": "A1"}]), work / "ok.csv")
    compile_expression(make_environment(), "value ~ '!'")(value="x")
    baseline = peak_kb()
    started = time.perf_counter()
    try:
        if kind == "template":
            (work / "t.csv.j2").write_text(text)
            template = load_template(work / "t.csv.j2")
            render_to_file(template, iter([{"code": "A1"}]), work / "out.csv")
        else:
            compile_expression(make_environment(), text)(value="x")
        outcome = "NOT STOPPED"
    except ExpressionError as exc:
        outcome = str(exc).split(" stopped: ", 1)[-1]
    except Exception as exc:  # any other end is reported as it is
        outcome = str(exc).split(": ", 2)[-1]
    seconds = time.perf_counter() - started
    print(json.dumps({"outcome": outcome, "seconds": seconds, "mb": (peak_kb() - baseline) / 1024}))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    print("| case | stopped by | seconds | peak RSS over baseline |")
    print("| --- | --- | --- | --- |")
    for kind, cases in (("template", TEMPLATES), ("expression", EXPRESSIONS)):
        for name, text in cases.items():
            out = subprocess.run(
                [sys.executable, __file__, "--child", kind, text],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            figures = json.loads(out.strip().splitlines()[-1])
            outcome = figures["outcome"][:90]
            print(
                f"| {kind}: `{name}` | {outcome} | {figures['seconds']:.2f} | "
                f"{figures['mb']:.0f} MB |"
            )


if __name__ == "__main__":
    main()

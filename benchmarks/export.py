"""Export figures: 100,000 articles from the sandbox to CSV with the web-shop template.

    python benchmarks/export.py [--articles 100000]

Prints records/s of a whole export run (Ecolix paging over loopback HTTP, render, archive,
delivery, journal), the Ecolix calls it made, the peak RSS of the process that ran it, and
the render cost alone (template over records already in memory, to a file) as a ratio to
``csv.writer`` writing the same rows from the same records: the median of per-round ratios
over interleaved rounds, in wall time and in processor time, with the load average. The export runs in a child
process so that its peak RSS is not the benchmark's own (the seed is big).
Goals (issue 6): render ≤ 3× csv.writer, peak RSS < 150 MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEMPLATE = ROOT / "templates" / "webshop-articles.csv.j2"
COLUMNS = (
    "code",
    "ean13",
    "label",
    "family",
    "unit",
    "sale_price",
    "vat_rate",
    "weight_kg",
    "active",
    "updated_at",
)


def make_seed(path: Path, count: int) -> None:
    base = json.loads((ROOT / "samples" / "sandbox-seed.json").read_text(encoding="utf-8"))
    articles = base["articles"]
    out = []
    for i in range(count):
        art = dict(articles[i % len(articles)])
        art["code"] = f"BART-{i:07d}"
        art["label"] = f"{art['label']} n°{i}"
        out.append(art)
    path.write_text(json.dumps({"version": 1, "articles": out}), encoding="utf-8")


def peak_rss_kb() -> int:
    """This process's peak RSS since exec (``VmHWM``).

    ``ru_maxrss`` is not used: on Linux it keeps the parent's RSS at fork time across exec,
    and the parent holds the 100,000-article seed.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(base_url: str, token: str, work: Path) -> None:
    """One export run, in its own process; prints a JSON line of figures."""
    from edigw.channels.local import LocalOutboundChannel, LocalOutboundSettings
    from edigw.ecolix.client import EcolixClient
    from edigw.journal.archive_folder import FolderArchive
    from edigw.journal.store import Journal
    from edigw.outbound.export import run_export
    from edigw.outbound.flow import ExportFlow

    flow = ExportFlow(
        partner="bench",
        flow="articles",
        resource="articles.list",
        template=TEMPLATE,
        filename="articles_{seq:05d}.csv",
        timezone="Europe/Paris",
    )
    with EcolixClient(base_url, token) as client:
        journal = Journal.open(f"sqlite:///{work / 'journal.sqlite'}")
        started = time.perf_counter()
        result = run_export(
            flow,
            client=client,
            journal=journal,
            archive=FolderArchive(work / "archive"),
            channel=LocalOutboundChannel(LocalOutboundSettings(work / "out")),
            now=datetime.now(UTC),
            work_dir=work / "work",
        )
        elapsed = time.perf_counter() - started
        journal.close()
    peak_kb = peak_rss_kb()
    print(
        json.dumps(
            {
                "records": result.records,
                "calls": result.calls,
                "seconds": elapsed,
                "peak_mb": peak_kb / 1024,
                "bytes": result.delivered.size if result.delivered else 0,
            }
        )
    )


RAW_TEMPLATE = """{{ cols|csvrow }}
{% for a in records %}
{{ [a.code, a.ean13, a.label, a.family, a.unit, a.sale_price, a.vat_rate, a.weight_kg, a.active, a.updated_at]|csvrow }}
{% endfor %}
"""


@dataclass(frozen=True)
class RenderRatios:
    """Medians over interleaved rounds: seconds of each side and the per-round ratios.

    Each round runs the shipped template, the raw template and ``csv.writer`` one after the
    other, so that a burst of load from other work hits all three; the ratio is taken per
    round, then the median. Processor time (this process's) is reported beside wall time:
    on a shared machine it is the steadier measure of what rendering costs.
    """

    tpl: float
    raw: float
    plain: float
    tpl_ratio: float
    raw_ratio: float
    tpl_cpu_ratio: float
    raw_cpu_ratio: float
    rounds: int


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def render_ratio(base_url: str, token: str, work: Path, rounds: int = 7) -> RenderRatios:
    """The shipped template, the same columns unformatted, and csv.writer, interleaved."""
    from edigw.ecolix.client import EcolixClient
    from edigw.outbound.render import load_template, render_to_file

    with EcolixClient(base_url, token) as client:
        records = list(client.iter_list("articles.list", page_size=1000))
    template = load_template(TEMPLATE, timezone="Europe/Paris")
    (work / "raw.csv.j2").write_text(RAW_TEMPLATE, encoding="utf-8")
    raw = load_template(work / "raw.csv.j2")

    def plain() -> None:
        with (work / "plain.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, delimiter=";")
            writer.writerow(COLUMNS)
            for rec in records:
                writer.writerow([rec[c] for c in COLUMNS])

    walls: dict[str, list[float]] = {"tpl": [], "raw": [], "plain": []}
    cpus: dict[str, list[float]] = {"tpl": [], "raw": [], "plain": []}
    runs: dict[str, Callable[[], object]] = {
        "tpl": lambda: render_to_file(template, iter(records), work / "tpl.csv", context={}),
        "raw": lambda: render_to_file(
            raw, iter(records), work / "raw.csv", context={"cols": COLUMNS}
        ),
        "plain": plain,
    }
    for _ in range(rounds):
        for name, run in runs.items():
            wall, cpu = _timed(run)
            walls[name].append(wall)
            cpus[name].append(cpu)

    def ratios(times: dict[str, list[float]], name: str) -> float:
        return median(a / b for a, b in zip(times[name], times["plain"], strict=True))

    return RenderRatios(
        tpl=median(walls["tpl"]),
        raw=median(walls["raw"]),
        plain=median(walls["plain"]),
        tpl_ratio=ratios(walls, "tpl"),
        raw_ratio=ratios(walls, "raw"),
        tpl_cpu_ratio=ratios(cpus, "tpl"),
        raw_cpu_ratio=ratios(cpus, "raw"),
        rounds=rounds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved render rounds")
    parser.add_argument(
        "--child", nargs=3, metavar=("URL", "TOKEN", "WORK"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], Path(args.child[2]))
        return
    from tests.fixtures.sandbox import SandboxProcess  # not in the child: RSS is the export's

    with tempfile.TemporaryDirectory(prefix="edigw-bench-export-") as tmp:
        folder = Path(tmp)
        seed = folder / "seed.json"
        make_seed(seed, args.articles)
        print(f"seeding a sandbox with {args.articles:,} articles ...", flush=True)
        sandbox = SandboxProcess(folder / "sandbox.sqlite", seed=seed).start()
        try:
            work = folder / "run"
            work.mkdir()
            out = subprocess.run(
                [sys.executable, __file__, "--child", sandbox.base_url, sandbox.token, str(work)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            figures = json.loads(out.strip().splitlines()[-1])
            load_before = os.getloadavg()[0]
            ratios = render_ratio(sandbox.base_url, sandbox.token, folder, args.rounds)
            load_after = os.getloadavg()[0]
        finally:
            sandbox.stop()
    rate = figures["records"] / figures["seconds"]
    print()
    print("| figure | value | goal |")
    print("| --- | --- | --- |")
    print(f"| articles exported | {figures['records']:,} ({figures['bytes'] / 1e6:.1f} MB CSV) | |")
    print(
        f"| whole run (HTTP paging + render + archive + delivery + journal) | {figures['seconds']:.1f} s, {rate:,.0f} records/s | |"
    )
    print(f"| Ecolix calls | {figures['calls']} (pages of 1000) | fewest |")
    print(f"| peak RSS of the exporting process | {figures['peak_mb']:.0f} MB | < 150 MB |")
    r = ratios
    print(
        f"| csv.writer, the 10 raw columns → file (median of {r.rounds} rounds) "
        f"| {r.plain:.2f} s | |"
    )
    print(
        f"| template, the same 10 raw columns (csvrow) → file | {r.raw:.2f} s, "
        f"{r.raw_ratio:.2f}× csv.writer ({r.raw_cpu_ratio:.2f}× in processor time) | ≤ 3× |"
    )
    print(
        "| shipped webshop-articles.csv.j2 (decimal commas, VAT-incl. price, Paris time) → file "
        f"| {r.tpl:.2f} s, {r.tpl_ratio:.2f}× csv.writer ({r.tpl_cpu_ratio:.2f}× in processor "
        "time) | ≤ 3× |"
    )
    print()
    print(
        f"load average (1 min) {load_before:.1f} before the render rounds, {load_after:.1f} after"
    )


if __name__ == "__main__":
    main()

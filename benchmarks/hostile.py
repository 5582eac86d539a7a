"""Hostile files through the mapping: outcome, seconds and peak memory of each.

Usage::

    python benchmarks/hostile.py              # every case (generates ~150 MB of files)
    python benchmarks/hostile.py --only xlsx  # the cases whose name contains "xlsx"
    python benchmarks/hostile.py --corpus     # only the test corpus (small files, seconds)

Each case is generated into a temporary folder and mapped in its own subprocess with the
default flow limits, so that the peak RSS (VmHWM) is the file's alone. The big cases are the
issue's figures; the small ones are the corpus that ``tests/test_hostile_corpus.py`` drops
into a running gateway (``tests/support/hostile_corpus.py``), mapped with the shipped mappings. The issue's bar: no case
kills the process, every refusal is located, and no case goes over 300 MB. Prints a Markdown
table.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.mapping import generate, write_xml
from tests.support import hostile
from tests.support.hostile_corpus import FLOWS, Case, corpus

CSV_HEADER = "Order;Date;Customer;SKU;Qty;Price;Payment;Total;Transaction;Paid;Libellé\n"


def csv_line(order: str) -> str:
    return f"{order};03/11/2026;C0001;SKU-0001;2;12,50;CB;25,00;TX-1;03/11/2026 10:15;Article\n"


def huge_order_csv(folder: Path) -> Path:
    """The issue's case: one order of 200,000 lines between two small ones."""
    path = folder / "huge-order.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write(CSV_HEADER + csv_line("W-1") * 3)
        f.write(csv_line("4711") * 200_000)
        f.write(csv_line("W-3") * 2)
    return path


def separators_csv(folder: Path) -> Path:
    """One line of 50 million separators: as many cells."""
    path = folder / "separators.csv"
    path.write_text(CSV_HEADER + csv_line("W-1") + ";" * 50_000_000 + "\n")
    return path


def far_cell(ref: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = hostile.workbook(folder / f"far-{ref}.xlsx", [list(_XLSX_HEADER)], title="Orders")
        row = "".join(c for c in ref if c.isdigit())
        cell = f'<c r="{ref}" t="inlineStr"><is><t>x</t></is></c>'
        return hostile.add_rows(path, f'<row r="{row}">{cell}</row>')

    return make


def big_cell(folder: Path) -> Path:
    """One 64 MB cell of text that compresses like text (about 2:1)."""
    rng = random.Random(7)
    text = "".join(rng.choices("abcdefghijklmnop ", k=64 << 20))
    path = hostile.workbook(folder / "big-cell.xlsx", [list(_XLSX_HEADER)], title="Orders")
    cell = f'<c r="A2" t="inlineStr"><is><t>{text}</t></is></c>'
    return hostile.add_rows(path, f'<row r="2">{cell}</row>')


def repeated_strings(folder: Path) -> Path:
    """One 30,000-character shared string referred to by 40,000 cells (1.2 GB as cells)."""
    cells = [(f"{c}{r}", 0) for r in range(2, 4002) for c in "ABCDEFGHIJ"]
    path = folder / "repeated-strings.xlsx"
    hostile.shared_strings_workbook(path, ["z" * 30_000], cells)
    with zipfile.ZipFile(path) as archive:  # rename the sheet to the mapping's
        parts = {n: archive.read(n) for n in archive.namelist()}
    parts["xl/workbook.xml"] = parts["xl/workbook.xml"].replace(b'name="Comptes"', b'name="Orders"')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return path


def huge_xml_order(folder: Path) -> Path:
    """One <Order> of 300,000 lines (about 25 MB) between two small ones."""
    path = folder / "huge-order.xml"
    write_xml(path, 2)
    text = path.read_text()
    line = "   <Line><Sku>SKU-0001</Sku><Qty>1</Qty><Price>1.50</Price></Line>\n"
    text = text.replace("  <Lines>\n", "  <Lines>\n" + line * 300_000, 1)
    path.write_text(text)
    return path


def big_xml_feed(folder: Path) -> Path:
    path = folder / "feed-1gb.xml"
    write_xml(path, 20_000, target_bytes=1 << 30)
    return path


_XLSX_HEADER = (
    "Order",
    "Date",
    "Customer",
    "EAN",
    "Qty",
    "Price",
    "Payment",
    "Total",
    "Transaction",
    "Paid",
)


ROOT = Path(__file__).resolve().parents[1]


def written(case: Case) -> Callable[[Path], Path]:
    """The corpus case as the benchmark's maker: write it into the folder, return its path."""
    return lambda folder: case.write(folder)


def child(mapping: Path, data: Path, seconds: float) -> None:
    from edigw.formats.limits import ReaderLimits
    from edigw.mapping import load_mapping

    compiled = load_mapping(mapping)
    started = time.perf_counter()
    outcome: dict[str, object] = {}
    try:
        docs = failed = 0
        # Streamed, as the readers are: the documents are counted, not kept.
        limits = ReaderLimits(max_seconds=seconds)
        for doc in compiled.map_file(data, source_name=data.name, limits=limits):
            docs += 1
            if not doc.ok:
                failed += 1
                outcome.setdefault("first", str(doc.problems[0])[:160])
        outcome["result"] = f"{docs} documents, {failed} failed"
    except Exception as exc:  # the outcome to report, whatever it is
        outcome["result"] = f"refused ({type(exc).__name__})"
        outcome["first"] = str(exc)[:160]
    outcome["seconds"] = time.perf_counter() - started
    outcome["bytes"] = data.stat().st_size
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            outcome["rss_mb"] = int(line.split()[1]) / 1024
    print(json.dumps(outcome))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="Run the cases whose name contains this.")
    parser.add_argument(
        "--corpus", action="store_true", help="Run only the test corpus (small files)."
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(Path(options.child[0]), Path(options.child[1]), float(options.child[2]))
        return
    # The 1 GB feed is 20 times the default max_size of a flow: it gets an hour, not 5 min.
    cases: list[tuple[str, str, Callable[[Path], Path]]] = [
        ("csv: one order of 200,000 lines", "csv", huge_order_csv),
        ("csv: a line of 50,000,000 separators", "csv", separators_csv),
        ("xlsx: a cell at XFD1048576 (5 KB)", "xlsx", far_cell("XFD1048576")),
        ("xlsx: a cell at Z1000000", "xlsx", far_cell("Z1000000")),
        ("xlsx: a 64 MB cell", "xlsx", big_cell),
        ("xlsx: a 30,000-char shared string in 40,000 cells", "xlsx", repeated_strings),
        ("xml: one order of 300,000 lines", "xml", huge_xml_order),
        ("xml: a 1 GB feed of small orders", "xml", big_xml_feed),
    ]
    with tempfile.TemporaryDirectory(prefix="edigw-hostile-") as tmp:
        folder = Path(tmp)
        generate(folder, 10)  # mappings and lookup tables
        runs: list[tuple[str, Path, Callable[[Path], Path]]] = []
        if not options.corpus:
            runs += [(name, folder / f"{fmt}.yaml", make) for name, fmt, make in cases]
        for case in corpus():
            runs.append((f"corpus: {case.id}", ROOT / "mappings" / FLOWS[case.flow], written(case)))
        table = [
            "| case | file MB | outcome | first problem | s | peak RSS MB |",
            "|---|---|---|---|---|---|",
        ]
        for name, mapping, make in runs:
            if options.only not in name:
                continue
            data = make(folder)
            seconds = "3600" if "1 GB" in name else "300"
            command = [sys.executable, __file__, "--child", str(mapping), str(data), seconds]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            data.unlink()
            if done.returncode != 0:
                table.append(
                    f"| {name} | | died ({done.returncode}) | {done.stderr[-120:]!r} | | |"
                )
                continue
            out = json.loads(done.stdout.strip().splitlines()[-1])
            size = out["bytes"] / 1e6
            first = str(out.get("first", "")).replace("|", "\\|")
            table.append(
                f"| {name} | {size:.1f} | {out['result']} | {first} | "
                f"{out['seconds']:.2f} | {out['rss_mb']:.0f} |"
            )
        print("\n".join(table))


if __name__ == "__main__":
    main()

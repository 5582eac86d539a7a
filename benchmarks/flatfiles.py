"""Flat-file figures: 500 small record-typed CSV files, and a big fixed-width file.

Usage::

    python benchmarks/flatfiles.py               # 500 files + a 100,000-line fixed-width file
    python benchmarks/flatfiles.py --lines 1000000   # a bigger fixed-width file (memory stays flat)

* 500 files of two orders each (1-5 lines), ``HEADER,number,buyer,date`` /
  ``LINE,n,article,quantity,description``, mapped in one process (read + map + contract
  validation; the mapping is compiled once): files/s and orders/s. This is the mapping
  alone; edigw against Bots, on the whole pipeline and in the same run, is
  ``benchmarks/pipeline.py --with-bots DIR``.
* A fixed-width file (01 consignment + 4 handling units per consignment, with a 99 trailer):
  lines/s and peak RSS of mapping it, against reading and slicing the same lines in plain
  Python (every field cut, no objects).

Each case runs in its own subprocess so that peak RSS figures are separate. Prints a Markdown
table (the README's "Flat-file figures").
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CSV_MAPPING = """\
source:
  format: flat-delimited
  layout:
    kind: delimited
    delimiter: ","
    quote: '"'
    encoding: utf-8
    record_type: {column: 1}
    records:
      HEADER: {fields: [type, number, buyer, date]}
      LINE: {fields: [type, n, article, quantity, description]}
    structure:
      header: HEADER
      children: [{record: LINE, min: 1, max: 500}]
documents: {per: record}
target: orders.create
key: number
fields:
  customer_code: {from: buyer, required: true, case: upper}
  external_reference: {from: number, required: true}
  order_date: {from: date, type: date, required: true}
  lines:
    each: LINE
    required: true
    fields:
      article_code: {from: article, required: true}
      quantity: {from: quantity, type: decimal, required: true}
  payment:
    fields:
      method: {value: CARD}
      amount: {value: "0.00"}
      transaction_id: {from: number}
      paid_at: {from: date, type: datetime, format: "%Y-%m-%d"}
"""


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_small_files(folder: Path, count: int) -> int:
    rng = random.Random(7)
    orders = 0
    for i in range(count):
        rows = []
        for j in range(2):
            orders += 1
            rows.append(f"HEADER,W-{i:04d}-{j},CUS-{rng.randint(1, 50):04d},2026-11-28")
            for n in range(1, rng.randint(1, 5) + 1):
                art = rng.randint(1, 300)
                rows.append(f'LINE,{n},ART-{art:04d},{rng.randint(1, 9)},"Article {art}, boîte"')
        (folder / f"orders_{i:04d}.csv").write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    return orders


def make_fixed_file(path: Path, lines: int) -> int:
    units = 4
    consignments = lines // (units + 1)
    with path.open("w", encoding="cp1252", newline="\r\n") as out:
        for c in range(consignments):
            out.write(
                f"01{f'KN-{c:09d}':<20}{f'CMD-{100001 + c % 40}':<20}2026120308001000004"
                f"{'Société Générale':<39}\n"
            )
            for u in range(units):
                out.write(
                    f"02{c:018d}{u + 1:03d}{f'ART-{u + 1:04d}':<15}{2000:09d}{12550:08d}PAL  \n"
                )
        out.write(f"99{consignments:06d}{consignments * (units + 1) + 1:08d}    \n")
    return consignments * (units + 1) + 1


def case_small(folder: str) -> dict[str, float]:
    from edigw.mapping import load_mapping

    root = Path(folder)
    mapping = load_mapping(root / "mapping.yaml")
    files = sorted(root.glob("orders_*.csv"))
    started = time.perf_counter()
    documents = bad = 0
    for path in files:
        for doc in mapping.map_file(path, source_name=path.name):
            documents += 1
            bad += not doc.ok
    seconds = time.perf_counter() - started
    assert bad == 0, f"{bad} documents failed"
    return {"seconds": seconds, "files": len(files), "documents": documents, "rss": peak_rss_mb()}


def case_fixed(path: str) -> dict[str, float]:
    from edigw.mapping import load_mapping

    mapping = load_mapping(ROOT / "mappings" / "flat-carrier-appointments-fixed.yaml")
    started = time.perf_counter()
    documents = bad = 0
    for doc in mapping.map_file(Path(path), source_name="big.txt"):
        documents += 1
        bad += not doc.ok
    seconds = time.perf_counter() - started
    assert bad == 0, f"{bad} documents failed"
    return {"seconds": seconds, "documents": documents, "rss": peak_rss_mb()}


def case_reader(path: str) -> dict[str, float]:
    """The fixed-width reader alone: every record of every document, every value read."""
    from edigw.formats import reader_for

    reader = reader_for(
        {"format": "flat-fixed", "layout": str(ROOT / "layouts" / "kuehne-appointments.yaml")}
    )
    started = time.perf_counter()
    fields = 0
    for doc in reader.records(Path(path), source_name="big.txt"):
        fields += len([doc.value(f.name) for f in doc.layout.fields])
        for unit in doc.children("units"):
            fields += len([unit.value(f.name) for f in unit.layout.fields])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "fields": fields, "rss": peak_rss_mb()}


def case_raw(path: str) -> dict[str, float]:
    """Plain Python: read the lines and slice every field (the floor for any reader)."""
    cuts = {
        "01": [(0, 2), (2, 22), (22, 42), (42, 50), (50, 54), (54, 58), (58, 61), (61, 100)],
        "02": [(0, 2), (2, 20), (20, 23), (23, 38), (38, 47), (47, 55), (55, 60)],
        "99": [(0, 2), (2, 8), (8, 16)],
    }
    started = time.perf_counter()
    fields = 0
    with open(path, encoding="cp1252", newline="") as handle:
        for line in handle:
            text = line.rstrip("\r\n")
            fields += len([text[a:b].strip() for a, b in cuts[text[:2]]])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "fields": fields, "rss": peak_rss_mb()}


CASES = {"small": case_small, "fixed": case_fixed, "reader": case_reader, "raw": case_raw}


def run_case(name: str, arg: str) -> dict[str, float]:
    command = [sys.executable, __file__, "--case", name, arg]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout)
    return result


def best(name: str, arg: str, runs: int) -> dict[str, float]:
    """Fastest of ``runs`` (the machine is shared); peak RSS from that run."""
    return min((run_case(name, arg) for _ in range(runs)), key=lambda r: r["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", nargs=2, metavar=("NAME", "ARG"), help=argparse.SUPPRESS)
    parser.add_argument("--lines", type=int, default=100_000, help="fixed-width file lines")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (best kept)")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(CASES[args.case[0]](args.case[1])))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "mapping.yaml").write_text(CSV_MAPPING, encoding="utf-8")
        orders = make_small_files(folder, 500)
        big = folder / "big.txt"
        lines = make_fixed_file(big, args.lines)
        size_mb = big.stat().st_size / 1e6
        small = best("small", str(folder), args.runs)
        fixed = best("fixed", str(big), args.runs)
        reader = best("reader", str(big), args.runs)
        raw = best("raw", str(big), args.runs)
    assert small["documents"] == orders
    files_s = small["files"] / small["seconds"]
    print(
        f"Flat-file figures ({time.strftime('%Y-%m-%d')}, best of {args.runs}, Python {sys.version.split()[0]})\n"
    )
    print("| case | time | rate | peak RSS |")
    print("|---|---|---|---|")
    print(
        f"| 500 record-typed CSV files, {orders} orders (read + map + validate) "
        f"| {small['seconds']:.2f} s | {files_s:,.0f} files/s, {orders / small['seconds']:,.0f} orders/s "
        f"| {small['rss']:.0f} MB |"
    )
    print(
        f"| fixed-width {lines:,} lines ({size_mb:.1f} MB), {fixed['documents']:,} delivery notes "
        f"| {fixed['seconds']:.2f} s | {lines / fixed['seconds']:,.0f} lines/s | {fixed['rss']:.0f} MB |"
    )
    print(
        f"| same file, the fixed-width reader alone (structure + trailer checks, every value) "
        f"| {reader['seconds']:.2f} s | {lines / reader['seconds']:,.0f} lines/s | {reader['rss']:.0f} MB |"
    )
    print(
        f"| same file, plain Python read + slice every field "
        f"| {raw['seconds']:.2f} s | {lines / raw['seconds']:,.0f} lines/s | {raw['rss']:.0f} MB |"
    )
    print(
        f"\nMapping the fixed-width file costs {fixed['seconds'] / raw['seconds']:.1f}× the raw "
        "read-and-slice; memory holds one consignment at a time."
    )


if __name__ == "__main__":
    main()

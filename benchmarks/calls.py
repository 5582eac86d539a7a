"""Calls not wasted: what a re-sent customer file with one row changed costs in Ecolix calls.

    python benchmarks/calls.py [--customers 50] [--quick]

A web shop exports its whole customer list (50 customers, the shipped
``ecommerce-customers-csv`` format) and drops it; the gateway upserts each customer. The shop
then drops the same list again with one customer's phone number changed. Prints the Ecolix
calls each drop made, per operation, as the gateway's Ecolix client counted them (every HTTP
request it sent, retries included) and as the sandbox answered them (``/_sandbox/calls``),
the documents journalled ``unchanged`` (not sent: Ecolix already held their payload), and the
customers the sandbox holds afterwards.

Only the changed customer needs a call the second time (issue 15 goal: exactly 1). The
gateway runs in threads of this process, the sandbox in its own process. Figures are printed
with the machine's load, never asserted.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from harness import BENCH_FLOW, inbox_empty, load_line, say, start_sandbox

from edigw.pipeline.assembly import open_parts
from edigw.pipeline.runtime import Gateway
from tests.fixtures.gateway import inbound_flow, write_workspace
from tests.support.customers import customer_rows, write_export

FILE_NAME = "clients_export.csv"
TIMEOUT = 600.0


def answered(calls: dict[str, dict[str, int]]) -> int:
    """API calls the sandbox answered, all operations and statuses."""
    return sum(n for statuses in calls.values() for n in statuses.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="Same as the default (50).")
    args = parser.parse_args()
    count = args.customers
    work = Path(tempfile.mkdtemp(prefix="edigw-calls-"))
    sandbox = start_sandbox(work / "sandbox")
    try:
        ws = write_workspace(
            work / "gw",
            base_url=sandbox.base_url,
            token=sandbox.token,
            flows={
                "webshop": {
                    "customers": inbound_flow(
                        "ecommerce-customers-csv.yaml", "webshop", "customers", **BENCH_FLOW
                    )
                }
            },
        )
        inbox = ws.inbox("webshop", "customers")
        say(f"calls: a {count}-customer export dropped, then again with one row changed")
        say(f"before: {load_line()}")
        before = sandbox.counts().get("customer", 0)
        drops: list[tuple[str, Counter[str], int, int, float]] = []
        with open_parts(ws.load()) as parts:
            gateway = Gateway(parts)
            gateway.start()
            try:
                for label, rows in (
                    ("first drop", customer_rows(count)),
                    ("same file, one phone number changed", customer_rows(count, changed=7)),
                ):
                    calls0 = Counter(parts.client.usage.by_operation)
                    answered0 = answered(sandbox.calls())
                    t0 = time.perf_counter()
                    write_export(inbox / FILE_NAME, rows)
                    while not inbox_empty(inbox):
                        if time.perf_counter() - t0 > TIMEOUT:
                            raise SystemExit(f"{label}: not done within {TIMEOUT:.0f} s")
                        time.sleep(0.025)
                    made = Counter(parts.client.usage.by_operation)
                    made.subtract(calls0)
                    made = +made  # drop the zeros
                    wall = time.perf_counter() - t0
                    by_sandbox = answered(sandbox.calls()) - answered0
                    drops.append((label, made, sum(made.values()), by_sandbox, wall))
            finally:
                gateway.stop()
                gateway.join(30)
            files = parts.journal.files(limit=10)
            states = [row.state for row in files]
            unchanged = [
                sum(d.state == "unchanged" for d in parts.journal.documents_of(f.id))
                for f in sorted(files, key=lambda f: f.id)
            ]
        created = sandbox.counts().get("customer", 0) - before
    finally:
        sandbox.stop()
        shutil.rmtree(work, ignore_errors=True)
    say("")
    say(
        "| drop | Ecolix calls (client) | answered by the sandbox | by operation | unchanged | time |"
    )
    say("|---|---|---|---|---|---|")
    for (label, made, total, by_sandbox, wall), kept in zip(drops, unchanged, strict=True):
        by_op = ", ".join(f"{op} {n}" for op, n in sorted(made.items())) or "none"
        say(f"| {label} | {total} | {by_sandbox} | {by_op} | {kept} | {wall:.2f} s |")
    say(
        f"files: {', '.join(states)}; {created} customers added to the sandbox; "
        f"the second drop made {drops[1][2]} calls (issue 15 goal: exactly 1)"
    )
    say(f"after: {load_line()}")


if __name__ == "__main__":
    main()

"""One call budget shared by 1, 2 and 3 nodes: the share of the agreement used, and 429s.

    python benchmarks/call_budget.py [--calls 20] [--period 2] [--windows 10] [--quick]

Each node is an ``EcolixClient`` of its own with 3 threads calling Ecolix as fast as the
budget lets them; the budget is kept in a PostgreSQL journal (``SharedLedger``), as on nodes
sharing one. The sandbox enforces the same agreement (``--calls`` per ``--period`` seconds,
which stands for the minute: the rule does not depend on the window's length), so every call
the nodes send over it is a 429. Prints, for 1, 2 and 3 nodes: calls used against those the
agreement allows over ``--windows`` periods, the same as calls a minute at a 60-second window's
scale (which counts calls as if they took no time), the share of the slots held while a call
was told to wait (the rule's own measure of a budget used in full, whatever the calls take: see
``tests/fixtures/budget_nodes.py``), the most slots held at once, and the 429 answers; then 3 nodes each keeping a budget of its own (before the shared
budget) for contrast. The database is ``EDIGW_TEST_POSTGRES_URL`` (default: the local ``test``
database), in a schema of its own dropped afterwards. Printed with the machine's load, never
asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from harness import load_line, say, start_sandbox
from sqlalchemy.engine import make_url

from edigw.journal import Journal
from tests.fixtures.budget_nodes import NodesRun, run_nodes
from tests.fixtures.databases import POSTGRES_URL, postgres_schema_url


def line(label: str, run: NodesRun) -> str:
    """Calls a minute used against the agreement's, e.g. 20 calls per 2 s = 600 a minute."""
    per_minute = 60.0 / run.period
    used = run.used / run.windows * per_minute
    return (
        f"{label:<32} {used:6.0f} calls/min of {run.calls * per_minute:.0f} agreed "
        f"= {100 * run.share:5.1f}% ({run.used} of {run.allowed} calls); slots held while a "
        f"call waited {100 * run.held_share:5.1f}%, at most {run.most_held} at once; "
        f"{run.throttled} x 429, {run.errors} other errors"
    )


def _conninfo() -> str:
    return make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="The agreement: calls per period.")
    parser.add_argument(
        "--period", type=float, default=2.0, help="The window, seconds (stands for 60)."
    )
    parser.add_argument("--windows", type=int, default=10, help="Periods measured per run.")
    parser.add_argument("--threads", type=int, default=3, help="Threads per node.")
    parser.add_argument("--quick", action="store_true", help="Three periods per run.")
    args = parser.parse_args()
    windows = 3 if args.quick else args.windows
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    url = postgres_schema_url(schema)
    with (
        tempfile.TemporaryDirectory(prefix="edigw-budget-") as tmp,
        psycopg.connect(_conninfo(), autocommit=True) as admin,
    ):
        admin.execute(f'CREATE SCHEMA "{schema}"')
        sandbox = start_sandbox(Path(tmp), rate_limit=f"{args.calls}/{args.period:g} seconds")
        try:
            Journal.open(url).close()
            say(
                f"an agreement of {args.calls} calls per {args.period:g} s (sandbox and nodes), "
                f"{args.threads} threads per node, {windows} periods per run; {load_line()}"
            )
            for nodes in (1, 2, 3):
                run = run_nodes(
                    sandbox,
                    url,
                    nodes=nodes,
                    calls=args.calls,
                    period=args.period,
                    windows=windows,
                    threads=args.threads,
                )
                say(line(f"{nodes} node(s), shared budget", run))
                time.sleep(args.period)  # the next run starts on an empty window
            run = run_nodes(
                sandbox,
                None,
                nodes=3,
                calls=args.calls,
                period=args.period,
                windows=windows,
                threads=args.threads,
            )
            say(line("3 nodes, a budget each (before)", run))
        finally:
            sandbox.stop()
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()

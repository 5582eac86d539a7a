"""A running gateway imports the heavy libraries of a feature only when its flows use it.

Why: the idle gateway's memory is mostly imports (issue 15: 120 MB peak for one big file);
paramiko with cryptography, lxml and croniter weigh 22 MB together, psycopg (the PostgreSQL
driver, with its libpq) 22 MB on its own. Checked in a fresh
interpreter, since this test process has imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.gateway import ROOT, inbound_flow, write_workspace

PROBE = """
import json, sys, time
from pathlib import Path
from tests.fixtures.gateway import running_gateway, Workspace

ws = Workspace(Path(sys.argv[1]), Path(sys.argv[2]), {"ECOLIX_TOKEN": "t"})
with running_gateway(ws):
    time.sleep(0.3)
print(json.dumps(sorted(m for m in ("paramiko", "cryptography", "lxml", "croniter", "psycopg") if m in sys.modules)))
"""


def test_a_gateway_with_one_local_csv_flow_imports_no_sftp_xml_cron_or_postgresql_library(
    tmp_path: Path,
) -> None:
    ws = write_workspace(
        tmp_path / "gw",
        base_url="http://127.0.0.1:9",
        token="t",
        flows={
            "webshop": {"orders": inbound_flow("ecommerce-orders-csv.yaml", "webshop", "orders")}
        },
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ws.root), str(ws.config_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ws.root,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


OPEN_TWICE = """
import json, sys
from edigw.journal import Journal

url = sys.argv[1]
Journal.open(url).close()  # created and migrated: Alembic runs
created = "alembic" in sys.modules
for name in [m for m in sys.modules if m == "alembic" or m.startswith(("alembic.", "mako"))]:
    del sys.modules[name]
Journal.open(url).close()  # at head already
print(json.dumps([created, "alembic" in sys.modules]))
"""


def test_opening_a_journal_already_at_head_does_not_import_alembic(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", OPEN_TWICE, f"sqlite:///{tmp_path / 'journal.sqlite'}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, False]

"""The hostile corpus through a running gateway: every file fails alone, located, or goes through.

One ``edigw run`` (a real subprocess, on a real sandbox) receives the whole corpus of
:mod:`tests.support.hostile_corpus`, good files interleaved, then good files dropped once the
hostile ones are final. Each case then asserts its exact outcome: the file's state, the
located message (file name and line:column, XPath, Sheet!cell, or size and limit), what
reached Ecolix (nothing of a failed file; exactly its good documents otherwise) and where the
source went. The run as a whole: the gateway never died, nothing stayed in an inbox, the good
files dropped after the hostile ones were done, and its peak memory stayed under 300 MB.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edigw.channels.base import error_report_name
from edigw.ecolix.client import EcolixClient
from edigw.errors import JournalError
from edigw.journal import FileRow, Journal
from tests.fixtures.gateway import FINAL, inbound_flow, wait_until, write_workspace
from tests.support.hostile_corpus import (
    FLOWS,
    FORMULA,
    LONG_NAME,
    MAX_SIZE,
    Case,
    corpus,
    good_csv,
    good_files,
)

pytestmark = pytest.mark.slow

PARTNER = "hostile"
CASES = corpus()
BEFORE, MIDDLE, AFTER = good_files("a"), good_files("b"), good_files("z")
#: The same bytes under two names, in one poll (they once overwrote each other's entry).
TWINS = [
    Case(f"twin-{n}", "orders-csv", f"twin-{n}.csv", good_csv("GTWIN"), "GTWIN") for n in (1, 2)
]


@dataclass
class Run:
    """What one gateway run over the corpus left behind."""

    root: Path
    files: dict[tuple[str, str], FileRow]
    documents: dict[int, list[Any]]
    orders: dict[str, dict[str, Any]]
    customers: dict[str, dict[str, Any]]
    peak_rss_mb: float
    alive: bool
    exit_code: int | None
    log: str
    inbox_left: list[str] = field(default_factory=list)

    def row(self, case: Case) -> FileRow:
        return self.files[(case.flow, case.name)]

    def reached(self, case: Case) -> list[str]:
        """The order numbers or customer codes of ``case`` that Ecolix holds."""
        pool = self.customers if case.flow == "customers-xlsx" else self.orders
        return sorted(k for k in pool if k.startswith(case.prefix + "-"))

    def message(self, case: Case) -> str:
        row = self.row(case)
        parts = [row.error or ""]
        parts += [f"{d.business_key}: {d.error}" for d in self.documents[row.id] if d.error]
        return "\n".join(parts)


def journal_files(url: str) -> list[FileRow]:
    try:
        journal = Journal.open(url, create=False)
    except JournalError:  # not created yet
        return []
    try:
        return journal.files(limit=None)
    finally:
        journal.close()


def all_final(url: str, expected: int) -> bool:
    rows = journal_files(url)
    return len(rows) >= expected and all(r.state in FINAL for r in rows)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def drop(ws: Any, cases: list[Case]) -> None:
    for case in cases:
        case.write(ws.inbox(PARTNER, case.flow))


def ecolix_objects(sandbox: Any, operation: str, key: str) -> dict[str, dict[str, Any]]:
    with EcolixClient(sandbox.base_url, sandbox.token) as client:
        return {str(o.get(key)): o for o in client.iter_list(operation)}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, sandbox: Any) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("hostile")
    flows = {
        name: inbound_flow(mapping, PARTNER, name, max_size=MAX_SIZE)
        for name, mapping in FLOWS.items()
    }
    ws = write_workspace(
        root / "gw", base_url=sandbox.base_url, token=sandbox.token, flows={PARTNER: flows}
    )
    half = len(CASES) // 2
    drop(ws, BEFORE + CASES[:half] + TWINS + MIDDLE + CASES[half:])
    url = ws.load().journal_url
    log = root / "gateway.log"
    env = {**os.environ, "ECOLIX_TOKEN": sandbox.token}
    command = [sys.executable, "-m", "edigw.cli", "run", "-c", str(ws.config_path)]
    with (
        log.open("ab") as out,
        subprocess.Popen(command, env=env, stdout=out, stderr=out, cwd=ws.root) as gateway,
    ):
        try:
            dropped = len(CASES) + len(BEFORE) + len(MIDDLE) + len(TWINS)
            wait_until(lambda: all_final(url, dropped), timeout=90, what="the corpus final")
            drop(ws, AFTER)
            wait_until(
                lambda: all_final(url, dropped + len(AFTER)),
                timeout=30,
                what="the good files after",
            )
            alive = gateway.poll() is None
            rss = peak_rss_mb(gateway.pid) if alive else 0.0
        finally:
            if gateway.poll() is None:
                gateway.send_signal(signal.SIGTERM)
                try:
                    gateway.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    gateway.kill()
    journal = Journal.open(url, create=False)
    try:
        rows = journal.files(limit=None)
        documents = {r.id: journal.documents_of(r.id) for r in rows}
    finally:
        journal.close()
    left = [
        f"{flow}/{p.name}"
        for flow in FLOWS
        for p in ws.inbox(PARTNER, flow).iterdir()
        if p.is_file()
    ]
    yield Run(
        root=ws.root,
        files={(r.flow, r.original_name): r for r in rows},
        documents=documents,
        orders=ecolix_objects(sandbox, "orders.list", "external_reference"),
        customers=ecolix_objects(sandbox, "customers.list", "code"),
        peak_rss_mb=rss,
        alive=alive,
        exit_code=gateway.returncode,
        log=log.read_text(errors="replace"),
        inbox_left=left,
    )


@dataclass(frozen=True, slots=True)
class Expect:
    """A case's outcome: the file's state, fragments of its located message, and the
    numbers (after ``PREFIX-``) of the orders or customers that must have reached Ecolix."""

    state: str
    says: tuple[str, ...] = ()
    reached: tuple[str, ...] = ()


ALL_ORDERS = ("1", "2")
ALL_ACCOUNTS = ("1", "2", "3", "4")
ENTITIES = "the XML declares entities in its DTD; edigw refuses them (entity-expansion bombs)"
NEVER_CLOSED = "a quoted value opened here is never closed (the file ends inside it)"
NUL = "control character U+0000 (NUL): refused"
LINE_LIMIT = (
    "the line has more than 1,000,000 characters, over the limit of 1,000,000 "
    "(limits.max_line_chars)"
)
NOT_XLSX = "not an .xlsx workbook (corrupt or another format): File is not a zip file"

EXPECTED: dict[str, Expect] = {
    "csv-empty": Expect("failed", ("empty.csv: no document found in the file",)),
    "csv-header-only": Expect("failed", ("header-only.csv: no document found in the file",)),
    "csv-truncated": Expect(
        "partially_failed",
        ("HC03-3: truncated.csv:7:6 field quantite [/lines/0/quantity]: required value missing",),
        ALL_ORDERS,
    ),
    "csv-unclosed-quote-unmapped": Expect("failed", (f"quote-unmapped.csv:3:165: {NEVER_CLOSED}",)),
    "csv-unclosed-quote-mapped": Expect("failed", (f"quote-mapped.csv:3:115: {NEVER_CLOSED}",)),
    "csv-mixed-encodings": Expect(
        "failed",
        (
            "mixed-encodings.csv:4:42: byte E9 is not UTF-8, yet the file holds UTF-8 text elsewhere",
        ),
    ),
    "csv-nul-byte": Expect("failed", (f"nul.csv:3:118: {NUL}",)),
    "csv-utf16-without-bom": Expect(
        "failed",
        (
            "utf16-le.csv:1: the file looks like UTF-16 little-endian (utf-16-le) text without a byte-order mark",
        ),
    ),
    "csv-utf16-with-bom": Expect("done", (), ALL_ORDERS),
    "csv-mixed-line-ends": Expect("done", (), ("1", "2", "3")),
    "csv-huge-line": Expect("failed", (f"huge-line.csv:5: {LINE_LIMIT}",)),
    "csv-million-separators": Expect("failed", (f"separators.csv:5: {LINE_LIMIT}",)),
    "csv-huge-order": Expect(
        "partially_failed",
        (
            "HC13-BIG: huge-order.csv:",
            "the document of num_commande HC13-BIG has more than 10,000 records, over the limit "
            "of 10,000 (limits.max_lines_per_document); it is refused before it is built",
        ),
        ALL_ORDERS,
    ),
    "csv-over-max-size": Expect(
        "failed", ("over-size.csv: file is ", f"bytes, larger than the limit of {MAX_SIZE}")
    ),
    "csv-formula-injection": Expect("done", (), ("1",)),
    "csv-binary": Expect("failed", ("binary.csv:1:1: byte C1 is not UTF-8",)),
    "name-spaces": Expect("done", (), ALL_ORDERS),
    "name-unicode": Expect("done", (), ALL_ORDERS),
    "name-leading-dash": Expect("done", (), ALL_ORDERS),
    "name-very-long": Expect("done", (), ALL_ORDERS),
    "name-very-long-failed": Expect("failed", (f"f{LONG_NAME}:3:118: {NUL}",)),
    "xml-empty": Expect("failed", ("empty.xml: malformed XML: no element found",)),
    "xml-truncated": Expect(
        "failed", ("truncated.xml:36:42: malformed XML: Premature end of data",)
    ),
    "xml-billion-laughs": Expect("failed", (f"laughs.xml:2: {ENTITIES}",)),
    "xml-entity-utf8": Expect("failed", (f"xxe-utf8.xml:2: {ENTITIES}",)),
    "xml-entity-utf16-bom": Expect("failed", (f"xxe-utf16-bom.xml:2: {ENTITIES}",)),
    "xml-entity-utf16-le-no-bom": Expect("failed", (f"xxe-utf16-le.xml:2: {ENTITIES}",)),
    "xml-entity-after-long-comment": Expect("failed", (f"xxe-comment.xml:3: {ENTITIES}",)),
    "xml-undefined-entity": Expect(
        "failed", ("undefined-entity.xml:5:24: the entity reference &xxe; is not defined here",)
    ),
    "xml-deep-nesting": Expect(
        "failed", ("deep.xml:18:776: elements nested deeper than 256 levels, edigw's XML limit",)
    ),
    "xml-huge-text": Expect(
        "failed",
        (
            "huge-text.xml:10: a text or attribute value of more than 1,000,000 characters, over the limit of 1,000,000 (limits.max_value_chars)",
        ),
    ),
    "xml-nul-byte": Expect(
        "failed", ("nul.xml:7:35: control character U+0000 (NUL): XML 1.0 forbids it",)
    ),
    "xml-binary": Expect("failed", ("binary.xml:1:1: malformed XML: Start tag expected",)),
    "xlsx-empty": Expect("failed", (f"empty.xlsx: {NOT_XLSX}",)),
    "xlsx-truncated-zip": Expect("failed", (f"truncated.xlsx: {NOT_XLSX}",)),
    "xlsx-far-cell-XFD1048576": Expect(
        "failed",
        (
            "far-cell.xlsx Comptes!XFD1048576: the sheet's cells span 1,048,576 rows x 16,384 columns (A1:XFD1048576, 17,179,869,184 cells), over the limit of 2,000,000 cells (limits.max_cells)",
        ),
    ),
    "xlsx-lying-dimension": Expect("done", (), ALL_ACCOUNTS),
    "xlsx-zip-bomb": Expect(
        "failed",
        (
            "bomb.xlsx: the workbook expands to ",
            "bytes, over the limit of 104,857,600 bytes (limits.max_expanded_bytes)",
        ),
    ),
    "xlsx-lying-zip-size": Expect(
        "failed",
        (
            "lying-size.xlsx: part xl/worksheets/sheet1.xml of the workbook is corrupt: its bytes do not match what the zip's directory declares",
        ),
    ),
    "xlsx-shared-strings-bomb": Expect(
        "failed",
        (
            "strings.xlsx Comptes!A1: the sheet's cells repeat 1,200,000,000 characters of shared strings, over the limit of 104,857,600 (limits.max_expanded_bytes)",
        ),
    ),
    "xlsx-control-character": Expect("failed", (f"control.xlsx Comptes!B4: {NUL}",)),
    "xlsx-formula-as-text": Expect("done", (), ALL_ACCOUNTS),
    "xlsx-formula-cell": Expect(
        "partially_failed",
        ("HC43-1: formula-cell.xlsx Comptes!B4 [/name]: required value missing",),
        ("2", "3", "4"),
    ),
    "xlsx-not-a-zip": Expect("failed", (f"not-a-zip.xlsx: {NOT_XLSX}",)),
}


def test_every_case_of_the_corpus_has_its_expected_outcome() -> None:
    assert sorted(EXPECTED) == sorted(c.id for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_hostile_file_has_its_exact_state_located_message_and_sent_documents(
    run: Run, case: Case
) -> None:
    expected = EXPECTED[case.id]
    row = run.row(case)
    message = run.message(case)
    assert row.state == expected.state, message
    for fragment in expected.says:
        assert fragment in message
    assert run.reached(case) == [f"{case.prefix}-{n}" for n in expected.reached]
    sent = {d.business_key for d in run.documents[row.id] if d.state == "done"}
    assert sent == {f"{case.prefix}-{n}" for n in expected.reached}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_source_is_kept_in_done_or_in_error_with_its_report(run: Run, case: Case) -> None:
    inbox = run.root / "inbox" / PARTNER / case.flow
    row = run.row(case)
    if EXPECTED[case.id].state == "done":
        assert (inbox / "done" / case.name).is_file()
        return
    assert (inbox / "error" / case.name).is_file(), "a failed file is kept, never lost"
    report = inbox / "error" / error_report_name(case.name)
    assert f"F-{row.id}" in report.read_text(encoding="utf-8")


def test_spreadsheet_formulas_reach_ecolix_as_the_text_they_are(run: Run) -> None:
    by_id = {c.id: c for c in CASES}
    csv_order = run.orders[by_id["csv-formula-injection"].prefix + "-1"]
    account = run.customers[by_id["xlsx-formula-as-text"].prefix + "-1"]
    assert csv_order["delivery_address"]["name"] == FORMULA
    assert account["name"] == FORMULA


def test_good_files_dropped_among_and_after_the_hostile_ones_are_all_done(run: Run) -> None:
    for case in BEFORE + MIDDLE + AFTER:
        assert run.row(case).state == "done", case.name
        wanted = ALL_ACCOUNTS if case.flow == "customers-xlsx" else ALL_ORDERS
        assert run.reached(case) == [f"{case.prefix}-{n}" for n in wanted], case.name


def test_the_same_bytes_under_two_names_in_one_poll_are_taken_once_and_neither_is_stuck(
    run: Run,
) -> None:
    states = sorted(run.files[("orders-csv", twin.name)].state for twin in TWINS)
    assert states == ["done", "skipped_duplicate"]
    assert run.reached(TWINS[0]) == [f"{TWINS[0].prefix}-{n}" for n in ALL_ORDERS]


def test_every_file_dropped_is_journalled_final_and_none_is_left_in_an_inbox(run: Run) -> None:
    dropped = CASES + BEFORE + MIDDLE + AFTER + TWINS
    assert sorted(run.files) == sorted((c.flow, c.name) for c in dropped)
    assert {r.state for r in run.files.values()} <= set(FINAL)
    assert run.inbox_left == []


def test_the_gateway_lived_through_the_corpus_and_stopped_cleanly(run: Run) -> None:
    assert run.alive, run.log[-2000:]
    assert run.exit_code == 0, run.log[-2000:]
    assert "Traceback" not in run.log


def test_the_gateway_peak_memory_stayed_under_300_mb(run: Run) -> None:
    assert 0 < run.peak_rss_mb < 300

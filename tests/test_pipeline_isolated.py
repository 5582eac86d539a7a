"""A suspect file (one a dead gateway was reading) is read again in a child process, whose
death, memory or time limit fails the file instead of the gateway."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from edigw.errors import EdigwError
from edigw.formats.limits import ReaderLimits
from edigw.journal import FileRow
from edigw.mapping import load_mapping
from edigw.pipeline import isolated
from edigw.pipeline.inbound import reading_status
from edigw.pipeline.isolated import (
    ISOLATED_TIMEOUT,
    ReaderKilled,
    isolated_timeout,
    map_isolated,
    validate_isolated,
)
from edigw.pipeline.validating import Verdict, validate_file
from edigw.processes import process_identity, start_ticks
from edigw.validation import DEFAULT_POLICY
from tests.fixtures.gateway import MAPPINGS, wait_until
from tests.support.orderfiles import HEADER, OrderFactory
from tests.support.slowfiles import slow_mapping, write_slow_file

ORDERS = MAPPINGS / "ecommerce-orders-csv.yaml"
EINVOICES = Path(__file__).parent / "fixtures" / "einvoices"
PAYABLE = b'<cbc:PayableAmount currencyID="EUR">208.03</cbc:PayableAmount>'
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def readers(parent: int) -> list[psutil.Process]:
    """The isolated readings running under ``parent`` (a child that ended meanwhile, or
    one another test left as a zombie, has no command line to read: not one of them)."""
    found = []
    for child in psutil.Process(parent).children(recursive=True):
        try:
            if "edigw.pipeline.isolated" in " ".join(child.cmdline()):
                found.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return found


def test_an_isolated_reading_gives_the_documents_a_reading_in_the_gateway_gives(
    tmp_path: Path,
) -> None:
    sample = next((MAPPINGS.parent / "samples/ecommerce/ecommerce-orders-csv").glob("*.csv"))
    in_gateway = list(load_mapping(ORDERS).map_file(sample, source_name="orders.csv"))

    isolated = map_isolated(ORDERS, sample, source_name="orders.csv", encoding=None)

    assert isolated == in_gateway


def test_an_isolated_reader_killed_by_a_signal_says_which(tmp_path: Path) -> None:
    mapping = slow_mapping(tmp_path / "mappings")
    big = write_slow_file(tmp_path / "big.csv", "SIG-1")
    outcome: list[object] = []
    reading = threading.Thread(
        target=lambda: outcome.append(
            map_isolated(mapping, big, source_name="big.csv", encoding=None)
        )
    )
    reading.start()
    try:
        wait_until(lambda: readers(os.getpid()) != [], what="the isolated reader started")
        [child] = readers(os.getpid())
        child.send_signal(signal.SIGABRT)  # what a native reader's abort() does
    finally:
        reading.join(timeout=60)
    assert outcome == [ReaderKilled("was killed by signal 6 (SIGABRT)")]


def test_an_isolated_reader_over_its_time_limit_is_stopped(tmp_path: Path) -> None:
    mapping = slow_mapping(tmp_path / "mappings")
    big = write_slow_file(tmp_path / "big.csv", "TIME-1")

    outcome = map_isolated(mapping, big, source_name="big.csv", encoding=None, timeout=1)

    assert outcome == ReaderKilled("did not finish within 1 s and was stopped")
    assert readers(os.getpid()) == []


def test_a_file_over_the_isolated_readers_memory_limit_fails_alone(tmp_path: Path) -> None:
    rows = OrderFactory.from_seed().order_rows("MEM-1", random.Random(1), max_lines=1)
    huge = tmp_path / "huge.csv"  # one order of 100,000 lines: about 500 MB to map
    huge.write_text(HEADER + "\r\n" + "\r\n".join(rows * 100_000) + "\r\n", encoding="utf-8")

    # A flow that allows such an order (the default limits refuse it before it is built).
    limits = ReaderLimits(max_lines_per_document=1_000_000)

    outcome = map_isolated(
        ORDERS, huge, source_name="huge.csv", encoding=None, limits=limits, memory=2**28
    )

    assert outcome == "huge.csv: reading it needs more than 256 MB of memory"


def test_an_isolated_reader_keeps_to_the_flows_limits(tmp_path: Path) -> None:
    sample = next((MAPPINGS.parent / "samples/ecommerce/ecommerce-orders-csv").glob("*.csv"))

    outcome = map_isolated(
        ORDERS,
        sample,
        source_name="orders.csv",
        encoding=None,
        limits=ReaderLimits(max_line_chars=20),
    )

    assert isinstance(outcome, str)
    assert outcome.startswith("orders.csv:1: the line has more than 20 characters")
    assert "(limits.max_line_chars)" in outcome


def test_an_isolated_reader_has_at_least_the_time_its_flow_allows() -> None:
    assert isolated_timeout(None) == ISOLATED_TIMEOUT
    assert isolated_timeout(ReaderLimits(max_seconds=30)) == ISOLATED_TIMEOUT
    assert isolated_timeout(ReaderLimits(max_seconds=3600)) == 3660


def test_stopping_the_gateway_cuts_an_isolated_reading_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = slow_mapping(tmp_path / "mappings")
    big = write_slow_file(tmp_path / "big.csv", "STOP-1")
    stop = threading.Event()
    start_reader = subprocess.Popen
    children: list[subprocess.Popen[bytes]] = []

    def frozen_reader(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        """The reader is started, then frozen (it cannot finish on its own, however fast
        the machine), and the gateway stops."""
        child = start_reader(*args, **kwargs)
        os.kill(child.pid, signal.SIGSTOP)
        children.append(child)
        stop.set()
        return child

    monkeypatch.setattr(isolated.subprocess, "Popen", frozen_reader)

    with pytest.raises(EdigwError, match="the gateway is stopping"):
        map_isolated(mapping, big, source_name="big.csv", encoding=None, stop=stop)

    [child] = children
    assert child.returncode == -signal.SIGKILL  # ended, and reaped
    assert readers(os.getpid()) == []


# ------------------------------------------------------------------ validating in isolation


def bad_total(tmp_path: Path) -> Path:
    """A UBL invoice whose amount due breaks BR-CO-16 (the rest of it is valid)."""
    data = (EINVOICES / "ubl-21-en16931.xml").read_bytes()
    assert data.count(PAYABLE) == 1
    path = tmp_path / "bad-total.xml"
    path.write_bytes(data.replace(PAYABLE, PAYABLE.replace(b"208.03", b"218.03")))
    return path


def test_an_isolated_validation_gives_the_verdict_a_validation_in_the_gateway_gives(
    tmp_path: Path,
) -> None:
    invoice = bad_total(tmp_path)
    in_gateway = validate_file(invoice, source_name="bad-total.xml", policy=DEFAULT_POLICY)

    isolated = validate_isolated(invoice, source_name="bad-total.xml", policy=DEFAULT_POLICY)

    assert isinstance(isolated, Verdict)
    assert isolated == in_gateway
    assert [f.rule for f in isolated.findings if f.blocking] == ["BR-CO-16"]


def test_a_file_that_is_no_e_invoice_is_left_to_the_reader_in_isolation_too() -> None:
    sample = next((MAPPINGS.parent / "samples/ecommerce/ecommerce-orders-csv").glob("*.csv"))

    assert validate_isolated(sample, source_name="orders.csv", policy=DEFAULT_POLICY) is None


def test_an_isolated_validation_killed_by_a_signal_says_which(tmp_path: Path) -> None:
    invoice = bad_total(tmp_path)
    outcome: list[object] = []
    validating = threading.Thread(
        target=lambda: outcome.append(
            validate_isolated(invoice, source_name="bad-total.xml", policy=DEFAULT_POLICY)
        )
    )
    validating.start()
    try:
        wait_until(lambda: readers(os.getpid()) != [], what="the isolated validation started")
        [child] = readers(os.getpid())
        child.send_signal(signal.SIGABRT)  # what SaxonC aborting its isolate does
    finally:
        validating.join(timeout=120)
    assert outcome == [ReaderKilled("was killed by signal 6 (SIGABRT)")]


# ------------------------------------------------------------------ who reads a file


def reading(reader: str | None, *, began: datetime = NOW) -> FileRow:
    return FileRow(
        id=1,
        partner="p",
        flow="f",
        channel="c",
        original_name="a.csv",
        source_path="/in/a.csv",
        size=1,
        sha256="0" * 64,
        archive_path="",
        state="received",
        error=None,
        received_at=began,
        parsed_at=None,
        finished_at=None,
        updated_at=began,
        reader=reader,
    )


def test_a_reading_is_judged_by_its_process_on_this_host_and_by_its_age_elsewhere() -> None:
    me = process_identity("gw1")
    pid, start = os.getpid(), start_ticks(os.getpid())
    parent = f"gw1:{os.getppid()}:{start_ticks(os.getppid())}"
    earlier_me = f"gw1:{pid}:{int(start) - 1}"  # pid 1 of a container, before its restart
    elsewhere = reading("gw2:1:1", began=NOW - timedelta(minutes=5))

    assert reading_status(reading(None), me=me, now=NOW) == "none"
    assert reading_status(reading(me), me=me, now=NOW) == "me"
    assert reading_status(reading(parent), me=me, now=NOW) == "alive"
    assert reading_status(reading(earlier_me), me=me, now=NOW) == "dead"
    assert reading_status(reading("gw1:999999999:1"), me=me, now=NOW) == "dead"
    assert reading_status(elsewhere, me=me, now=NOW) == "alive"
    long_ago = replace(elsewhere, received_at=NOW - timedelta(hours=1))
    assert reading_status(long_ago, me=me, now=NOW) == "dead"

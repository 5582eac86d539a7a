"""What the issue-15 benchmarks share: the machine's load, a sandbox, a timed gateway run.

Every figure is printed, never asserted, next to the machine's load: on a shared 2-core
machine a figure without the load it was measured under cannot be read.

- ``load_line()``: the load averages and the CPU count, printed before each measured round.
- ``MachineCpu``: CPU-seconds the whole machine was busy during a span, so that a round can say
  how much of it went to other processes.
- ``start_sandbox``: the real sandbox in its own process (it must not share the gateway's GIL),
  on a freshly seeded database, optionally with a latency and an agreement.
- ``gateway_run``: the whole gateway in threads of this process (``Gateway`` as ``edigw run``
  builds it), timed from the moment it starts until every source has left the inbox, with its
  CPU time, the sandbox's, the client's call counters and, on request, the time the poller
  spent polling (``PollClock``, which wraps methods from here: the product is not changed).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edigw.ecolix.usage import UsageSnapshot  # noqa: E402
from edigw.pipeline.assembly import Parts, open_parts  # noqa: E402
from edigw.pipeline.concurrency import InFlightGate, Senders  # noqa: E402
from edigw.pipeline.poller import FlowPoller  # noqa: E402
from edigw.pipeline.runtime import Gateway  # noqa: E402
from edigw.pipeline.senders import DEFAULT_SENDERS  # noqa: E402
from edigw.pipeline.sending_process import SendingProcess  # noqa: E402
from edigw.pipeline.signals import Signals  # noqa: E402
from tests.fixtures.gateway import Workspace, inbound_flow, write_workspace  # noqa: E402
from tests.fixtures.sandbox import SandboxProcess, seeded_database  # noqa: E402
from tests.support.orderfiles import write_order_files  # noqa: E402

UNLIMITED = "1000000/minute"
# What the benchmarks give a flow so that waiting is not what they measure: a file is ready as
# soon as it is seen, the folder is looked at every 50 ms, and one look takes up to 1,000 files.
BENCH_FLOW = {
    "readiness": {"mode": "min_age", "seconds": 0},
    "poll_interval": 0.05,
    "max_files_per_poll": 1000,
}
DEFAULT_TIMEOUT = 3600.0


def order_workspace(
    folder: Path,
    *,
    base_url: str,
    token: str,
    files: int,
    orders: int,
    prefix: str,
    journal: str | None = None,
    calls_per_minute: int = 100_000,
    ordered: bool = False,
) -> Workspace:
    """The web-shop order flow the benchmarks measure (``BENCH_FLOW``), in ``folder / "gw"``,
    with ``files`` files of ``orders`` orders (numbers starting ``prefix``) in its inbox."""
    ws = write_workspace(
        folder / "gw",
        base_url=base_url,
        token=token,
        calls_per_minute=calls_per_minute,
        flows={
            "webshop": {
                "orders": inbound_flow(
                    "ecommerce-orders-csv.yaml", "webshop", "orders", **BENCH_FLOW, ordered=ordered
                )
            }
        },
        journal=journal,
    )
    write_order_files(
        ws.inbox("webshop", "orders"), files=files, orders_per_file=orders, prefix=prefix
    )
    return ws


def load_line() -> str:
    """``load 1.02 0.88 0.75 (1/5/15 min), 2 CPUs``: what the machine was doing before a run."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min), {os.cpu_count()} CPUs"


def say(text: str) -> None:
    print(text, flush=True)


def goal(text: str, *, full: bool) -> str:
    """The issue-15 goal beside a figure, or why it does not apply (a smaller, quick run)."""
    return f"(issue 15 goal: {text})" if full else "(a quick check: the goal is for the full run)"


QUIET = 0.25  # CPUs other processes may use during a run before its figures are flagged


def quiet_note(others_cpus: float) -> str:
    """A warning when other processes took a real share of the machine during a run.

    On a shared machine both times grow, and not alike: the kernel shares CPU between runnable
    threads, so a side running several (edigw: gateway threads and the sandbox's process) gets
    more of a busy machine than a side running one (Bots). Such figures are not comparable with
    a quiet machine's."""
    if others_cpus <= QUIET:
        return ""
    return (
        f" [NOT QUIET: other processes used {others_cpus:.2f} CPUs during the run; "
        "compare such figures only within this run]"
    )


class MachineCpu:
    """CPU-seconds the whole machine spent busy (all cores) between enter and exit."""

    def __init__(self) -> None:
        self.busy = 0.0
        self.span = 0.0
        self._start: Any = None
        self._t0 = 0.0

    def __enter__(self) -> MachineCpu:
        self._start, self._t0 = psutil.cpu_times(), time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        end = psutil.cpu_times()
        self.span = time.perf_counter() - self._t0
        idle = (end.idle - self._start.idle) + (
            getattr(end, "iowait", 0.0) - getattr(self._start, "iowait", 0.0)
        )
        total = sum(end) - sum(self._start)
        self.busy = max(0.0, total - idle)

    def others(self, *ours: float) -> float:
        """Busy CPU-seconds that were not ours (``ours``: CPU-seconds of our processes)."""
        return max(0.0, self.busy - sum(ours))


def start_sandbox(
    folder: Path, *, rate_limit: str = UNLIMITED, latency: str | None = None
) -> SandboxProcess:
    """A sandbox in its own process on a fresh copy of the seeded database."""
    folder.mkdir(parents=True, exist_ok=True)
    db_path = folder / "sandbox.sqlite"
    seeded_database(db_path, None, folder)
    return SandboxProcess(db_path, rate_limit=rate_limit, latency=latency).start()


def process_cpu(pid: int) -> float:
    """CPU-seconds (user + system) a process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def postgres_cpu() -> float | None:
    """CPU-seconds the local PostgreSQL server has used so far, all its processes: the
    backends alive, the postmaster, and the backends that exited (counted in the
    postmaster's children). ``None`` when no server runs on this machine."""
    servers = [
        p
        for p in psutil.process_iter(["name", "ppid"])
        if p.info["name"] == "postgres" and psutil.Process(p.info["ppid"]).name() != "postgres"
    ]
    if not servers:
        return None
    total = 0.0
    for server in servers:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = server.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
            for child in server.children():
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += process_cpu(child.pid)
    return total


def sandbox_pid(sandbox: SandboxProcess) -> int:
    if sandbox.pid is None:
        msg = "the sandbox is not running"
        raise SystemExit(msg)
    return sandbox.pid


def files_in(folder: Path) -> int:
    """Regular files directly in ``folder`` (sources the gateway has not moved away yet)."""
    with os.scandir(folder) as entries:
        return sum(1 for entry in entries if entry.is_file())


def inbox_empty(folder: Path) -> bool:
    """Every source was moved away (to ``done/`` or ``error/``), which happens once a file is
    final. A directory scan that stops at the first file, so that watching for the end costs
    the gateway (same process, same GIL) next to nothing."""
    with os.scandir(folder) as entries:
        return not any(entry.is_file() for entry in entries)


@dataclass
class PollStats:
    """Time the flow pollers spent in the channel's scan, and in a whole poll (scan + take in)."""

    scans: int = 0
    scan_seconds: float = 0.0
    polls: int = 0
    poll_seconds: float = 0.0


@contextmanager
def poll_clock(channel_type: type) -> Iterator[PollStats]:
    """Count the time spent in ``channel_type.poll`` (listing the folder and asking the journal
    about each file) and in ``FlowPoller.poll_once`` (that, plus archiving and journalling what
    was taken), by wrapping both for the duration. Two ``perf_counter`` calls a poll."""
    stats = PollStats()
    original_scan = channel_type.poll  # type: ignore[attr-defined]
    original_poll = FlowPoller.poll_once

    def scan(self: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original_scan(self, *args, **kwargs)
        finally:
            stats.scan_seconds += time.perf_counter() - t0
            stats.scans += 1

    def poll(self: FlowPoller) -> Any:
        t0 = time.perf_counter()
        try:
            return original_poll(self)
        finally:
            stats.poll_seconds += time.perf_counter() - t0
            stats.polls += 1

    channel_type.poll = scan  # type: ignore[attr-defined]
    FlowPoller.poll_once = poll  # type: ignore[method-assign]
    try:
        yield stats
    finally:
        channel_type.poll = original_scan  # type: ignore[attr-defined]
        FlowPoller.poll_once = original_poll  # type: ignore[method-assign]


@dataclass
class GatewayRun:
    """One timed run of the gateway over what was in its inbox(es) when it started."""

    wall: float  # from Gateway.start() until every source left the inbox
    started: float  # time.perf_counter() at Gateway.start()
    startup: float  # opening the parts (journal, mapping compiled, client) before that
    user: float  # this process's CPU during the wall time (the gateway, and our cheap watch)
    system: float
    sandbox_cpu: float
    machine: MachineCpu
    files: int
    docs: int
    files_not_done: int
    usage: UsageSnapshot
    polls: PollStats | None = None
    senders: Senders = DEFAULT_SENDERS
    #: how many documents the senders held at most at once, at the end (see ``gate_line``)
    in_flight: str = ""
    states: dict[str, int] = field(default_factory=dict)

    @property
    def cpu(self) -> float:
        return self.user + self.system

    def others_cpu(self) -> float:
        return self.machine.others(self.cpu, self.sandbox_cpu)


def gateway_run(
    ws: Workspace,
    sandbox: SandboxProcess,
    inboxes: list[Path],
    *,
    docs: int,
    senders: Senders = DEFAULT_SENDERS,
    watch_polls: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[float], None] | None = None,
    prepare: Callable[[Parts], None] | None = None,
    processes: int = 1,
) -> GatewayRun:
    """Start the gateway on ``ws``, wait until ``inboxes`` are empty, stop it, and report.

    ``prepare`` sees the opened parts before the gateway starts (e.g. to trace its budget).
    ``processes=2``: the senders in a process of their own, as ``edigw run --processes 2``
    (its start counts in the wall time, its CPU in the gateway's)."""
    files = sum(files_in(inbox) for inbox in inboxes)
    pid = sandbox_pid(sandbox)
    t_open = time.perf_counter()
    with open_parts(ws.load()) as parts:
        if prepare is not None:
            prepare(parts)
        channel_types = {type(rt.channel) for rt in parts.inbound.values() if rt.channel}
        with _maybe_poll_clock(channel_types if watch_polls else set()) as polls:
            gateway = new_gateway(parts, senders=senders, processes=processes)
            startup = time.perf_counter() - t_open
            sandbox_cpu0 = process_cpu(pid)
            with MachineCpu() as machine:
                sending0 = sending_cpu(gateway)
                cpu0, t0 = os.times(), time.perf_counter()
                gateway.start()
                last_note = t0
                while not all(inbox_empty(inbox) for inbox in inboxes):
                    now = time.perf_counter()
                    if now - t0 > timeout:
                        gateway.stop()
                        gateway.join(30)
                        msg = f"the gateway did not empty its inbox within {timeout:.0f} s"
                        raise SystemExit(msg)
                    if progress is not None and now - last_note > 30:
                        progress(now - t0)
                        last_note = now
                    time.sleep(0.025)
                wall, cpu1 = time.perf_counter() - t0, os.times()
                sending = sending_cpu(gateway)
            sandbox_cpu = process_cpu(pid) - sandbox_cpu0
            in_flight = gate_line(gateway.signals.in_flight)
            gateway.stop()
            gateway.join(30)
        rows = parts.journal.files(limit=1_000_000)
        states: dict[str, int] = {}
        for row in rows:
            states[row.state] = states.get(row.state, 0) + 1
        usage = gateway.usage()
    return GatewayRun(
        wall=wall,
        started=t0,
        startup=startup,
        user=cpu1.user - cpu0.user + sending[0] - sending0[0],
        system=cpu1.system - cpu0.system + sending[1] - sending0[1],
        sandbox_cpu=sandbox_cpu,
        machine=machine,
        files=files,
        docs=docs,
        files_not_done=sum(n for state, n in states.items() if state != "done"),
        usage=usage,
        polls=polls if watch_polls else None,
        senders=senders,
        in_flight=in_flight,
        states=states,
    )


def new_gateway(parts: Parts, *, senders: Senders, processes: int) -> Gateway:
    """The gateway ``edigw run`` would make of ``parts``, its senders here or (``processes=2``)
    in a sending process, started here already: its start-up is the gateway's, like opening
    the parts, not part of a timed run."""
    if processes == 1:
        return Gateway(parts, senders=senders)
    signals = Signals()
    sending = SendingProcess.of(parts.config, senders, None, signals)
    sending.start()
    return Gateway(parts, senders=senders, signals=signals, sending=sending)


def sending_cpu(gateway: Gateway) -> tuple[float, float]:
    """The user and system CPU seconds of the gateway's sending process so far (0 if none)."""
    pid = gateway.sending.pid if gateway.sending is not None else None
    if pid is None:
        return 0.0, 0.0
    times = psutil.Process(pid).cpu_times()
    return float(times.user), float(times.system)


@contextmanager
def _maybe_poll_clock(channel_types: set[type]) -> Iterator[PollStats]:
    if not channel_types:
        yield PollStats()
        return
    if len(channel_types) > 1:
        msg = "poll timing covers one channel type at a time"
        raise SystemExit(msg)
    with poll_clock(next(iter(channel_types))) as stats:
        yield stats


def senders_arg(text: str) -> Senders:
    """``--senders``: ``auto`` or a number."""
    return "auto" if text == "auto" else int(text)


def gate_line(gate: InFlightGate) -> str:
    """The senders' in-flight limit and the moving averages it follows."""
    calling, working = gate.averages
    if calling is None or working is None:
        return f"in-flight limit {gate.limit} (nothing measured)"
    return (
        f"in-flight limit {gate.limit} of {gate.floor}..{gate.ceiling} "
        f"(in the Ecolix call {1000 * calling:.1f} ms, sender CPU {1000 * working:.2f} ms a document)"
    )


def run_line(label: str, run: GatewayRun) -> str:
    """One line that says what a run achieved and what else the machine was doing."""
    return (
        f"{label}: {run.wall:.2f} s, {run.docs / run.wall:.0f} documents/s, "
        f"{run.files / run.wall:.0f} files/s; gateway CPU {1000 * run.cpu / run.docs:.2f} ms/doc, "
        f"sandbox CPU {1000 * run.sandbox_cpu / run.docs:.2f} ms/doc; machine busy "
        f"{run.machine.busy / run.wall:.2f} of {os.cpu_count()} CPUs "
        f"({run.others_cpu() / run.wall:.2f} CPUs by other processes); "
        f"{run.usage.calls} calls, {run.usage.throttled} x 429, "
        f"{run.files_not_done} files not done{quiet_note(run.others_cpu() / run.wall)}"
    )


def poll_line(run: GatewayRun) -> str:
    p = run.polls
    assert p is not None
    return (
        f"polling: {p.scans} scans, {p.scan_seconds:.2f} s in the channel's scan "
        f"({100 * p.scan_seconds / run.wall:.1f}% of the wall time, "
        f"{1000 * p.scan_seconds / max(1, p.scans):.1f} ms a scan); {p.poll_seconds:.2f} s in "
        f"whole polls, scan + take in ({100 * p.poll_seconds / run.wall:.1f}%)"
    )


def sandbox_counts(sandbox: SandboxProcess) -> dict[str, int]:
    """Objects the sandbox holds, per kind (to check what a run created)."""
    return sandbox.counts()


# Runs a command and prints its peak RSS in KB. A small process of its own, because a child's
# ru_maxrss also counts what it held between fork and exec: a copy of its parent, here the
# benchmark with edigw imported, which would hide the figure under the parent's size.
_PEAK_WRAPPER = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)"
)


def peak_rss_run(command: list[str], *, env: dict[str, str], log: Path) -> tuple[float, float, int]:
    """Run ``command`` (its output thrown away, its errors to ``log``): (peak RSS in MB,
    seconds, exit code). The peak is the kernel's high-water mark for the process."""
    with log.open("wb") as err:
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _PEAK_WRAPPER, *command],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            check=True,
            text=True,
        )
        wall = time.perf_counter() - t0
    peak_kb, code = done.stdout.split()
    return int(peak_kb) / 1024, wall, int(code)


def high_water_rss(pid: int) -> float | None:
    """The peak RSS (MB) of a running process so far (Linux ``VmHWM``), or None."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


class RssSampler:
    """Samples a process's RSS every ``every`` seconds in a thread; ``peak`` in bytes.

    Only a cross-check: the exact peak comes from the kernel (``high_water_rss``)."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid = pid
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        process = psutil.Process(self.pid)
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, process.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self.every)

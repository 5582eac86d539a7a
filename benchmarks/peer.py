"""Side by side with the peer: Bots 3.3.1 and edigw on the same HEADER/LINE batch, interleaved.

    python benchmarks/pipeline.py --with-bots /tmp/bots-peer [--files 500] [--rounds 3]
    python benchmarks/peer.py --with-bots /tmp/bots-peer --quick

Installs Bots with the peer kit's ``setup.sh DIR`` when DIR holds no install yet (an existing
one is reused), writes ONE batch with the kit's ``gen_orders.py`` (customers and articles drawn
from the sandbox's reference data, so that every order can be posted), then runs Bots and
edigw on copies of that batch in turn: Bots, edigw, Bots, edigw, ... The machine's load is
printed before each round; both times, the CPU each side used and the speed ratio after.

What each side does:
- Bots: file -> grammar check -> translation -> one XML file per order (no network). Timed as
  it is run, by cron or by hand: the whole ``bots-engine`` command, its start-up included.
- edigw: file -> archive -> journal -> mapping and contract check -> one HTTP call per order
  to the sandbox (its own process, same machine) -> journal -> source moved to ``done/``.
  Timed as it runs, as a service: from the gateway's start until the last source has moved.

Both start each round from a clean state: Bots from its database as it is after one run on an
empty inbox today (so that its once-a-day cleanup is not in any round), edigw from a new
journal and archive and a freshly seeded sandbox (an order number can be created only once).
Nothing here asserts a figure; the peer's time is never written down, only measured.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    BENCH_FLOW,
    ROOT,
    GatewayRun,
    MachineCpu,
    gateway_run,
    goal,
    load_line,
    quiet_note,
    say,
    start_sandbox,
)

from edigw.pipeline.senders import DEFAULT_SENDERS
from edigw.sandbox.rules import price_lines
from tests.fixtures.gateway import inbound_flow, write_workspace

MAPPING_DIR = Path(__file__).resolve().parent / "bots-peer"
SEED = ROOT / "samples" / "sandbox-seed.json"
BOTS_ROUTE = "csv2xml"


def default_kit() -> Path | None:
    """The peer kit (``setup.sh``, ``gen_orders.py``): ``../shared/peers/bots`` from the
    repository, or from the folder holding it (a worktree)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        kit = base / "shared" / "peers" / "bots"
        if (kit / "setup.sh").is_file():
            return kit
    return None


@dataclass(frozen=True)
class Batch:
    """The one batch both sides read: ``files`` files in ``folder``, ``orders`` orders."""

    folder: Path
    files: int
    orders: int
    lines: int
    payments: Path  # order number -> total incl. VAT, what edigw's mapping needs (see orders.yaml)


def make_batch(kit: Path, folder: Path, files: int) -> Batch:
    """``gen_orders.py`` with codes from the sandbox seed, and the payments table for edigw."""
    seed = json.loads(SEED.read_text(encoding="utf-8"))
    articles = {a["code"]: a for a in seed["articles"]}
    customers_file, articles_file = folder / "customers.txt", folder / "articles.txt"
    customers_file.write_text("\n".join(c["code"] for c in seed["customers"]) + "\n")
    active = [code for code, a in articles.items() if a.get("active", True)]
    articles_file.write_text("\n".join(active) + "\n")
    batch_dir = folder / "batch"
    subprocess.run(
        [
            sys.executable,
            str(kit / "gen_orders.py"),
            str(batch_dir),
            str(files),
            "--customers",
            str(customers_file),
            "--articles",
            str(articles_file),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    orders: list[tuple[str, list[dict[str, str]]]] = []
    for path in sorted(batch_dir.iterdir()):
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.reader(f):
                if row and row[0] == "HEADER":
                    orders.append((row[1], []))
                elif row and row[0] == "LINE":
                    orders[-1][1].append({"article_code": row[2], "quantity": row[3]})
    payments = folder / "payments.csv"
    with payments.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ordernumber", "amount"])
        for number, lines in orders:
            _, totals = price_lines(lines, articles)  # the sandbox's own pricing rule
            writer.writerow([number, totals["gross"]])
    return Batch(batch_dir, files, len(orders), sum(len(lines) for _, lines in orders), payments)


def copy_batch(batch: Batch, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for path in batch.folder.iterdir():
        shutil.copy2(path, target / path.name)


# --------------------------------------------------------------------------- Bots


@dataclass
class BotsRun:
    wall: float
    user: float
    system: float
    machine: MachineCpu
    out_files: int
    left_in: int
    exit_code: int


class Bots:
    """An installed Bots (``setup.sh DIR``): its engine command, data folders and database."""

    def __init__(self, home: Path, command: list[str], site: Path) -> None:
        self.home = home
        self.command = command
        self.site = site
        self.inbox = home / "data" / "in"
        self.outbox = home / "data" / "out"
        self.database = site / "botssys" / "sqlitedb" / "botsdb"
        self.clean_database = home / "botsdb.after-empty-run"

    @classmethod
    def install_or_reuse(cls, home: Path, kit: Path) -> Bots:
        engine = home / "venv" / "bin" / "bots-engine"
        if engine.exists() and (home / "data" / "in").is_dir():
            say(f"Bots: reusing the install in {home}")
        else:
            say(f"Bots: installing bots-ediint 3.3.1 with {kit / 'setup.sh'} {home} ...")
            subprocess.run(
                ["bash", str(kit / "setup.sh"), str(home)],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        site = Path(
            subprocess.run(
                [
                    str(home / "venv" / "bin" / "python"),
                    "-c",
                    "import bots, os; print(os.path.dirname(bots.__file__))",
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        command = [str(engine), f"-c{site / 'config'}", BOTS_ROUTE]
        return cls(home, command, site)

    def version(self) -> str:
        python = self.home / "venv" / "bin" / "python"
        found = subprocess.run(
            [str(python), "-c", "import bots.botsglobal as g; print(g.version)"],
            capture_output=True,
            text=True,
        )
        return found.stdout.strip() or "?"

    def prepare(self, kit: Path, scratch: Path) -> float:
        """A clean state, as ``setup.sh`` leaves it (the install's empty database with the
        kit's route), then one run on an empty inbox (Bots does its cleanup on the first run
        of a day); that database is what each round starts from. Returns the empty run's
        time: Bots' start-up and bookkeeping, part of every run."""
        shutil.copyfile(self.site / "install" / "botsdb", self.database)
        subprocess.run(
            [
                str(self.home / "venv" / "bin" / "python"),
                str(kit / "setup_route.py"),
                str(self.site / "config"),
                str(self.home / "data"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self._empty_folders()
        run = self._engine(scratch / "bots-empty-run.log")
        shutil.copyfile(self.database, self.clean_database)
        return run.wall

    def run(self, batch: Batch, log: Path) -> BotsRun:
        shutil.copyfile(self.clean_database, self.database)
        self._empty_folders()
        copy_batch(batch, self.inbox)
        return self._engine(log)

    def _empty_folders(self) -> None:
        for folder in (self.inbox, self.outbox, self.site / "botssys" / "data"):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)

    def _engine(self, log: Path) -> BotsRun:
        with log.open("wb") as out, MachineCpu() as machine:
            t0 = time.perf_counter()
            process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)  # the child's own CPU time, exactly
            wall = time.perf_counter() - t0
        process.returncode = os.waitstatus_to_exitcode(status)
        return BotsRun(
            wall=wall,
            user=usage.ru_utime,
            system=usage.ru_stime,
            machine=machine,
            out_files=sum(1 for _ in self.outbox.iterdir()),
            left_in=sum(1 for p in self.inbox.iterdir() if p.is_file()),
            exit_code=process.returncode,
        )


# --------------------------------------------------------------------------- edigw


def edigw_round(
    folder: Path, batch: Batch, *, senders: int, processes: int
) -> tuple[GatewayRun, int]:
    """One edigw run over a copy of the batch; also the orders the sandbox holds after it."""
    mapping_dir = folder / "mapping"
    mapping_dir.mkdir(parents=True)
    for name in ("orders.yaml", "orders-layout.yaml"):
        shutil.copyfile(MAPPING_DIR / name, mapping_dir / name)
    shutil.copyfile(batch.payments, mapping_dir / "payments.csv")
    sandbox = start_sandbox(folder / "sandbox")
    try:
        before = sandbox.counts().get("order", 0)
        ws = write_workspace(
            folder / "gw",
            base_url=sandbox.base_url,
            token=sandbox.token,
            flows={
                "buyers": {
                    "orders": inbound_flow(
                        str(mapping_dir / "orders.yaml"), "buyers", "orders", **BENCH_FLOW
                    )
                }
            },
        )
        inbox = ws.inbox("buyers", "orders")
        copy_batch(batch, inbox)
        run = gateway_run(
            ws, sandbox, [inbox], docs=batch.orders, senders=senders, processes=processes
        )
        created = sandbox.counts().get("order", 0) - before
    finally:
        sandbox.stop()
    return run, created


# --------------------------------------------------------------------------- main


@dataclass
class Side:
    """One side's figures over the rounds: wall times, CPU ms an order (and the sandbox's)."""

    name: str
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    sandbox: list[float] = field(default_factory=list)


def arrangement(processes: int) -> str:
    return f"edigw --processes {processes}"


def side_by_side(
    bots_home: Path,
    *,
    kit: Path,
    files: int,
    rounds: int,
    senders: int,
    keep: bool,
    processes: Sequence[int] = (1,),
) -> None:
    work = Path(tempfile.mkdtemp(prefix="edigw-peer-"))
    say(
        f"peer benchmark: {files} record-typed CSV files (HEADER/LINE, 2 orders each), "
        f"{rounds} rounds each side, interleaved; work folder {work}"
    )
    bots = Bots.install_or_reuse(bots_home, kit)
    batch = make_batch(kit, work, files)
    say(
        f"batch: {batch.files} files, {batch.orders} orders, {batch.lines} lines "
        f"(gen_orders.py, customers and articles from samples/sandbox-seed.json)"
    )
    say(
        f"Bots {bots.version()}: file -> grammar check -> translation -> one XML file per "
        "order (no network); timed as the whole bots-engine command"
    )
    say(
        f"edigw: file -> archive -> journal -> mapping and contract check -> one HTTP call per "
        f"order to the sandbox (own process) -> journal -> source moved; {senders} senders; "
        "timed from the gateway's start until the last source has moved"
    )
    if 2 in processes:
        say(
            "edigw --processes 2: the same, its senders in a second process started with the "
            "gateway (its start-up in the time, its CPU in the gateway's)"
        )
    empty = bots.prepare(kit, work)
    say(f"Bots on an empty inbox (start-up and bookkeeping, part of every Bots run): {empty:.2f} s")
    peer = Side("Bots")
    ours = {p: Side(arrangement(p)) for p in processes}
    others: list[float] = []  # CPUs used by other processes during each run
    for n in range(1, rounds + 1):
        say(f"-- round {n}/{rounds}, Bots; before it: {load_line()}")
        b = bots.run(batch, work / f"bots-round{n}.log")
        peer.times.append(b.wall)
        peer.cpu.append(1000 * (b.user + b.system) / batch.orders)
        if b.out_files != batch.orders or b.left_in or b.exit_code:
            say(f"WARNING: Bots did not translate the whole batch; see {work}/bots-round{n}.log")
        say(
            f"Bots round {n}: {b.wall:.2f} s ({batch.orders / b.wall:.0f} orders/s); "
            f"CPU {1000 * (b.user + b.system) / batch.orders:.2f} ms/order "
            f"({b.user:.2f} user + {b.system:.2f} system s); {b.out_files} XML files written, "
            f"{b.left_in} files left in its inbox, exit code {b.exit_code}; machine busy "
            f"{b.machine.busy / b.wall:.2f} CPUs "
            f"({b.machine.others(b.user + b.system) / b.wall:.2f} by other processes)"
            f"{quiet_note(b.machine.others(b.user + b.system) / b.wall)}"
        )
        others.append(b.machine.others(b.user + b.system) / b.wall)
        for p, side in ours.items():
            say(f"-- round {n}/{rounds}, {side.name}; before it: {load_line()}")
            e, created = edigw_round(
                work / f"edigw-p{p}-round{n}", batch, senders=senders, processes=p
            )
            side.times.append(e.wall)
            side.cpu.append(1000 * e.cpu / e.docs)
            side.sandbox.append(1000 * e.sandbox_cpu / e.docs)
            if created != batch.orders or e.files_not_done:
                say(f"WARNING: edigw did not post the whole batch: {e.states}")
            say(
                f"{side.name} round {n}: {e.wall:.2f} s ({batch.orders / e.wall:.0f} orders/s; "
                f"start-up before it {e.startup:.2f} s); gateway CPU "
                f"{1000 * e.cpu / e.docs:.2f} ms/doc ({1000 * e.user / e.docs:.2f} user + "
                f"{1000 * e.system / e.docs:.2f} system), sandbox CPU "
                f"{1000 * e.sandbox_cpu / e.docs:.2f} ms/doc; {e.usage.calls} calls, "
                f"{e.usage.throttled} x 429, {created} orders created in the sandbox, "
                f"{e.files_not_done} files not done; machine busy "
                f"{e.machine.busy / e.wall:.2f} CPUs "
                f"({e.others_cpu() / e.wall:.2f} by other processes)"
                f"{quiet_note(e.others_cpu() / e.wall)}"
            )
            others.append(e.others_cpu() / e.wall)
            say(f"round {n}: {side.name}/Bots speed ratio {b.wall / e.wall:.2f}")
    say("")
    say("| side | wall times (s) | median | CPU per order (ms), median |")
    say("|---|---|---|---|")
    say(
        f"| Bots | {', '.join(f'{t:.2f}' for t in peer.times)} | "
        f"{statistics.median(peer.times):.2f} | {statistics.median(peer.cpu):.2f} |"
    )
    for side in ours.values():
        say(
            f"| {side.name} | {', '.join(f'{t:.2f}' for t in side.times)} | "
            f"{statistics.median(side.times):.2f} | {statistics.median(side.cpu):.2f} gateway "
            f"+ {statistics.median(side.sandbox):.2f} sandbox |"
        )
    for side in ours.values():
        ratios = [b / e for b, e in zip(peer.times, side.times, strict=True)]
        say(
            f"{side.name}/Bots speed ratio per round: {', '.join(f'{r:.2f}' for r in ratios)}; "
            f"median {statistics.median(ratios):.2f} {goal('at least 1.5', full=files == 500)}"
        )
    note = quiet_note(statistics.mean(others))
    if note:
        say(
            f"other processes used {statistics.mean(others):.2f} CPUs on average during the runs: "
            "on a busy machine the ratio leans towards edigw (two processes and several threads "
            "against one), and every time and CPU figure is inflated; re-run on a quiet machine "
            "to judge the goal."
        )
    say(f"after the rounds: {load_line()}")
    if keep:
        say(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--with-bots",
        type=Path,
        metavar="DIR",
        help="Compare with Bots installed in DIR (installed there by the kit's setup.sh if "
        "DIR has no install yet).",
    )
    parser.add_argument(
        "--peer-kit",
        type=Path,
        default=default_kit(),
        help="The peer kit folder holding setup.sh and gen_orders.py "
        "(default: ../shared/peers/bots).",
    )
    parser.add_argument("--rounds", type=int, default=3, help="Rounds for each side (default 3).")
    parser.add_argument(
        "--processes",
        type=processes_arg,
        default=(1,),
        help="edigw as one process (1, as edigw run by default), its senders in a second "
        "process (2), or both, each round after Bots's (1,2).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the work folder.")


def processes_arg(text: str) -> tuple[int, ...]:
    """``1``, ``2`` or ``1,2``: the arrangements of edigw to run."""
    try:
        chosen = tuple(int(part) for part in text.split(","))
    except ValueError:
        chosen = ()
    if not chosen or any(p not in (1, 2) for p in chosen):
        msg = f"expected 1, 2 or 1,2, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return tuple(dict.fromkeys(chosen))


def run_from(args: argparse.Namespace) -> None:
    if args.peer_kit is None or not (args.peer_kit / "gen_orders.py").is_file():
        msg = "the peer kit (setup.sh, gen_orders.py) was not found: give --peer-kit DIR"
        raise SystemExit(msg)
    side_by_side(
        args.with_bots.resolve(),
        kit=args.peer_kit.resolve(),
        files=args.files,
        rounds=args.rounds,
        senders=args.senders,
        keep=args.keep,
        processes=args.processes,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--senders", type=int, default=DEFAULT_SENDERS)
    parser.add_argument("--quick", action="store_true", help="50 files, 3 rounds: a quick check.")
    args = parser.parse_args()
    if args.with_bots is None:
        parser.error("--with-bots DIR is required")
    if args.quick:
        args.files = 50
    run_from(args)


if __name__ == "__main__":
    main()

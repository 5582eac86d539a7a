"""Fuzz every reader with mutated samples: no crash, no hang, no memory over budget.

Usage::

    python benchmarks/fuzz_readers.py --seconds 300          # every reader, 300 s in all
    python benchmarks/fuzz_readers.py --seconds 60 --only xlsx
    python benchmarks/fuzz_readers.py --replay fuzz-failures/xlsx-1.xlsx --only xlsx

Hypothesis mutates the shipped samples (``samples/``): bit flips, cut and repeated slices,
truncation, random bytes, and tokens that readers trip on (quotes, separators, ``<!DOCTYPE``,
``&``, NUL, CR, byte-order marks). Excel workbooks are mutated inside: a part is changed and
the zip written again, so the input gets past the zip layer. Each input is mapped with a
shipped mapping, as the gateway would (``CompiledMapping.map_file``, default flow limits).

An input passes when it maps, or fails as the product says a partner file fails: a
``SourceDataError`` whose message names the file. It fails the run on any other exception (a
crash), on taking longer than ``--case-seconds`` (a hang: the process is ended from a
watchdog thread, as a reader stuck in C cannot be interrupted), or on raising the process's
resident memory by over ``--memory-mb`` while it is read (see ``InputMemory``: the budget is
per input, not the process's lifetime peak). The failing input, shrunk by Hypothesis, is saved
in ``--failures`` with its traceback; the exit status is 1. ``tests/test_fuzz_readers.py``
runs it for 60 s in CI.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
import tracemalloc
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edigw.errors import SourceDataError  # noqa: E402
from edigw.formats.limits import ReaderLimits  # noqa: E402
from edigw.mapping import load_mapping  # noqa: E402
from edigw.mapping.engine import CompiledMapping  # noqa: E402

SAMPLES = ROOT / "samples"
#: No mutated input grows past this (the readers' limits are tested by the hostile corpus).
MAX_INPUT = 2 * 1024 * 1024
TOKENS = [
    b'"',
    b";",
    b",",
    b"\t",
    b"\r",
    b"\n",
    b"\r\n",
    b"\x00",
    b"\x1a",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\xe9",
    b"\xc3",
    b"<",
    b">",
    b"&",
    b"&xxe;",
    b"&#0;",
    b"&#x1F600;",
    b"]]>",
    b"<![CDATA[",
    b"<!--",
    b'<!DOCTYPE a [<!ENTITY xxe "x">]>',
    b'<?xml version="1.0" encoding="UTF-16"?>',
    b"<x>" * 50,
    b'r="XFD1048576"',
    b'r="A1"',
    b't="s"',
    b"<v>999999</v>",
    b"=cmd|' /C calc'!A0",
    b"9" * 40,
    b"-1",
    b"1e308",
    b"NaN",
    b"%PDF-1.7",
    b"endobj",
    b"stream",
]


@dataclass(frozen=True, slots=True)
class Target:
    """One reader, reached through a shipped mapping, and the samples it is fed."""

    name: str
    mapping: str
    samples: tuple[str, ...]
    suffix: str
    zipped: bool = False


TARGETS = [
    Target("csv", "ecommerce-orders-csv.yaml", ("ecommerce/ecommerce-orders-csv/*.csv",), ".csv"),
    Target("xml", "ecommerce-orders-xml.yaml", ("ecommerce/ecommerce-orders-xml/*.xml",), ".xml"),
    Target("xlsx", "crm-customers-xlsx.yaml", ("crm/crm-customers-xlsx/*.xlsx",), ".xlsx", True),
    Target("fixed-width", "flat-carrier-appointments-fixed.yaml",
           ("flat/flat-carrier-appointments-fixed/*.txt",), ".txt"),
    Target("flat-records", "flat-supplier-confirmations-ent-lig.yaml",
           ("flat/flat-supplier-confirmations-ent-lig/*.txt",), ".txt"),
    Target("einvoice", "supplier-einvoices.yaml",
           ("einvoices/ours/*.xml", "einvoices/facturex/*.xml", "einvoices/cen/*.xml"), ".xml"),
    Target("einvoice-pdf", "supplier-einvoices.yaml", ("einvoices/factur-x/*.pdf",), ".pdf"),
]  # fmt: skip


#: The last input each reader was given (after shrinking: the minimal failing one).
LAST_INPUT: dict[str, bytes] = {}


class Failure(Exception):
    """The input broke a rule of the fuzzer (not the product's refusal of a bad file)."""


# ---------------------------------------------------------------------------- mutations


def mutate(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` after one to eight mutations drawn by Hypothesis."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "repeat", "truncate", "random"]))
        pos = draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "flip" and buf:
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete":
            del buf[pos : pos + draw(st.integers(1, 256))]
        elif op == "insert":
            buf[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == "repeat":
            piece = bytes(buf[pos : pos + draw(st.integers(1, 256))])
            times = draw(st.integers(2, 5000))
            times = min(times, max((MAX_INPUT - len(buf)) // max(len(piece), 1), 0))
            buf[pos:pos] = piece * times
        elif op == "truncate":
            del buf[pos:]
        else:
            buf[pos:pos] = draw(st.binary(max_size=64))
    return bytes(buf[:MAX_INPUT])


def mutate_zip(draw: st.DrawFn, data: bytes) -> bytes:
    """A workbook with one of its parts mutated, zipped again (or, at times, its raw bytes)."""
    if draw(st.integers(0, 9)) == 0:
        return mutate(draw, data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        parts = {n: archive.read(n) for n in archive.namelist()}
    names = sorted(parts)
    preferred = [n for n in names if n.startswith("xl/worksheets/") or "sharedStrings" in n]
    name = draw(st.sampled_from(preferred + names))
    parts[name] = mutate(draw, parts[name])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for part, content in parts.items():
            archive.writestr(part, content)
    return out.getvalue()


def inputs(samples: list[bytes], *, zipped: bool) -> st.SearchStrategy[bytes]:
    @st.composite
    def strategy(draw: st.DrawFn) -> bytes:
        data = draw(st.sampled_from(samples))
        return mutate_zip(draw, data) if zipped else mutate(draw, data)

    return strategy()


# ---------------------------------------------------------------------------- the rules


class Watchdog:
    """Ends the process when one input takes longer than ``seconds``, saving that input: a
    reader stuck in C code cannot be interrupted by a signal handler or an exception."""

    def __init__(self, seconds: float, failures: Path) -> None:
        self.seconds = seconds
        self.failures = failures
        self.current: tuple[str, str, bytes] | None = None
        self.started = 0.0
        self.lock = threading.Lock()
        threading.Thread(target=self._watch, daemon=True, name="fuzz-watchdog").start()

    def begin(self, target: Target, data: bytes) -> None:
        with self.lock:
            self.current, self.started = (target.name, target.suffix, data), time.monotonic()

    def end(self) -> None:
        with self.lock:
            self.current = None

    def _watch(self) -> None:
        while True:
            time.sleep(0.2)
            with self.lock:
                if self.current and time.monotonic() - self.started > self.seconds:
                    name, suffix, data = self.current
                    path = save(self.failures, name, suffix, data, f"hang: over {self.seconds} s")
                    print(
                        f"FUZZ HANG {name}: an input took over {self.seconds} s: {path}", flush=True
                    )
                    sys.stdout.flush()
                    os._exit(3)


MB = 1024 * 1024
#: Writing "5" there resets the kernel's peak RSS (VmHWM) to the current RSS (Linux 4.0+).
CLEAR_REFS = Path("/proc/self/clear_refs")


def proc_status_mb(key: str) -> float:
    """``VmRSS`` or ``VmHWM`` of this process, from ``/proc/self/status``, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    raise LookupError(key)


class InputMemory:
    """How much reading one input raised this process's memory, in MB.

    Why not the process's peak RSS (``getrusage().ru_maxrss``), which this fuzzer once used:
    it is the high-water mark of the process's whole life, and on Linux it does not even start
    at zero: a process started by fork (or vfork) then exec keeps its parent's peak. Run by
    ``tests/test_fuzz_readers.py`` at the end of a full suite, whose pytest process had peaked
    at 1 GB, the fuzzer "measured" 1016 MB on its very first CSV input, and Hypothesis shrank
    the find to a sample with one bit flipped. A lifetime peak also counts Hypothesis, earlier
    inputs and the libraries loaded for other readers (Saxon, pypdf), none of which is the
    reader's doing.

    So before each input the kernel's peak (``VmHWM``) is reset to the current RSS
    (``/proc/self/clear_refs``), and after it the new peak minus the RSS before is the input's
    cost: C allocations (lxml, zlib, Saxon) included, and a reader that blows up is still
    caught. It can read low when the input reuses memory that an earlier input freed and the
    allocator kept; the input that first grew it was measured. Where ``/proc`` cannot be
    written (another OS, a locked-down container), tracemalloc's peak per input is used
    instead: Python's own allocations only, as the message says.
    """

    def __init__(self) -> None:
        try:
            CLEAR_REFS.write_text("5")
            proc_status_mb("VmHWM")
            self.kernel = True
        except (OSError, LookupError):
            self.kernel = False
            tracemalloc.start()
        self.before = 0.0

    @property
    def what(self) -> str:
        return "RSS" if self.kernel else "Python heap (tracemalloc)"

    def start(self) -> None:
        """Take the baseline: the peak so far is forgotten."""
        if self.kernel:
            CLEAR_REFS.write_text("5")
            self.before = proc_status_mb("VmRSS")
        else:
            tracemalloc.reset_peak()
            self.before = tracemalloc.get_traced_memory()[0] / MB

    def peak(self) -> float:
        """The highest the process (or the Python heap) went since ``start``, in MB."""
        if self.kernel:
            return proc_status_mb("VmHWM")
        return tracemalloc.get_traced_memory()[1] / MB

    def grown(self) -> float:
        """MB that the peak since ``start`` is over the baseline taken then."""
        return max(self.peak() - self.before, 0.0)


def save(folder: Path, name: str, suffix: str, data: bytes, why: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    n = 1
    while (folder / f"{name}-{n}{suffix}").exists():
        n += 1
    path = folder / f"{name}-{n}{suffix}"
    path.write_bytes(data)
    path.with_name(path.name + ".txt").write_text(why, encoding="utf-8")
    return path


def read_all(mapping: CompiledMapping, path: Path) -> None:
    """Map ``path`` as the gateway would; only the product's located refusal may escape."""
    try:
        for document in mapping.map_file(path, source_name=path.name, limits=ReaderLimits()):
            for problem in document.problems:
                str(problem)
    except SourceDataError as exc:
        if path.name not in str(exc):
            raise Failure(f"a refusal that does not name the file: {exc}") from exc


@dataclass(slots=True)
class Rules:
    """What every input is held to, and the largest memory cost seen (for the summary)."""

    watchdog: Watchdog
    memory: InputMemory
    memory_mb: float
    largest_mb: float = 0.0


def checker(
    target: Target, mapping: CompiledMapping, work: Path, rules: Rules
) -> Callable[[bytes], None]:
    path = work / f"input{target.suffix}"

    def check(data: bytes) -> None:
        path.write_bytes(data)
        rules.watchdog.begin(target, data)
        rules.memory.start()
        try:
            read_all(mapping, path)
        finally:
            rules.watchdog.end()
        grown = rules.memory.grown()
        rules.largest_mb = max(rules.largest_mb, grown)
        if grown > rules.memory_mb:
            raise Failure(
                f"reading it raised the {rules.memory.what} by {grown:.0f} MB "
                f"(from {rules.memory.before:.0f} to {rules.memory.peak():.0f} MB), "
                f"over the {rules.memory_mb:.0f} MB budget of one input"
            )

    return check


# ---------------------------------------------------------------------------- running


def fuzz(target: Target, seconds: float, options: argparse.Namespace, rules: Rules) -> int:
    """Fuzz ``target`` for ``seconds``; returns the number of inputs tried (raises on a find)."""
    files = sorted(p for pattern in target.samples for p in SAMPLES.glob(pattern))
    samples = [p.read_bytes() for p in files]
    mapping = load_mapping(ROOT / "mappings" / target.mapping)
    deadline = time.monotonic() + seconds
    tried = 0
    with tempfile.TemporaryDirectory(prefix="edigw-fuzz-") as tmp:
        check = checker(target, mapping, Path(tmp), rules)

        def counted(data: bytes) -> None:
            nonlocal tried
            tried += 1
            LAST_INPUT[target.name] = data
            check(data)

        batch = 0
        while time.monotonic() < deadline:
            batch += 1

            @seed(options.seed * 1_000_003 + batch)
            @settings(
                max_examples=50,
                deadline=None,
                database=None,
                derandomize=False,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.generate, Phase.shrink],
                report_multiple_bugs=False,
                verbosity=Verbosity.quiet,
            )
            @given(inputs(samples, zipped=target.zipped))
            def run(data: bytes) -> None:
                counted(data)

            try:
                run()
            except Exception as exc:  # whatever the reader raised: the find to report
                raise FuzzFind(target, exc) from exc
    return tried


class FuzzFind(Exception):
    """An input of ``target`` broke a rule; Hypothesis shrank it and replayed it last."""

    def __init__(self, target: Target, exc: BaseException) -> None:
        super().__init__(f"{target.name}: {type(exc).__name__}: {str(exc)[:500]}")
        self.target, self.exc = target, exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=300, help="Total time, split across readers."
    )
    parser.add_argument("--only", default="", help="Fuzz the readers whose name contains this.")
    parser.add_argument(
        "--case-seconds", type=float, default=20, help="A hang: one input over this."
    )
    parser.add_argument(
        "--memory-mb",
        type=float,
        default=300,
        help="Most MB that reading one input may add to the process's RSS.",
    )
    parser.add_argument(
        "--seed", type=int, default=int(time.time()), help="Seed (printed, to re-run)."
    )
    parser.add_argument(
        "--failures", type=Path, default=Path("fuzz-failures"), help="Where failing inputs go."
    )
    parser.add_argument(
        "--replay", type=Path, help="Map this one saved input with the --only reader."
    )
    options = parser.parse_args(argv)
    targets = [t for t in TARGETS if options.only in t.name]
    if not targets:
        parser.error(f"no reader matches {options.only!r}")
    # The PDF library logs each oddity of a mutated PDF; the reader decides what they mean.
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    # Hypothesis warns when it prints a large input; the input is saved to a file instead.
    warnings.filterwarnings("ignore", message="Generating overly large repr")
    watchdog = Watchdog(options.case_seconds, options.failures)
    if options.replay:
        mapping = load_mapping(ROOT / "mappings" / targets[0].mapping)
        memory = InputMemory()
        memory.start()
        read_all(mapping, options.replay)
        grown = memory.grown()
        over = grown > options.memory_mb
        print(
            f"{options.replay}: no crash, {memory.what} raised by {grown:.0f} MB"
            + (f", over the {options.memory_mb:.0f} MB budget" if over else ""),
            flush=True,
        )
        return 1 if over else 0
    print(
        f"fuzzing {', '.join(t.name for t in targets)} for {options.seconds:g} s, seed {options.seed}",
        flush=True,
    )
    share = options.seconds / len(targets)
    rules = Rules(watchdog, InputMemory(), options.memory_mb)
    for target in targets:
        started = time.monotonic()
        rules.largest_mb = 0.0
        try:
            tried = fuzz(target, share, options, rules)
        except FuzzFind as find:
            last = LAST_INPUT.get(target.name, b"")
            why = "".join(traceback.format_exception(find.exc))
            path = save(options.failures, target.name, target.suffix, last, why)
            print(f"FUZZ FAILURE {find}\n  input: {path}\n{why}", flush=True)
            return 1
        print(
            f"{target.name}: {tried} inputs in {time.monotonic() - started:.0f} s, "
            f"largest {rules.memory.what} growth of one input {rules.largest_mb:.0f} MB: "
            "no crash, hang or memory over budget",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

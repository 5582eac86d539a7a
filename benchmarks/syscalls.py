"""System calls the gateway makes per document, by kind, in the 500-file pipeline run.

    python benchmarks/syscalls.py [--files 500] [--orders-per-file 2] [--keep FILE]

Runs ``pipeline.py``'s run (local drop folder → archive → journal → mapping → HTTP to the
sandbox → journal → source moved to ``done/``) with ``strace -f -c`` attached to this process,
the gateway's, from the moment the gateway starts until the last source has left the inbox: the
sandbox (its own process) and the set-up before the start are not counted. Prints the load, the
calls per document of each kind and the gateway's CPU per document of the same run.

Under strace every call is slower, so the CPU and wall figures of this run are not the
pipeline's (``pipeline.py`` gives those); the counts are what matters. ``futex`` counts are
inflated most: they are mostly hand-overs of the interpreter lock between threads, which strace
makes more frequent. The benchmark's own thread looks at the inbox every 25 ms (a ``getdents64``
pair, an ``openat``): part of those counts are not the gateway's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pipeline
from harness import load_line

from edigw.pipeline.runtime import Gateway
from edigw.pipeline.senders import DEFAULT_SENDERS

# The kinds the issue-15 work looks at, in this order; the others are summed in "other".
KINDS = (
    "futex",
    "pwrite64",
    "pread64",
    "fcntl",
    "fdatasync",
    "fsync",
    "openat",
    "close",
    "newfstatat",
    "read",
    "write",
    "lseek",
    "ioctl",
    "mkdir",
    "chmod",
    "rename",
    "unlink",
    "getdents64",
    "poll",
    "sendto",
    "recvfrom",
)


def parse_counts(text: str) -> dict[str, int]:
    """``strace -c`` output: calls per syscall name."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5 or not parts[0][0].isdigit() or parts[-1] == "total":
            continue
        counts[parts[-1]] = int(parts[3])
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--orders-per-file", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="also write strace's own summary here")
    args = parser.parse_args()
    if shutil.which("strace") is None:
        raise SystemExit("strace is not installed (apt-get install strace)")
    folder = Path(tempfile.mkdtemp(prefix="edigw-syscalls-"))
    summary = folder / "strace.txt"
    tracer: dict[str, subprocess.Popen[bytes]] = {}
    real_start = Gateway.start
    real_empty = pipeline.inbox_empty

    def start(self: Gateway) -> None:
        tracer["p"] = subprocess.Popen(
            ["strace", "-f", "-c", "-p", str(os.getpid()), "-o", str(summary)],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # strace attaches to every thread before the gateway starts
        real_start(self)

    def empty(inbox: Path) -> bool:
        done = real_empty(inbox)
        if done and "p" in tracer:
            tracer["p"].send_signal(signal.SIGINT)
            tracer.pop("p").wait()
        return done

    Gateway.start = start  # type: ignore[method-assign]
    pipeline.inbox_empty = empty
    print(f"before the run: {load_line()}", flush=True)
    sandbox, base_url = pipeline.start_sandbox(folder)
    try:
        run: dict[str, Any] = pipeline.pipeline_run(
            folder,
            sandbox,
            base_url,
            files=args.files,
            orders=args.orders_per_file,
            senders=DEFAULT_SENDERS,
        )
    finally:
        sandbox.terminate()
        sandbox.wait()
    text = summary.read_text()
    if args.keep is not None:
        args.keep.write_text(text)
    shutil.rmtree(folder, ignore_errors=True)
    counts = parse_counts(text)
    docs = run["docs"]
    print(f"after the run: {load_line()}")
    print(
        f"{args.files} files, {docs} documents, {run['failed']} files not done; under strace: "
        f"gateway CPU {1000 * (run['user'] + run['system']) / docs:.2f} ms/document "
        f"({1000 * run['user'] / docs:.2f} user + {1000 * run['system'] / docs:.2f} system)"
    )
    print("| system call | per document |")
    print("|---|---|")
    for kind in KINDS:
        print(f"| {kind} | {counts.get(kind, 0) / docs:.2f} |")
    other = sum(n for kind, n in counts.items() if kind not in KINDS)
    print(f"| other | {other / docs:.2f} |")
    print(f"| all | {sum(counts.values()) / docs:.2f} |")
    print(f"| all but futex | {(sum(counts.values()) - counts.get('futex', 0)) / docs:.2f} |")


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of the Ecolix sandbox itself, over loopback HTTP with one reused httpx client.

Prints calls per second for a read (articles.list, 100 items) and for a write
(orders.create, priced and stored), sequentially and from 4 threads, so that the pipeline's
figures can be read against what the server costs. Run: python benchmarks/sandbox.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edigw.sandbox.server import run_in_thread
from tests.fixtures.sandbox import free_port
from tests.fixtures.sandbox_data import order_body

N = 500
LIMIT = "1000000/minute"


def timed(label: str, calls: int, fn) -> None:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    print(f"{label:<40} {calls / elapsed:8.0f} calls/s  ({elapsed * 1000 / calls:.2f} ms/call)")


def measure(where: str, base_url: str) -> None:
    print(f"-- sandbox {where}")
    if True:
        headers = {"Authorization": "Bearer T"}
        with httpx.Client(base_url=base_url, headers=headers) as http:

            def reads() -> None:
                for _ in range(N):
                    http.get("/articles").raise_for_status()

            def writes() -> None:
                for _ in range(N):
                    http.post(
                        "/orders", json=order_body(), headers={"Idempotency-Key": uuid.uuid4().hex}
                    ).raise_for_status()

            http.get("/articles").raise_for_status()  # warm up
            timed("articles.list (100 items), 1 thread", N, reads)
            timed("orders.create, 1 thread", N, writes)

            def parallel_writes() -> None:
                def one(_: int) -> None:
                    http.post(
                        "/orders", json=order_body(), headers={"Idempotency-Key": uuid.uuid4().hex}
                    ).raise_for_status()

                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(one, range(N)))

            timed("orders.create, 4 threads", N, parallel_writes)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with run_in_thread(Path(tmp) / "a.sqlite", token="T", rate_limit=LIMIT) as base_url:
            measure("in a thread of this process (as edigw demo runs it)", base_url)
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edigw.sandbox",
                "--port",
                str(port),
                "--db",
                str(Path(tmp) / "b.sqlite"),
                "--token",
                "T",
                "--rate-limit",
                LIMIT,
                "--log-level",
                "warning",
            ]
        )
        try:
            root = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    httpx.get(f"{root}/_sandbox/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            measure("in its own process (as the tests run it)", f"{root}/api/v1")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()

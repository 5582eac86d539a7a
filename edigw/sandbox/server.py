"""Running the sandbox: in the foreground (``edigw sandbox``) or in a thread (``edigw demo``).

uvicorn serves the Starlette app; ``run_in_thread`` binds a free loopback port itself so the
caller gets a working base URL without guessing ports::

    with run_in_thread("sandbox.sqlite", token="T") as base_url:
        httpx.get(f"{base_url}/articles", headers={"Authorization": "Bearer T"})

Both take a ``latency`` (``latency.parse_latency("50ms±10ms")``) that delays every answer as a
remote Ecolix's would be; none by default.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from edigw.errors import EdigwError
from edigw.sandbox.app import API_PREFIX, create_app
from edigw.sandbox.latency import Latency, LatencyMiddleware, parse_latency
from edigw.sandbox.operations import DEFAULT_RATE_LIMIT
from edigw.sandbox.seeding import read_seed

STARTUP_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class SandboxOptions:
    """What ``edigw sandbox`` takes on its command line."""

    db_path: Path
    token: str
    host: str = "127.0.0.1"
    port: int = 8800
    rate_limit: str = DEFAULT_RATE_LIMIT
    seed: Path | None = None
    log_level: str = "info"
    latency: Latency | None = None


def with_latency(app: ASGIApp, latency: Latency | str | None) -> ASGIApp:
    """``app`` with every answer delayed by ``latency`` (unchanged when there is none)."""
    if isinstance(latency, str):
        latency = parse_latency(latency)
    if latency is None or latency.seconds == 0:
        return app
    return LatencyMiddleware(app, latency)


def server_config(app: ASGIApp, **options: Any) -> uvicorn.Config:
    """uvicorn's settings for the sandbox: its C HTTP parser (``httptools``) and ``uvloop``
    where it is installed (``auto``), a quarter less CPU a request than h11 and asyncio; on a
    small machine that CPU goes to the gateway the sandbox stands in for Ecolix to."""
    return uvicorn.Config(app, http="httptools", loop="auto", **options)


def serve(options: SandboxOptions) -> None:
    """Serve the sandbox until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    app = create_app(
        options.db_path,
        token=options.token,
        rate_limit=options.rate_limit,
        seed=read_seed(options.seed),
    )
    config = server_config(
        with_latency(app, options.latency),
        host=options.host,
        port=options.port,
        log_level=options.log_level,
        access_log=options.log_level == "debug",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:  # uvicorn has logged why (the port taken, say)
        msg = f"the Ecolix sandbox could not start on {options.host}:{options.port}"
        raise EdigwError(msg)


@contextmanager
def run_in_thread(
    db_path: Path | str,
    *,
    token: str,
    rate_limit: str = DEFAULT_RATE_LIMIT,
    seed: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    latency: Latency | str | None = None,
) -> Iterator[str]:
    """Run the sandbox in a background thread; yields its base URL (ending in ``/api/v1``)."""
    app = with_latency(
        create_app(db_path, token=token, rate_limit=rate_limit, seed=read_seed(seed)), latency
    )
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP, and without it every response waits out a 40 ms delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = server_config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="edigw-sandbox", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                msg = f"the Ecolix sandbox did not start on {host}:{bound_port}"
                raise EdigwError(msg)
            time.sleep(0.01)
        yield f"http://{host}:{bound_port}{API_PREFIX}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edigw.sandbox``: the same options as ``edigw sandbox``, without click."""
    parser = argparse.ArgumentParser(prog="python -m edigw.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--db", type=Path, default=Path("sandbox.sqlite"))
    parser.add_argument("--token", required=True)
    parser.add_argument("--rate-limit", default=DEFAULT_RATE_LIMIT)
    parser.add_argument("--seed", type=Path, default=None)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--latency",
        type=_latency_argument,
        default=None,
        help="Delay every answer: 50ms, 0.05s, 50ms±10ms (default: none).",
    )
    args = parser.parse_args(argv)
    try:
        serve(
            SandboxOptions(
                db_path=args.db,
                token=args.token,
                host=args.host,
                port=args.port,
                rate_limit=args.rate_limit,
                seed=args.seed,
                log_level=args.log_level,
                latency=args.latency,
            )
        )
    except EdigwError as exc:
        parser.exit(2, f"error: {exc}\n")
    return 0


def _latency_argument(text: str) -> Latency:
    try:
        return parse_latency(text)
    except EdigwError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc

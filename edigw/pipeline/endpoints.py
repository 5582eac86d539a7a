"""The health and metrics endpoints of ``edigw run --http HOST:PORT``.

* ``GET /healthz``: 200 while the process answers (a liveness probe: restart it if not);
* ``GET /readyz``: 200 when the journal, every loop and Ecolix are fine, else 503; the
  JSON body names each check and, for those that fail, why (``edigw.pipeline.readiness``);
* ``GET /metrics``: the Prometheus text format (``edigw.pipeline.metrics``).

A standard-library ``ThreadingHTTPServer`` (one thread per request), bound before the
gateway starts, so a port in use stops ``edigw run`` at once with a one-line error. Its
loop runs under the supervisor among the loops that stop last: a stopping gateway still
answers, ``/readyz`` then says 503 "stopping".
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from edigw.errors import ConfigError
from edigw.pipeline.health import HealthSnapshot
from edigw.pipeline.readiness import Readiness

log = logging.getLogger("edigw.http")

#: Seconds between two looks at whether the server loop should end.
STOP_CHECK = 0.5
JSON = "application/json; charset=utf-8"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        *,
        health: Callable[[], HealthSnapshot],
        ready: Callable[[], Readiness],
        metrics: Callable[[], bytes],
    ) -> None:
        self.health = health
        self.ready = ready
        self.metrics = metrics
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "edigw"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == "/healthz":
                snap = self.server.health()
                self._json(HTTPStatus.OK, {"alive": True, "state": snap.state, "node": snap.node})
            elif path == "/readyz":
                verdict = self.server.ready()
                status = HTTPStatus.OK if verdict.ready else HTTPStatus.SERVICE_UNAVAILABLE
                body = verdict.to_dict()
                body["not_ready"] = verdict.not_ready()
                self._json(status, body)
            elif path == "/metrics":
                self._send(HTTPStatus.OK, CONTENT_TYPE_LATEST, self.server.metrics())
            else:
                self._json(
                    HTTPStatus.NOT_FOUND,
                    {
                        "error": f"no such endpoint {path}",
                        "endpoints": ["/healthz", "/readyz", "/metrics"],
                    },
                )
        except Exception as exc:  # a reader's bug: say so, keep serving
            log.exception("%s failed", path)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}"})

    def _json(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        self._send(status, JSON, json.dumps(body, ensure_ascii=False).encode("utf-8"))

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class HealthServer:
    """The bound server; :meth:`run` serves until its stop event is set, :meth:`close`
    frees the port."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        health: Callable[[], HealthSnapshot],
        ready: Callable[[], Readiness],
        metrics: Callable[[], bytes],
    ) -> None:
        try:
            self._server = _Server((host, port), health=health, ready=ready, metrics=metrics)
        except OSError as exc:
            msg = (
                f"cannot serve health and metrics on {host}:{port}: {exc.strerror or exc} "
                "(http.listen in edigw.yaml or --http: choose a free port)"
            )
            raise ConfigError(msg) from exc
        self._server.timeout = STOP_CHECK

    @property
    def address(self) -> tuple[str, int]:
        """The address served (the port the system chose when asked for port 0)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def run(self, stop: threading.Event) -> None:
        """Answer requests (each in a thread of its own) until ``stop`` is set."""
        while not stop.is_set():
            self._server.handle_request()

    def close(self) -> None:
        self._server.server_close()


__all__ = ["HealthServer"]

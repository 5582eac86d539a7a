"""The Ecolix client's wire (``edigw.ecolix.wire``) sends what ``httpx.Client`` would send.

Requests are captured by a socket server on 127.0.0.1 and compared with the same request
made by ``httpx.Client`` with the client's former settings: the same request line, headers
and body, connections kept alive, proxies taken from the environment.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from edigw.ecolix.wire import Wire, environment_proxy

HEADERS = {"Authorization": "Bearer T", "Accept": "application/json", "User-Agent": "edigw/test"}
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class CapturingServer:
    """Answers every request on 127.0.0.1 with 200 ``{}``; keeps each request's bytes."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(data) < length:
                    data += conn.recv(65536)
                body, data = data[:length], data[length:]
                self.requests.append(head + b"\r\n\r\n" + body)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def server() -> Iterator[CapturingServer]:
    made = CapturingServer()
    yield made
    made.close()


@pytest.fixture
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def parsed(raw: bytes) -> tuple[bytes, dict[bytes, list[bytes]], bytes]:
    """(request line, headers by lower-case name, body)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    line, *fields = head.split(b"\r\n")
    headers: dict[bytes, list[bytes]] = {}
    for field in fields:
        name, _, value = field.partition(b":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return line, headers, body


def both(server: CapturingServer, send: Callable[[Wire | httpx.Client], object]) -> None:
    """``send`` through the wire, then through ``httpx.Client`` as the client had it."""
    wire = Wire(f"{server.url}/api/v1", headers=HEADERS, timeout=httpx.Timeout(5.0))
    try:
        send(wire)
    finally:
        wire.close()
    with httpx.Client(
        base_url=f"{server.url}/api/v1", headers=HEADERS, timeout=httpx.Timeout(5.0)
    ) as client:
        send(client)


@pytest.mark.usefixtures("no_proxy_variables")
def test_a_write_goes_out_as_httpx_client_sends_it(server: CapturingServer) -> None:
    def send(http: Wire | httpx.Client) -> object:
        return http.request(
            "PUT",
            "/customers/C%2F1",
            content=b'{"code": "C/1"}',
            headers={"Idempotency-Key": "k-1", "Content-Type": "application/json"},
        )

    both(server, send)
    ours, theirs = (parsed(raw) for raw in server.requests)
    assert ours == theirs
    line, headers, body = ours
    assert line == b"PUT /api/v1/customers/C%2F1 HTTP/1.1"
    assert headers[b"authorization"] == [b"Bearer T"]
    assert headers[b"idempotency-key"] == [b"k-1"]
    assert body == b'{"code": "C/1"}'


@pytest.mark.usefixtures("no_proxy_variables")
def test_a_read_with_parameters_goes_out_as_httpx_client_sends_it(
    server: CapturingServer,
) -> None:
    def send(http: Wire | httpx.Client) -> object:
        return http.request(
            "GET",
            "/orders",
            params={"status": "confirmed", "updated_since": "2026-12-07T09:00:00+00:00"},
            headers={"If-None-Match": '"v1"'},
        )

    both(server, send)
    ours, theirs = (parsed(raw) for raw in server.requests)
    assert ours == theirs
    assert ours[0].startswith(b"GET /api/v1/orders?status=confirmed&updated_since=2026-12-07")


@pytest.mark.usefixtures("no_proxy_variables")
def test_a_default_header_given_again_in_another_case_is_sent_once(
    server: CapturingServer,
) -> None:
    def send(http: Wire | httpx.Client) -> object:
        return http.request("GET", "/customers/C1", headers={"accept": "text/csv"})

    both(server, send)
    ours, theirs = (parsed(raw) for raw in server.requests)
    assert ours[1][b"accept"] == theirs[1][b"accept"] == [b"text/csv"]


@pytest.mark.usefixtures("no_proxy_variables")
def test_the_answer_is_read_whole_and_its_connection_kept_for_the_next_call(
    server: CapturingServer,
) -> None:
    wire = Wire(server.url, headers=HEADERS, timeout=httpx.Timeout(5.0))
    try:
        answers = [wire.request("GET", f"/customers/C{n}") for n in range(4)]
    finally:
        wire.close()
    assert [answer.json() for answer in answers] == [{}] * 4
    assert all(answer.is_closed for answer in answers)
    assert server.connections == 1


def test_a_proxy_named_in_the_environment_carries_the_calls(
    server: CapturingServer, monkeypatch: pytest.MonkeyPatch, no_proxy_variables: None
) -> None:
    monkeypatch.setenv("HTTP_PROXY", server.url)
    wire = Wire("http://ecolix.invalid/api/v1", headers=HEADERS, timeout=httpx.Timeout(5.0))
    try:
        assert wire.request("GET", "/customers/C1").status_code == 200
    finally:
        wire.close()
    line, headers, _ = parsed(server.requests[0])
    assert line == b"GET http://ecolix.invalid/api/v1/customers/C1 HTTP/1.1"
    assert headers[b"host"] == [b"ecolix.invalid"]


def test_no_proxy_sends_a_host_past_the_proxy(
    monkeypatch: pytest.MonkeyPatch, no_proxy_variables: None
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert environment_proxy("https://ecolix.example/api/v1") == "http://proxy.example:3128"
    assert environment_proxy("http://ecolix.example/api/v1") is None  # no HTTP proxy named
    monkeypatch.setenv("NO_PROXY", "ecolix.example")
    assert environment_proxy("https://ecolix.example/api/v1") is None

"""The Ecolix client's wire (``edigw.ecolix.transport``) fails as ``httpx``'s own would.

The client sorts a failed call by the ``httpx`` exception it meets: never sent (retried, no
attempt counted) or maybe received by Ecolix (retried under its idempotency key). Each failure
is made for real on 127.0.0.1, a socket server doing the wrong thing, and the ``urllib3``
transport must raise the same exception class as ``httpx``'s default transport does for it.
"""

from __future__ import annotations

import datetime as dt
import gzip
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edigw.ecolix.transport import Urllib3Transport, default_transport

Handler = Callable[[socket.socket], None]
TRANSPORTS = {"urllib3": Urllib3Transport, "httpx": httpx.HTTPTransport}


class SocketServer:
    """A TCP server on 127.0.0.1 whose every connection goes to ``handler`` in a thread."""

    def __init__(self, handler: Handler, *, wrap: ssl.SSLContext | None = None) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.connections = 0
        self._handler = handler
        self._wrap = wrap
        self._open: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            if self._wrap is not None:
                conn = self._wrap.wrap_socket(conn, server_side=True)
            self._handler(conn)
        except OSError:
            pass

    def close(self) -> None:
        self._listener.close()
        for conn in self._open:
            conn.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., SocketServer]]:
    servers: list[SocketServer] = []

    def start(handler: Handler, **kwargs: object) -> SocketServer:
        servers.append(SocketServer(handler, **kwargs))  # type: ignore[arg-type]
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def read_request(conn: socket.socket) -> bytes:
    """One request's head and its body (by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def answer(body: bytes, *extra: bytes) -> bytes:
    return b"\r\n".join(
        [
            b"HTTP/1.1 201 Created",
            b"Content-Type: application/json",
            *extra,
            b"Content-Length: " + str(len(body)).encode(),
            b"",
            body,
        ]
    )


def call(transport: httpx.BaseTransport, port: int, **timeout: float) -> httpx.Response:
    with httpx.Client(transport=transport, timeout=httpx.Timeout(2.0, **timeout)) as client:
        return client.post(f"http://127.0.0.1:{port}/orders", content=b'{"n": 1}')


@pytest.fixture(params=list(TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> Iterator[httpx.BaseTransport]:
    made = TRANSPORTS[request.param]()
    yield made
    made.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- what goes out and what comes back --------------------------------------------------------


def test_the_request_and_the_answer_cross_as_sent(serve: Callable[..., SocketServer]) -> None:
    seen: list[bytes] = []

    def handler(conn: socket.socket) -> None:
        seen.append(read_request(conn))
        conn.sendall(answer(b'{"id": "CMD-1"}', b"Set-Cookie: a=1", b"Set-Cookie: b=2"))

    server = serve(handler)
    response = call(Urllib3Transport(), server.port)
    assert response.status_code == 201
    assert response.json() == {"id": "CMD-1"}
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.http_version == "HTTP/1.1"
    assert response.reason_phrase == "Created"
    head, _, body = seen[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /orders HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in head.lower()
    assert b"\r\ncontent-length: 8" in head.lower()
    assert body == b'{"n": 1}'


def test_a_compressed_answer_is_read_decompressed(serve: Callable[..., SocketServer]) -> None:
    packed = gzip.compress(b'{"id": "CMD-2"}')

    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(answer(packed, b"Content-Encoding: gzip"))

    assert call(Urllib3Transport(), serve(handler).port).json() == {"id": "CMD-2"}


def test_calls_in_a_row_share_one_connection(serve: Callable[..., SocketServer]) -> None:
    def handler(conn: socket.socket) -> None:
        while read_request(conn):
            conn.sendall(answer(b"{}"))

    server = serve(handler)
    with httpx.Client(transport=Urllib3Transport()) as client:
        for _ in range(5):
            assert client.get(f"http://127.0.0.1:{server.port}/x").status_code == 201
    assert server.connections == 1


def test_a_connection_the_server_closed_while_idle_is_replaced(
    serve: Callable[..., SocketServer],
) -> None:
    closed = threading.Semaphore(0)

    def handler(conn: socket.socket) -> None:  # one answer, then the server hangs up
        read_request(conn)
        conn.sendall(answer(b"{}"))
        conn.close()
        closed.release()

    server = serve(handler)
    with httpx.Client(transport=Urllib3Transport()) as client:
        for _ in range(3):
            assert client.get(f"http://127.0.0.1:{server.port}/x").status_code == 201
            assert closed.acquire(timeout=5)
            threading.Event().wait(0.05)  # the hang-up reaches the client while idle
    assert server.connections == 3


def test_with_a_proxy_in_the_environment_httpx_keeps_its_own_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert default_transport() is None
    monkeypatch.delenv("HTTPS_PROXY")
    for name in ("HTTP_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(default_transport(), Urllib3Transport)


# -- never sent: the same exception as httpx's transport ---------------------------------------


def test_a_refused_connection_is_a_connect_error(transport: httpx.BaseTransport) -> None:
    with pytest.raises(httpx.ConnectError):
        call(transport, free_port())


def test_an_unknown_host_is_a_connect_error(transport: httpx.BaseTransport) -> None:
    with pytest.raises(httpx.ConnectError), httpx.Client(transport=transport) as client:
        client.get("http://no-such-host.invalid/orders")


def test_all_connections_busy_past_the_pool_timeout_is_a_pool_timeout(
    serve: Callable[..., SocketServer],
) -> None:
    release = threading.Event()

    def handler(conn: socket.socket) -> None:
        read_request(conn)
        release.wait(5)
        conn.sendall(answer(b"{}"))

    server = serve(handler)
    one = Urllib3Transport(max_connections=1)
    with httpx.Client(transport=one, timeout=httpx.Timeout(5.0, pool=0.2)) as client:
        first = threading.Thread(target=client.get, args=(f"http://127.0.0.1:{server.port}/a",))
        first.start()
        while server.connections == 0:
            threading.Event().wait(0.01)
        with pytest.raises(httpx.PoolTimeout):
            client.get(f"http://127.0.0.1:{server.port}/b")
        release.set()
        first.join()


def test_a_certificate_not_trusted_is_a_connect_error(
    transport: httpx.BaseTransport, serve: Callable[..., SocketServer], tmp_path: Path
) -> None:
    sent: list[bytes] = []

    def handler(conn: socket.socket) -> None:
        sent.append(read_request(conn))

    server = serve(handler, wrap=self_signed(tmp_path))
    with pytest.raises(httpx.ConnectError), httpx.Client(transport=transport) as client:
        client.get(f"https://127.0.0.1:{server.port}/orders")
    assert sent == []


# -- maybe received: the same exception as httpx's transport -----------------------------------


def test_no_answer_in_time_is_a_read_timeout(
    transport: httpx.BaseTransport, serve: Callable[..., SocketServer]
) -> None:
    done = threading.Event()

    def handler(conn: socket.socket) -> None:
        read_request(conn)
        done.wait(5)

    server = serve(handler)
    with pytest.raises(httpx.ReadTimeout):
        call(transport, server.port, read=0.3)
    done.set()


def test_a_connection_cut_before_the_answer_is_a_remote_protocol_error(
    transport: httpx.BaseTransport, serve: Callable[..., SocketServer]
) -> None:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.close()

    with pytest.raises(httpx.RemoteProtocolError):
        call(transport, serve(handler).port)


def test_an_answer_cut_short_is_a_remote_protocol_error(
    transport: httpx.BaseTransport, serve: Callable[..., SocketServer]
) -> None:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(answer(b'{"id": "CMD-3"}')[:-5])
        conn.close()

    with pytest.raises(httpx.RemoteProtocolError):
        call(transport, serve(handler).port)


def test_garbage_instead_of_an_answer_is_a_remote_protocol_error(
    transport: httpx.BaseTransport, serve: Callable[..., SocketServer]
) -> None:
    def handler(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        conn.close()

    with pytest.raises(httpx.RemoteProtocolError):
        call(transport, serve(handler).port)


def self_signed(folder: Path) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 that nobody trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context

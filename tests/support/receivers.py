"""Real alert receivers on 127.0.0.1: an HTTP webhook receiver and an SMTP server.

The SMTP server is aiosmtpd with STARTTLS (a self-signed certificate made here with
``cryptography``) and AUTH required after STARTTLS, as a mail relay would be.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.fixtures.sandbox import free_port

SMTP_USER = "edigw"
SMTP_PASSWORD = "s3cret-relay"


@dataclass
class WebhookReceiver:
    """Records every JSON body POSTed to it.

    ``fail_first`` requests are answered 503; while ``gate`` is clear, requests wait for it
    (a receiver that hangs).
    """

    server: ThreadingHTTPServer
    bodies: list[Any] = field(default_factory=list)
    requests: int = 0
    fail_first: int = 0
    gate: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def received(self) -> list[Any]:
        with self.lock:
            return list(self.bodies)


@contextmanager
def webhook_receiver(*, fail_first: int = 0, open_gate: bool = True) -> Iterator[WebhookReceiver]:
    receiver: WebhookReceiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length))
            receiver.gate.wait(30)
            with receiver.lock:
                receiver.requests += 1
                failing = receiver.requests <= receiver.fail_first
                if not failing:
                    receiver.bodies.append(body)
            self.send_response(503 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = WebhookReceiver(server, fail_first=fail_first)
    if open_gate:
        receiver.gate.set()
    thread = threading.Thread(target=server.serve_forever, name="webhook receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.gate.set()
        server.shutdown()
        server.server_close()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class SmtpServer:
    host: str
    port: int
    ca_file: Path
    mails: list[Message] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[Message]:
        with self.lock:
            return list(self.mails)


@contextmanager
def smtp_server(folder: Path) -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1 requiring STARTTLS before AUTH, AUTH before mail."""
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = self_signed_certificate(folder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = SmtpServer("127.0.0.1", free_port(), cert)

    class Handler:
        async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
            if not session.authenticated:
                return "530 Authentication required"
            with server.lock:
                server.mails.append(message_from_bytes(envelope.content))
            return "250 OK"

    def authenticate(
        _server: Any, _session: Any, _envelope: Any, _mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == SMTP_USER
            and auth_data.password.decode() == SMTP_PASSWORD
        )
        if ok:
            with server.lock:
                server.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself

    controller = Controller(
        Handler(),
        hostname=server.host,
        port=server.port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
        # a bound on waiting for the server's own "ready" (not a delay): aiosmtpd's 5 s
        # default was a start-up time a loaded machine could exceed
        ready_timeout=60,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()

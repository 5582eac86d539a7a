"""SFTP connections: connecting to an endpoint, and one connection kept per endpoint.

``connect`` opens the TCP connection, checks the host key strictly against the endpoint's
``known_hosts`` (``edigw.channels.known_hosts``), authenticates (key file, then password)
and opens the SFTP session. ``SftpConnections`` holds one connection per endpoint, reused
across polls and shared by the flows using that endpoint (a lock serialises them: paramiko
sessions are not thread-safe). A broken connection is dropped and re-opened on next use;
repeated failures back off (``Backoff``) so a down partner costs one quick refusal per
poll, not a connect timeout each time.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import paramiko
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from edigw.channels.known_hosts import fingerprint, pinned_algorithms, verify_host_key
from edigw.channels.sftp.failures import _CONNECTION_FAILURES, _REMOTE_FAILURES, _describe
from edigw.channels.sftp.settings import Backoff, SftpEndpointSettings
from edigw.errors import ChannelError, HostKeyError

CONNECT_ATTEMPTS = 3


def _load_key(settings: SftpEndpointSettings) -> paramiko.PKey:
    assert settings.key_file is not None
    passphrase = settings.key_passphrase
    if passphrase is None and settings.key_passphrase_file is not None:
        try:
            passphrase = settings.key_passphrase_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            msg = f"endpoint {settings.name}: cannot read key_passphrase_file {settings.key_passphrase_file}: {exc.strerror}"
            raise ChannelError(msg, retriable=False) from exc
    secret: Any = passphrase.encode("utf-8") if passphrase is not None else None
    try:
        return paramiko.PKey.from_path(settings.key_file, secret)  # bytes, whatever stubs say
    except (paramiko.PasswordRequiredException, TypeError) as exc:
        if passphrase is not None:
            msg = f"endpoint {settings.name}: cannot load key file {settings.key_file}: {exc}"
            raise ChannelError(msg, retriable=False) from exc
        msg = f"endpoint {settings.name}: key file {settings.key_file} is encrypted; set key_passphrase or key_passphrase_file"
        raise ChannelError(msg, retriable=False) from exc
    except (paramiko.SSHException, OSError, ValueError) as exc:
        msg = f"endpoint {settings.name}: cannot load key file {settings.key_file}: {_describe(exc)} (wrong passphrase or unsupported key type?)"
        raise ChannelError(msg, retriable=False) from exc


def open_transport(settings: SftpEndpointSettings) -> paramiko.Transport:
    """TCP connect (TCP_NODELAY) and SSH handshake; the host key is *not* checked yet."""
    timeout = settings.timeouts.connect
    try:
        sock = socket.create_connection((settings.host, settings.port), timeout=timeout)
    except OSError as exc:
        msg = f"cannot connect to {settings.host}:{settings.port} (endpoint {settings.name}): {_describe(exc)}"
        raise ChannelError(msg) from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    transport.handshake_timeout = timeout
    transport.auth_timeout = timeout
    pinned = pinned_algorithms(settings.known_hosts, settings.host, settings.port)
    if pinned:
        options = transport.get_security_options()
        offered = list(options.key_types)
        preferred = [a for a in pinned if a in offered]
        options.key_types = preferred + [a for a in offered if a not in preferred]
    try:
        transport.start_client(timeout=timeout)
    except (paramiko.SSHException, OSError, EOFError) as exc:
        transport.close()
        msg = f"SSH handshake with {settings.host}:{settings.port} (endpoint {settings.name}) failed: {_describe(exc)}"
        raise ChannelError(msg) from exc
    return transport


def _authenticate(transport: paramiko.Transport, settings: SftpEndpointSettings) -> None:
    if settings.key_file is None and settings.password is None:
        msg = f"endpoint {settings.name}: neither key_file nor password is configured"
        raise ChannelError(msg, retriable=False)
    tried: list[str] = []
    try:
        if settings.key_file is not None:
            key = _load_key(settings)
            tried.append(f"key {settings.key_file} ({key.get_name()} {fingerprint(key)})")
            try:
                transport.auth_publickey(settings.username, key)
                return
            except paramiko.AuthenticationException:
                if settings.password is None:
                    raise
        if settings.password is not None:
            tried.append("password")
            transport.auth_password(settings.username, settings.password)
            return
    except paramiko.AuthenticationException as exc:
        msg = f"authentication failed for {settings.address} (endpoint {settings.name}) with {' then '.join(tried)}: the server refused the credentials"
        raise ChannelError(msg, retriable=False) from exc
    except (paramiko.SSHException, OSError, EOFError) as exc:
        msg = f"authentication with {settings.address} (endpoint {settings.name}) failed: {_describe(exc)}"
        raise ChannelError(msg) from exc


def connect(settings: SftpEndpointSettings) -> tuple[paramiko.Transport, paramiko.SFTPClient]:
    """Connect, check the host key strictly, authenticate, open the SFTP session."""
    transport = open_transport(settings)
    try:
        verify_host_key(
            settings.known_hosts, settings.host, settings.port, transport.get_remote_server_key()
        )
        _authenticate(transport, settings)
        transport.set_keepalive(settings.keepalive)
        sftp = paramiko.SFTPClient.from_transport(transport)
        if sftp is None:
            msg = f"endpoint {settings.name}: the server refused the SFTP subsystem"
            raise ChannelError(msg)
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(settings.timeouts.operation)
    except ChannelError:
        transport.close()
        raise
    except _REMOTE_FAILURES as exc:
        transport.close()
        msg = f"cannot open SFTP session on {settings.address} (endpoint {settings.name}): {_describe(exc)}"
        raise ChannelError(msg) from exc
    return transport, sftp


def _quick_failure(exc: BaseException) -> bool:
    """Worth an immediate retry: refused/reset/closed, not a timeout or a credential error."""
    if not isinstance(exc, ChannelError) or isinstance(exc, HostKeyError) or not exc.retriable:
        return False
    return isinstance(exc.__cause__, ConnectionRefusedError | ConnectionResetError | EOFError)


class SftpConnection:
    """One endpoint's connection, opened lazily, reused, re-opened after a failure."""

    def __init__(self, settings: SftpEndpointSettings, *, backoff: Backoff) -> None:
        self.settings = settings
        self._backoff = backoff
        self._lock = threading.RLock()
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._failures = 0
        self._next_attempt = 0.0
        self._last_error = ""

    @property
    def alive(self) -> bool:
        transport = self._transport  # read once: another thread may drop it meanwhile
        return transport is not None and transport.is_active()

    @property
    def opened(self) -> bool:
        """Whether a connection is held (alive or not yet dropped)."""
        return self._transport is not None

    def _ensure(self) -> paramiko.SFTPClient:
        if self._sftp is not None and self.alive:
            return self._sftp
        self.drop()
        wait = self._next_attempt - time.monotonic()
        if wait > 0:
            msg = f"endpoint {self.settings.name} unavailable (next attempt in {wait:.0f}s): {self._last_error}"
            raise ChannelError(msg)
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(CONNECT_ATTEMPTS),
                wait=wait_exponential(multiplier=0.2, max=2),
                retry=retry_if_exception(_quick_failure),
                reraise=True,
            ):
                with attempt:
                    self._transport, self._sftp = connect(self.settings)
        except ChannelError as exc:
            self._failures += 1
            self._next_attempt = time.monotonic() + self._backoff.delay(self._failures)
            self._last_error = str(exc)
            raise
        self._failures = 0
        self._next_attempt = 0.0
        assert self._sftp is not None
        return self._sftp

    @contextlib.contextmanager
    def session(self) -> Iterator[paramiko.SFTPClient]:
        """Exclusive use of the SFTP session; dropped afterwards if the connection died."""
        with self._lock:
            sftp = self._ensure()
            try:
                yield sftp
            except Exception as exc:
                cause = exc.__cause__ if isinstance(exc, ChannelError) else exc
                if isinstance(cause, _CONNECTION_FAILURES):
                    self.drop()  # e.g. a timed-out request: never reuse a session out of step
                raise
            finally:
                if not self.alive:
                    self.drop()

    def drop(self) -> None:
        """Close the connection held, if any. It is let go before it is closed: once the
        server sees the session end, :attr:`opened` already says so."""
        with self._lock:
            sftp, transport = self._sftp, self._transport
            self._sftp = None
            self._transport = None
            if sftp is not None:
                with contextlib.suppress(Exception):
                    sftp.close()
            if transport is not None:
                with contextlib.suppress(Exception):
                    transport.close()


class SftpConnections:
    """The gateway's SFTP connections, one per endpoint; pass it to every SFTP channel."""

    def __init__(
        self, endpoints: Mapping[str, SftpEndpointSettings], *, backoff: Backoff | None = None
    ) -> None:
        self._connections = {
            name: SftpConnection(settings, backoff=backoff or Backoff())
            for name, settings in endpoints.items()
        }

    def connection(self, endpoint: str) -> SftpConnection:
        try:
            return self._connections[endpoint]
        except KeyError:
            msg = f"unknown SFTP endpoint {endpoint!r}; known: {', '.join(sorted(self._connections)) or 'none'}"
            raise ChannelError(msg, retriable=False) from None

    def session(self, endpoint: str) -> contextlib.AbstractContextManager[paramiko.SFTPClient]:
        return self.connection(endpoint).session()

    def close_unused(self, in_use: Collection[str]) -> list[str]:
        """Close the connections held to endpoints not in ``in_use``; their names. An
        endpoint used again later connects anew (``edigw.pipeline.sftp_endpoints``)."""
        closed = []
        for name, connection in self._connections.items():
            if name not in in_use and connection.opened:
                connection.drop()
                closed.append(name)
        return closed

    def close(self) -> None:
        for connection in self._connections.values():
            connection.drop()

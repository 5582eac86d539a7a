"""The wire under the Ecolix client: ``urllib3``'s connection pool behind ``httpx``'s API.

``httpx`` keeps the client's interface (base URL, headers, timeouts, the response object and
the exceptions ``EcolixClient`` sorts calls by); its default transport, ``httpcore`` with
``h11``, costs about 0.42 ms of CPU a call on loopback where ``urllib3`` costs 0.25 (measured
2026-12-07, ``docs/benchmarks.md``), and every call of every document pays it. This transport
sends through ``urllib3`` and raises exactly the ``httpx`` exceptions the default transport
would, because the client's promise rests on them: a call that never left
(``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``) is retried without counting an
attempt, one that may have reached Ecolix (a read timeout, a connection cut mid-answer) is
retried under its idempotency key.

Where a proxy is configured in the environment (``HTTPS_PROXY``...), the client keeps
``httpx``'s own transport, which knows proxies.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    EmptyPoolError,
    HTTPError,
    LocationValueError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

_HTTP_VERSIONS = {10: b"HTTP/1.0", 11: b"HTTP/1.1"}


class Urllib3Transport(httpx.BaseTransport):
    """HTTP/1.1 over ``urllib3``, keep-alive connections pooled per host, TLS verified.

    ``max_connections`` caps the connections open to one host; a call that finds them all
    busy waits up to the request's pool timeout, then fails with ``httpx.PoolTimeout``.
    """

    def __init__(self, *, max_connections: int = 100) -> None:
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=max_connections,
            block=True,
            retries=False,
            ssl_context=httpx.create_ssl_context(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        with _as_httpx(request):
            answer = self._pool.urlopen(
                request.method,
                str(request.url),
                body=request.read(),
                headers={k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw},
                redirect=False,
                retries=False,
                assert_same_host=False,
                timeout=urllib3.Timeout(connect=timeouts.get("connect"), read=timeouts.get("read")),
                pool_timeout=timeouts.get("pool"),
                preload_content=True,
                decode_content=False,  # httpx decodes, by the headers it is given
                enforce_content_length=True,
            )
        return httpx.Response(
            answer.status,
            headers=list(answer.headers.items()),
            stream=httpx.ByteStream(answer.data),
            extensions={
                "http_version": _HTTP_VERSIONS.get(answer.version, b"HTTP/1.1"),
                "reason_phrase": answer.reason.encode("latin-1") if answer.reason else b"",
            },
            request=request,
        )

    def close(self) -> None:
        self._pool.clear()


def default_transport() -> httpx.BaseTransport | None:
    """This transport, or None (``httpx``'s own) where the environment names a proxy."""
    return None if urllib.request.getproxies() else Urllib3Transport()


@contextmanager
def _as_httpx(request: httpx.Request) -> Iterator[None]:
    """``urllib3``'s exceptions as the ``httpx`` ones the default transport raises.

    The order matters: ``NewConnectionError`` is a ``ConnectTimeoutError`` in ``urllib3``,
    but a refused or unresolvable connection is no timeout."""
    try:
        yield
    except NewConnectionError as exc:  # refused, unreachable, no such host: nothing sent
        raise httpx.ConnectError(str(exc), request=request) from exc
    except ConnectTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc), request=request) from exc
    except EmptyPoolError as exc:
        raise httpx.PoolTimeout(str(exc), request=request) from exc
    except SSLError as exc:
        if _refused_certificate(exc):  # in the handshake, before any byte of the request
            raise httpx.ConnectError(str(exc), request=request) from exc
        raise httpx.ReadError(str(exc), request=request) from exc  # it may have gone out
    except ReadTimeoutError as exc:  # sent, no answer in time
        raise httpx.ReadTimeout(str(exc), request=request) from exc
    except ProtocolError as exc:  # the connection cut or garbled after the request went out
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except LocationValueError as exc:
        raise httpx.UnsupportedProtocol(str(exc), request=request) from exc
    except HTTPError as exc:
        raise httpx.TransportError(str(exc), request=request) from exc


def _refused_certificate(exc: BaseException) -> bool:
    """Whether a TLS error is the server's certificate refused, somewhere in its causes."""
    seen: BaseException | None = exc
    for _ in range(8):  # a chain is short; a cycle is cut
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = (
            seen.__cause__
            or seen.__context__
            or next((arg for arg in seen.args if isinstance(arg, BaseException)), None)
        )
    return False

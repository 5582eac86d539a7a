"""One HTTP exchange with Ecolix: a request built once and sent on a pooled transport.

``httpx.Client.request`` wraps every request in layers the Ecolix client never uses: the
base URL merged by parsing URLs three times, a cookie jar updated from every answer through
``urllib``'s request objects (Ecolix sets no cookie, and a stateless API client must not keep
one), authentication and redirect loops. Together they cost more than the HTTP exchange
itself: 154–183 µs of CPU a call against 46–68 µs for the same request sent straight to the
transport (``httpx.MockTransport``, measured 2026-12-07). :class:`Wire` builds the
``httpx.Request`` as the client would (the same URL, default headers and timeouts) and hands
it to ``httpx``'s own transport, so connections, TLS and the ``httpx`` exceptions the Ecolix
client sorts calls by are exactly those of ``httpx``.

Proxies: like ``httpx``, a proxy named in the environment (``HTTPS_PROXY``, ``HTTP_PROXY``,
``ALL_PROXY``, and ``NO_PROXY`` for the hosts that bypass it) is used for the Ecolix URL.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping

import httpx


class Wire:
    """Requests to one base URL, with default headers and timeouts, on one transport.

    Thread-safe as its transport is (``httpx.HTTPTransport`` pools connections for every
    thread). ``transport`` replaces the pooled one (tests: ``httpx.MockTransport``)."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        timeout: httpx.Timeout,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        # httpx's own defaults (Accept-Encoding by the decoders installed, keep-alive...),
        # then ours, as httpx.Client(headers=...) merges them.
        defaults = httpx.Client(headers=headers, trust_env=False)
        self._headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in defaults.headers.raw}
        defaults.close()
        self._names = {name.lower(): name for name in self._headers}  # names match in any case
        self._prefix = base_url.rstrip("/") + "/"
        self._timeout = timeout.as_dict()
        self._transport = (
            transport
            if transport is not None
            else httpx.HTTPTransport(verify=True, proxy=environment_proxy(base_url))
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request and read its whole answer (``path`` relative to the base URL).

        Raises the ``httpx`` exceptions of the transport (``ConnectError``, ``ReadTimeout``...).
        """
        request = httpx.Request(
            method,
            self._prefix + path.lstrip("/"),
            params=params,
            content=content,
            headers=self._merged(headers) if headers else self._headers,
            extensions={"timeout": self._timeout},
        )
        response = self._transport.handle_request(request)
        response.request = request
        try:
            response.read()
        finally:
            response.close()  # the connection goes back to the pool
        return response

    def close(self) -> None:
        self._transport.close()

    def _merged(self, headers: Mapping[str, str]) -> dict[str, str]:
        merged = dict(self._headers)
        for name, value in headers.items():
            merged[self._names.get(name.lower(), name)] = value
        return merged


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, if any and the host is not bypassed."""
    target = httpx.URL(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(target.host):
        return None
    return proxy

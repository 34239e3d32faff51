"""A lean httpx transport: stdlib ``http.client`` on the wire, httpx everywhere else.

Why: on a 2-core box httpx's default transport (httpcore + h11) costs ~0.6 ms of
CPU per request and sends headers and body as two writes; the same request
through ``http.client`` costs roughly a third of that (measured-baselines.md §1),
and a bulk send of 1000 messages is CPU-bound on exactly that.  Adapters keep
the httpx API (Client, Request, Response, MockTransport injection in tests);
only the transport, httpx's documented pluggable seam, changes.

Semantics kept from httpx: the timeout extension (connect / read), errors as
httpx exceptions (ConnectTimeout, ConnectError, ReadTimeout, WriteError,
RemoteProtocolError) so the HTTP edge maps them exactly as before, raw
(undecoded) bodies so httpx applies ``Content-Encoding`` itself.
Connections are kept alive per (thread, origin); one found closed or readable
before use is replaced, so a peer's idle-close is never mistaken for an answer.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import select
import socket
import ssl
import threading
from typing import Any

import httpx


class _OneWrite:
    """Hold the header block so that headers and body leave in one ``send`` (http.client
    writes them separately, which costs a syscall and, with Nagle, a delayed ACK)."""

    held: bytes | None = None

    def send(self, data: Any) -> None:
        if self.held is None and isinstance(data, bytes) and getattr(self, "_hold", False):
            self.held = data
            return
        super().send(data)  # type: ignore[misc]


class _Http(_OneWrite, http.client.HTTPConnection):
    pass


class _Https(_OneWrite, http.client.HTTPSConnection):
    pass


class HttpClientTransport(httpx.BaseTransport):
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()

    def _pool(self) -> dict[tuple[str, str, int], http.client.HTTPConnection]:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def _connect(self, url: httpx.URL, connect_timeout: float | None) -> http.client.HTTPConnection:
        port = url.port or (443 if url.scheme == "https" else 80)
        if url.scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            conn: Any = _Https(url.host, port, timeout=connect_timeout, context=self._ssl_context)
        elif url.scheme == "http":
            conn = _Http(url.host, port, timeout=connect_timeout)
        else:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        try:
            conn.connect()
        except (socket.timeout, TimeoutError) as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        with self._lock:
            self._open.add(conn)
        return conn

    def _drop(self, key: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        self._pool().pop(key, None)
        conn.close()
        with self._lock:
            self._open.discard(conn)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout") or {}
        url = request.url
        key = (url.scheme, url.host, url.port or 0)
        pool = self._pool()
        conn = pool.get(key)
        if conn is not None and (conn.sock is None or _readable(conn.sock)):
            self._drop(key, conn)  # closed by the peer while idle
            conn = None
        if conn is None:
            conn = pool[key] = self._connect(url, timeouts.get("connect"))
        assert conn.sock is not None
        conn.sock.settimeout(timeouts.get("read"))
        body = request.read()
        target = url.raw_path.decode("ascii")
        try:
            conn.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in request.headers.raw:
                conn.putheader(name, value)
            conn._hold, conn.held = True, None
            conn.endheaders()
            head, conn._hold, conn.held = conn.held or b"", False, None
            conn.send(head + body if len(body) <= 65536 else head)
            if len(body) > 65536:
                conn.send(body)
        except (socket.timeout, TimeoutError) as exc:
            self._drop(key, conn)
            raise httpx.WriteTimeout(str(exc) or "write timed out") from exc
        except OSError as exc:
            self._drop(key, conn)
            raise httpx.WriteError(str(exc) or type(exc).__name__) from exc
        try:
            response = conn.getresponse()
            content = response.read()
        except (socket.timeout, TimeoutError) as exc:
            self._drop(key, conn)
            raise httpx.ReadTimeout(str(exc) or "read timed out") from exc
        except (http.client.HTTPException, OSError) as exc:
            self._drop(key, conn)
            raise httpx.RemoteProtocolError(f"{type(exc).__name__}: {exc}") from exc
        if response.will_close:
            self._drop(key, conn)
        return httpx.Response(
            response.status,
            headers=response.getheaders(),
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode("latin-1", "replace")},
        )

    def close(self) -> None:
        with self._lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            conn.close()
        self._local = threading.local()


class NoCookies(http.cookiejar.CookieJar):
    """Vendor APIs are stateless: never store or send cookies.

    A shared client must not carry one tenant's cookie into another's call,
    and parsing Set-Cookie on every answer cost ~50 µs per request.
    """

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None


def _readable(sock: socket.socket) -> bool:
    """An idle keep-alive socket that is readable has been closed (or spoke out of turn)."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True

"""A local HTTP fake vendor on 127.0.0.1: records each request, checks it against the
vendor's documented contract and can answer every error class on demand.

Subclasses describe one vendor: ``authenticate`` (its auth scheme), ``route``
(method + path -> handler that returns violations or a response) and
``error_response`` (its error body for each class).  A request that breaks the
contract is answered with the vendor's 400 *and* kept in ``violations`` so tests
can assert that there were none.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import random
import threading
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Response = tuple[int, dict[str, str], bytes]
LOST: Response = (0, {}, b"")  # the vendor acted, but its answer never reaches the caller (connection dropped)
ERROR_KINDS = ("auth", "forbidden", "invalid", "rate_limited", "server_error", "unavailable", "hang")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def form(self) -> dict[str, list[Any]]:
        """Fields of an urlencoded or multipart body; multipart files come back as (filename, bytes, type)."""
        if self.content_type == "application/x-www-form-urlencoded":
            return urllib.parse.parse_qs(self.body.decode(), keep_blank_values=True)
        if self.content_type == "multipart/form-data":
            raw = f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode() + self.body
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
            out: dict[str, list[Any]] = {}
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                filename = part.get_filename()
                value = (filename, payload, part.get_content_type()) if filename else payload.decode()
                out.setdefault(name, []).append(value)
            return out
        return {}


@dataclass
class _Failure:
    kind: str
    options: dict[str, Any] = field(default_factory=dict)


class FakeVendor:
    """Base of one fake vendor server; use as a context manager."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.statuses: list[int] = []  # the status answered to each request, in order
        self.violations: list[str] = []
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.tls: Any = None  # an ssl.SSLContext (server side) set before entering serves HTTPS
        self.flaky = 0.0  # share of requests answered with a random transient failure (503, 500 or 429), the vendor untouched
        self._rng = random.Random(16)

    # -- vendor hooks -----------------------------------------------------------
    def authenticate(self, req: Recorded) -> bool:
        raise NotImplementedError

    def route(self, req: Recorded) -> Response | list[str]:
        """A response, or the list of contract violations found in the request."""
        raise NotImplementedError

    def error_response(self, kind: str, **options: Any) -> Response:
        raise NotImplementedError

    # -- test controls ----------------------------------------------------------
    def fail_next(self, kind: str, times: int = 1, **options: Any) -> None:
        assert kind in ERROR_KINDS, kind
        with self._lock:
            self._failures.extend(_Failure(kind, options) for _ in range(times))

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def __enter__(self) -> "FakeVendor":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def do_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parsed = urllib.parse.urlsplit(self.path)
                req = Recorded(self.command, parsed.path, urllib.parse.parse_qs(parsed.query),
                               {k.lower(): v for k, v in self.headers.items()}, body)
                status, headers, payload = fake.dispatch(req)
                if status == 0:
                    self.close_connection = True
                    return
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_any

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def dispatch(self, req: Recorded) -> Response:
        with self._lock:
            self.requests.append(req)
            self.statuses.append(0)
            index = len(self.requests) - 1
            failure = self._failures.popleft() if self._failures else None
        response = self._answer(req, failure)
        with self._lock:
            self.statuses[index] = response[0]
        return response

    def _answer(self, req: Recorded, failure: _Failure | None) -> Response:
        if failure is None and self.flaky:
            with self._lock:
                kind = self._rng.choice(("unavailable", "server_error", "rate_limited")) if self._rng.random() < self.flaky else None
            if kind is not None:
                return self.error_response(kind, **({"retry_after": 0} if kind == "rate_limited" else {}))
        if failure is not None:
            if failure.kind == "hang":
                self._stop.wait(10)
                return self.error_response("server_error")
            return self.error_response(failure.kind, **failure.options)
        if not self.authenticate(req):
            return self.error_response("auth")
        result = self.route(req)
        if isinstance(result, list):
            with self._lock:
                self.violations.extend(f"{req.method} {req.path}: {v}" for v in result)
            return self.error_response("invalid", message="; ".join(result) or "bad request")
        return result


def json_response(status: int, body: Any, **headers: str) -> Response:
    payload = b"" if body is None else json.dumps(body).encode()
    base = {"Content-Type": "application/json"} if body is not None else {}
    return status, {**base, **headers}, payload

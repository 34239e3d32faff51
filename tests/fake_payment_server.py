"""Base of the local payment vendor fakes (Stripe, PayPal) on 127.0.0.1.

Besides answering like the vendor, a payment fake must misbehave the way a
real network does, because that is what the money-safety guarantees are about:
``script`` forces the next answers (a status with headers before anything is
processed, ``drop_after``: process the request, then close the connection
without answering, ``drop_before``: close without processing, ``hang``), and
``drop_rate`` drops that share of POST answers *after* processing them.
"""

from __future__ import annotations

import json
import random
import threading
import urllib.parse
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Response = tuple[int, dict[str, str], bytes]
DROP = object()  # answer nothing: the handler closes the connection


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def json_response(status: int, body: Any, **headers: str) -> Response:
    payload = b"" if body is None else json.dumps(body).encode()
    return status, ({"Content-Type": "application/json"} if body is not None else {}) | headers, payload


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client killed mid-answer is the point of some tests
            super().handle_error(request, client_address)


class PaymentFake:
    """One vendor fake; subclasses implement :meth:`handle` (called under the fake's lock)."""

    unscripted: tuple[str, ...] = ()  # paths the faults never hit (an OAuth2 token endpoint)

    def __init__(self, *, drop_rate: float = 0.0, seed: int = 1, answer_delay: float = 0.0) -> None:
        self.answer_delay = answer_delay  # seconds between processing a POST and answering it (the window a crash falls in)
        self.requests: list[Seen] = []
        self.script: deque[tuple[Any, ...]] = deque()
        self.drop_rate = drop_rate
        self.dropped = 0
        self.rng = random.Random(seed)
        self.lock = threading.RLock()
        self._release = threading.Event()
        self._server: _Server | None = None

    def handle(self, req: Seen) -> Response:
        raise NotImplementedError

    def fail_next(self, *fault: Any) -> None:
        """``("status", 503, {"Retry-After": "1"})``, ``("drop_after",)``, ``("drop_before",)``, ``("hang",)``."""
        with self.lock:
            self.script.append(fault)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, req: Seen) -> Response | object:
        scripted = req.path not in self.unscripted
        with self.lock:
            self.requests.append(req)
            fault = self.script.popleft() if self.script and scripted else None
        if fault is not None:
            if fault[0] == "status":
                status, headers = fault[1], fault[2] if len(fault) > 2 else {}
                return json_response(status, self.fault_body(status), **headers)
            if fault[0] == "drop_before":
                return DROP
            if fault[0] == "hang":
                self._release.wait(30)
                return DROP
        with self.lock:
            response = self.handle(req)
            drop = fault is not None and fault[0] == "drop_after"
            if not drop and scripted and req.method == "POST" and self.drop_rate and self.rng.random() < self.drop_rate:
                drop = True
            if drop:
                self.dropped += 1
                return DROP
        if self.answer_delay and req.method == "POST":
            self._release.wait(self.answer_delay)
        return response

    def fault_body(self, status: int) -> Any:
        return {"error": {"message": f"HTTP {status}"}}

    def __enter__(self) -> "PaymentFake":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urllib.parse.urlsplit(self.path)
                req = Seen(self.command, split.path, urllib.parse.parse_qs(split.query, keep_blank_values=True),
                           {k.lower(): v for k, v in self.headers.items()}, body)
                result = fake.answer(req)
                if result is DROP:
                    self.close_connection = True
                    return
                status, headers, payload = result  # type: ignore[misc]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PATCH = do_any

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def decode_brackets(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding back into nested data: ``metadata[a]=1``, ``types[0]=card``, ``expand[]=x``."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = [key.split("[", 1)[0]] + [p.rstrip("]") for p in key.split("[")[1:]]
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt_is_list = not last and (parts[i + 1] == "" or parts[i + 1].isdigit())
            if isinstance(node, list):
                if part == "" or int(part) >= len(node):
                    node.append(value if last else ([] if nxt_is_list else {}))
                    node = node[-1]
                    continue
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
                continue
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if nxt_is_list else {})
    return root

"""Test helpers: a scripted local HTTP vendor and a minimal HTTP adapter that uses it."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from connectorctl.adapters.declaration import Vendor
from connectorctl.adapters.email.common import HttpEmailAdapter, VendorRequest
from connectorctl.domain.messages import DeliveryStatus, EmailMessage, RecipientResult, SendResult
from connectorctl.domain.values import Credentials
from connectorctl.resilience.pipeline import new_id
from connectorctl.settings import VendorSettings


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: {"id": "msg-1"})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class ScriptedVendor:
    """A real HTTP server on 127.0.0.1 answering from a script (then a default reply)."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self.requests: list[dict[str, Any]] = []
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                vendor.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                reply = vendor.script.popleft() if vendor.script else vendor.default
                if reply.delay:
                    time.sleep(reply.delay)
                data = json.dumps(reply.body).encode() if reply.body is not None else b""
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class EchoEmailAdapter(HttpEmailAdapter[VendorSettings]):
    """Posts the message as JSON to ``base_url + /send``; the API key goes in a header (and the log keeps both)."""

    capabilities = frozenset({"html", "headers", "metadata"})

    def precheck(self, message: EmailMessage) -> None:
        self.require(message)

    def idempotency_key(self, message: EmailMessage) -> str | None:
        return message.idempotency_key

    def build_send(self, message: EmailMessage, creds: Credentials, correlation_id: str | None) -> VendorRequest:
        headers = {"Authorization": f"Bearer {creds.data['api_key']}"}
        body = {"to": list(message.to), "subject": message.subject, "text": message.text, "password": message.metadata.get("password")}
        return VendorRequest("POST", "/send", json=body, headers=headers, log={"headers": headers, "json": body})

    def parse_send(self, response: httpx.Response, message: EmailMessage) -> SendResult:
        message_id = (response.json() or {}).get("id") or new_id()
        return SendResult(self.slug, message_id, tuple(RecipientResult(r, DeliveryStatus.ACCEPTED, message_id) for r in message.recipients))


ECHO = Vendor("echo", "test vendor", {"email": EchoEmailAdapter})


def run_on(target: Any, fn: Any) -> Any:
    """``fn(conn)`` on the state at ``target``, opened for just this (a PostgreSQL pool must not outlive its test)."""
    from contextlib import closing

    from connectorctl.store.db import StateDB

    with closing(StateDB(target)) as db:
        return db.run(fn)

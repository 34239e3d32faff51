"""Test helpers: a scripted local HTTP vendor and a minimal HTTP adapter that uses it."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from connectorctl.adapters.base import EmailAdapter
from connectorctl.adapters.catalog import VendorEntry
from connectorctl.adapters.http import HttpAdapterMixin
from connectorctl.domain.messages import DeliveryStatus, EmailMessage, RecipientResult, SendResult
from connectorctl.resilience.pipeline import Call, new_id


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


class EchoEmailAdapter(EmailAdapter, HttpAdapterMixin):
    """Posts the message as JSON to ``base_url + /send``; the API key goes in a header."""

    capabilities = frozenset({"html", "headers", "metadata"})

    def send(self, message: EmailMessage, *, tenant_id: str | None = None, correlation_id: str | None = None) -> SendResult:
        creds = self.connector.credentials.get(self.slug, tenant_id)
        key = creds.get("api_key")
        body = {"to": list(message.to), "subject": message.subject, "text": message.text, "password": message.metadata.get("password")}
        call = Call(self.slug, "send_email", f"{self.base_url}/send", "POST",
                    request_data={"headers": {"Authorization": f"Bearer {key}"}, "json": body},
                    idempotent=message.idempotency_key is not None, idempotency_key=message.idempotency_key,
                    tenant_id=tenant_id, correlation_id=correlation_id, secrets=(key,))
        response = self.http(
            call,
            lambda client: client.post(f"{self.base_url}/send", json=body, headers={"Authorization": f"Bearer {key}"}),
            lambda r: r.json(),
        )
        message_id = (response.value or {}).get("id") or new_id()
        return SendResult(self.slug, message_id, tuple(RecipientResult(r, DeliveryStatus.ACCEPTED, message_id) for r in message.recipients), correlation_id)


ECHO = VendorEntry("echo", frozenset({"email"}), "tests.support", (("email", "EchoEmailAdapter"),), "test vendor")

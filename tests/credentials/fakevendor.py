"""A local vendor for credential tests: a token endpoint plus an authenticated API.

``AcmeEmailAdapter`` is a test-only HTTP email adapter registered under the
slug ``acme``; it declares every auth method and authenticates with whichever
the stored credential has.  The OAuth2 renewal after a 401 is the adapter
base's, as for any shipped vendor.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx

from connectorctl.adapters.declaration import API_KEY, BASIC_AUTH, BEARER_TOKEN, HMAC, OAUTH2, Vendor
from connectorctl.adapters.email.common import HttpEmailAdapter, VendorRequest, all_with
from connectorctl.domain.messages import DeliveryStatus, EmailMessage, SendResult
from connectorctl.domain.values import AuthMethod, Credentials
from connectorctl.resilience.pipeline import new_id
from connectorctl.settings import VendorSettings


def auth_headers(creds: Credentials, method: str, path: str, body: bytes) -> dict[str, str]:
    d = creds.data
    if creds.auth_method is AuthMethod.BASIC_AUTH:
        return {"Authorization": "Basic " + base64.b64encode(f"{d['username']}:{d['password']}".encode()).decode()}
    if creds.auth_method is AuthMethod.HMAC:
        sig = hmac.new(d["secret"].encode(), method.encode() + path.encode() + body, hashlib.sha256).hexdigest()
        return {"X-Key-Id": d["key_id"], "X-Signature": sig}
    token = d.get("api_key") or d.get("token") or d.get("access_token") or ""
    return {"Authorization": f"Bearer {token}"}


class AcmeEmailAdapter(HttpEmailAdapter[VendorSettings]):
    capabilities = frozenset()

    def precheck(self, message: EmailMessage) -> None:
        self.require(message)

    def build_send(self, message: EmailMessage, creds: Credentials, correlation_id: str | None) -> VendorRequest:
        payload = {"to": list(message.to), "subject": message.subject, "text": message.text}
        body = json.dumps(payload).encode()
        headers = {**auth_headers(creds, "POST", "/v1/send", body), "Content-Type": "application/json"}
        return VendorRequest("POST", "/v1/send", content=body, headers=headers, log=payload)

    def parse_send(self, response: httpx.Response, message: EmailMessage) -> SendResult:
        return all_with(self.slug, message, DeliveryStatus.ACCEPTED, response.json().get("id", new_id()))

    def build_verify(self, creds: Credentials) -> VendorRequest:
        return VendorRequest("GET", "/v1/me", headers=auth_headers(creds, "GET", "/v1/me", b""))


ENTRY = Vendor("acme", "test-only HTTP vendor", {"email": AcmeEmailAdapter}, auth=(API_KEY, BEARER_TOKEN, BASIC_AUTH, OAUTH2, HMAC))


class FakeVendor(ThreadingHTTPServer):
    """Behaves like a vendor's documented contract: 401 for bad auth, OAuth2 errors per RFC 6749 §5.2."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.valid_bearer: set[str] = set()
        self.valid_basic: set[tuple[str, str]] = set()
        self.hmac_keys: dict[str, str] = {}
        self.clients: dict[str, str] = {}  # client_id -> client_secret
        self.refresh_tokens: set[str] = set()
        self.token_mode = "ok"  # ok | invalid_grant | down
        self.expires_in = 3600
        self.rotate_refresh = False
        self.issued: list[str] = []
        self.grants: list[str] = []
        self.requests: list[tuple[str, str, int]] = []
        self.reject_all = False  # the API refuses even freshly issued tokens (e.g. the app was revoked)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def authorized(self, method: str, path: str, headers: Any, body: bytes) -> bool:
        auth = headers.get("Authorization", "")
        if self.reject_all:
            return False
        if auth.startswith("Bearer "):
            return auth[7:] in self.valid_bearer
        if auth.startswith("Basic "):
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            return (user, pw) in self.valid_basic
        key_id = headers.get("X-Key-Id")
        if key_id in self.hmac_keys:
            want = hmac.new(self.hmac_keys[key_id].encode(), method.encode() + path.encode() + body, hashlib.sha256).hexdigest()
            return hmac.compare_digest(want, headers.get("X-Signature", ""))
        return False

    def token(self, headers: Any, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.grants.append(form.get("grant_type", ""))
            if self.token_mode == "down":
                return 503, {"error": "temporarily_unavailable"}
            auth = headers.get("Authorization", "")
            cid, _, csecret = base64.b64decode(auth[6:]).decode().partition(":") if auth.startswith("Basic ") else ("", "", "")
            if self.clients.get(cid) != csecret or not cid:
                return 401, {"error": "invalid_client"}
            grant = form.get("grant_type")
            if self.token_mode == "invalid_grant" or (grant == "refresh_token" and form.get("refresh_token") not in self.refresh_tokens):
                return 400, {"error": "invalid_grant"}
            if grant not in ("refresh_token", "client_credentials"):
                return 400, {"error": "unsupported_grant_type"}
            token = f"at-{len(self.issued) + 1}-{new_id()}"
            self.issued.append(token)
            self.valid_bearer.add(token)
            body: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
            if grant == "refresh_token" and self.rotate_refresh:
                self.refresh_tokens.discard(form["refresh_token"])
                new_rt = f"rt-{new_id()}"
                self.refresh_tokens.add(new_rt)
                body["refresh_token"] = new_rt
            return 200, body


class _Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    server: FakeVendor

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.server.requests.append((self.command, self.path, status))

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        body = self._body()
        if self.path == "/oauth/token":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            self._reply(*self.server.token(self.headers, form))
        elif self.path == "/v1/send":
            ok = self.server.authorized("POST", self.path, self.headers, body)
            self._reply(202, {"id": new_id()}) if ok else self._reply(401, {"message": "invalid credentials"})
        else:
            self._reply(404, {"message": "not found"})

    def do_GET(self) -> None:
        ok = self.server.authorized("GET", self.path, self.headers, b"")
        self._reply(200, {"account": "acme-test"}) if ok and self.path == "/v1/me" else self._reply(401 if not ok else 404, {"message": "invalid credentials"})


def acme_config(url: str, extra: str = "") -> str:
    return f"email_vendor: acme\nretry_policy:\n  max_attempts: 2\n  initial_delay_ms: 1\n  jitter: false\nvendors:\n  acme:\n    base_url: {url}\n    token_url: {url}/oauth/token\n{extra}"


def register() -> None:
    """Used by subprocesses (see run_acme_cli.py) that cannot be monkeypatched."""
    from connectorctl.adapters import catalog

    catalog.VENDORS["acme"] = ENTRY

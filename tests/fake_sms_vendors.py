"""Local fake Twilio and Vonage servers on 127.0.0.1 that check requests as the vendors document them.

Each server validates method, path, auth scheme, encoding and required fields,
answers like the vendor (Twilio 201 Message JSON; Vonage 200 with per-part
``status``), and can be scripted to answer an error class next: ``401``,
``400``, ``429`` (with ``Retry-After``), ``500``/``503``, ``hang`` (no
answer until the server closes, i.e. past any client timeout), or ``echo``
(an error quoting our Authorization header and form body back).
"""

from __future__ import annotations

import base64
import email.utils
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TWILIO_SID = "AC" + "0" * 31 + "1"
TWILIO_TOKEN = "twilio-auth-token-123456"
VONAGE_KEY = "vonagekey1"
VONAGE_SECRET = "vonage-secret-abcdef"


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] = field(default_factory=dict)


class FakeVendor:
    """A ThreadingHTTPServer with a script of forced answers and a request record."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[tuple[Any, ...]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # otherwise every answer costs ~40 ms (Nagle + delayed ACK)
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                rec = Received(self.command, split.path, parse_qs(split.query), {k.lower(): v for k, v in self.headers.items()}, body)
                if rec.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                    rec.form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
                with vendor.lock:
                    vendor.requests.append(rec)
                    forced = vendor.script.pop(0) if vendor.script else None
                if forced and forced[0] == "echo":  # a vendor that quotes our request back in its error
                    status, headers = forced[1], None
                    payload = {"message": f"rejected: Authorization: {rec.headers.get('authorization')} body: {body.decode()}",
                               "echo": {"authorization": rec.headers.get("authorization"), "form": rec.form}}
                else:
                    status, payload, headers = vendor.forced(forced) if forced else vendor.route(rec)
                if status is None:
                    vendor.release.wait(30)
                    return
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeVendor":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def then(self, *answers: tuple[Any, ...]) -> "FakeVendor":
        self.script.extend(answers)
        return self

    def basic(self, rec: Received) -> tuple[str, str] | None:
        auth = rec.headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return None
        user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
        return user, pw

    # vendor specifics
    def forced(self, answer: tuple[Any, ...]) -> tuple[int | None, Any, dict[str, str] | None]:
        raise NotImplementedError

    def route(self, rec: Received) -> tuple[int | None, Any, dict[str, str] | None]:
        raise NotImplementedError


def _twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


class FakeTwilio(FakeVendor):
    """api.twilio.com (Messages, Accounts, Balance) and lookups.twilio.com (v2) in one server."""

    invalid_lookup = {"+15005550001"}

    def __init__(self) -> None:
        super().__init__()
        self.created: list[dict[str, Any]] = []  # message resources, in creation order (the list API reads them)

    def forced(self, answer: tuple[Any, ...]) -> tuple[int | None, Any, dict[str, str] | None]:
        kind = answer[0]
        if kind == "hang":
            return None, None, None
        if kind == "401":
            return 401, _twilio_error(401, 20003, "Authenticate"), None
        if kind == "400":
            code = answer[1] if len(answer) > 1 else 21606
            return 400, _twilio_error(400, code, "The 'To' number is not a valid phone number." if code == 21211 else "The 'From' phone number provided is not a valid message-capable Twilio phone number."), None
        if kind == "429":
            return 429, _twilio_error(429, 20429, "Too Many Requests"), {"Retry-After": str(answer[1] if len(answer) > 1 else 1)}
        return int(kind), _twilio_error(int(kind), 20500, "Internal Server Error"), None

    def route(self, rec: Received) -> tuple[int | None, Any, dict[str, str] | None]:
        if self.basic(rec) != (TWILIO_SID, TWILIO_TOKEN):
            return 401, _twilio_error(401, 20003, "Authenticate"), None
        base = f"/2010-04-01/Accounts/{TWILIO_SID}"
        if rec.method == "POST" and rec.path == f"{base}/Messages.json":
            if not rec.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                return 400, _twilio_error(400, 21601, "body must be form-urlencoded"), None
            f = rec.form
            if "To" not in f or not ({"From", "MessagingServiceSid"} & f.keys()) or not ({"Body", "MediaUrl", "ContentSid"} & f.keys()):
                return 400, _twilio_error(400, 21604, "A 'To' phone number, a sender and a Body are required."), None
            if not f["To"].startswith("+"):
                return 400, _twilio_error(400, 21211, "The 'To' number is not a valid phone number."), None
            n = len(self.requests)
            created = {"sid": f"SM{n:032d}", "status": "queued", "to": f["To"], "from": f.get("From"), "body": f.get("Body"),
                       "num_segments": "1", "price": None, "messaging_service_sid": f.get("MessagingServiceSid"),
                       "date_created": email.utils.formatdate(usegmt=True), "uri": f"{base}/Messages/SM{n:032d}.json"}
            with self.lock:
                self.created.append(created)
            return 201, created, None
        if rec.method == "GET" and rec.path == f"{base}/Messages.json":  # newest first; To / From filters, PageSize <= 1000
            size = int(rec.query.get("PageSize", ["50"])[0])
            with self.lock:
                found = [m for m in reversed(self.created) if all(m[k.lower()] == rec.query[k][0] for k in ("To", "From") if k in rec.query)]
            return 200, {"messages": found[:size], "page": 0, "page_size": size, "next_page_uri": None,
                         "uri": f"{base}/Messages.json?PageSize={size}"}, None
        if rec.method == "GET" and rec.path == f"{base}.json":
            return 200, {"sid": TWILIO_SID, "status": "active", "friendly_name": "test"}, None
        if rec.method == "GET" and rec.path == f"{base}/Balance.json":
            return 200, {"account_sid": TWILIO_SID, "balance": "0.05", "currency": "USD"}, None
        if rec.method == "GET" and rec.path.startswith("/v2/PhoneNumbers/"):
            number = rec.path.rsplit("/", 1)[1]
            valid = number not in self.invalid_lookup
            return 200, {"calling_country_code": "1", "country_code": "US", "phone_number": number, "national_format": number,
                         "valid": valid, "validation_errors": [] if valid else ["TOO_LONG"], "url": f"https://lookups.twilio.com{rec.path}"}, None
        return 404, _twilio_error(404, 20404, "The requested resource was not found"), None


class FakeVonage(FakeVendor):
    """rest.nexmo.com: /sms/json (per-part status in a 200 body) and /account/get-balance."""

    def forced(self, answer: tuple[Any, ...]) -> tuple[int | None, Any, dict[str, str] | None]:
        kind = answer[0]
        if kind == "hang":
            return None, None, None
        if kind == "status":  # a 200 whose part carries a non-zero status
            return 200, {"message-count": "1", "messages": [{"status": str(answer[1]), "error-text": answer[2]}]}, None
        if kind == "429":
            return 429, {"title": "Too Many Requests", "detail": "slow down"}, {"Retry-After": str(answer[1] if len(answer) > 1 else 1)}
        if kind == "401":
            return 401, {"title": "Unauthorized", "detail": "bad credentials"}, None
        if kind == "400":
            return 400, {"title": "Bad Request", "detail": "invalid parameters"}, None
        return int(kind), {"title": "Internal Error", "detail": "try again"}, None

    def route(self, rec: Received) -> tuple[int | None, Any, dict[str, str] | None]:
        if rec.method == "POST" and rec.path == "/sms/json":
            f = rec.form
            if not rec.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                return 200, {"message-count": "1", "messages": [{"status": "2", "error-text": "Missing api_key"}]}, None
            missing = [p for p in ("api_key", "api_secret", "from", "to", "text") if not f.get(p)]
            if missing:
                return 200, {"message-count": "1", "messages": [{"status": "2", "error-text": f"Missing {missing[0]}"}]}, None
            if (f["api_key"], f["api_secret"]) != (VONAGE_KEY, VONAGE_SECRET):
                return 200, {"message-count": "1", "messages": [{"status": "4", "error-text": "Bad Credentials"}]}, None
            if not f["to"].isdigit():
                return 200, {"message-count": "1", "messages": [{"status": "3", "error-text": "Invalid to address"}]}, None
            n = len(self.requests)
            parts = 2 if len(f["text"]) > (70 if f.get("type") == "unicode" else 160) else 1
            return 200, {"message-count": str(parts), "messages": [
                {"to": f["to"], "message-id": f"0A{n:06d}{i}", "status": "0", "remaining-balance": "3.14", "message-price": "0.0333",
                 "network": "23410", "client-ref": f.get("client-ref")} for i in range(parts)]}, None
        if rec.method == "GET" and rec.path == "/account/get-balance":
            if self.basic(rec) != (VONAGE_KEY, VONAGE_SECRET):
                return 401, {"type": "https://developer.vonage.com/api-errors#unauthorized", "title": "Unauthorized",
                             "detail": "You did not provide correct credentials."}, None
            return 200, {"value": 10.28, "autoReload": False}, None
        return 404, {"title": "Not Found"}, None

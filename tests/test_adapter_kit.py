"""Proof of the adapter seam: a complete vendor defined only here, with no edit to product code.

"Beep" is a made-up SMS vendor with its own options, auth and wire format. Its
module-level declaration is registered with the catalog by a fixture, and then
the config loader, ``creds set``/``creds test``, ``send --dry-run``, ``send``,
failover and the SMS contract suite all work with it, exactly as
docs/adapters.md ("How to add a vendor") describes.
"""

from __future__ import annotations

import base64
import io
import json
import os
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, Mapping

import httpx
import pytest
from sms_contract import TO, SmsContract

from connectorctl.adapters import catalog
from connectorctl.adapters.declaration import AuthScheme, Vendor
from connectorctl.adapters.http import VendorRequest
from connectorctl.adapters.sms.common import HttpSmsAdapter, RecipientRefusedError, e164, sender
from connectorctl.config import load_settings
from connectorctl.domain.messages import DeliveryStatus, RecipientResult, SendResult, SmsMessage
from connectorctl.domain.values import AuthMethod, Credentials
from connectorctl.errors import ConfigurationError, ConnectorError, ValidationError
from connectorctl.settings import VendorSettings
from tests.conftest import write_config

KEY = "beep-live-key-0123456789abcdef"


# -- the vendor module (what a new vendor's file would hold) ---------------------------------------
@dataclass(frozen=True)
class BeepOptions(VendorSettings):
    priority: int = 5  # 1 (bulk) .. 9 (one-time codes)
    sender_id: str | None = None  # an alphanumeric sender, used when no from_number is given

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from super().problems()
        if not 1 <= self.priority <= 9:
            yield "priority", "must be between 1 and 9"


class BeepSmsAdapter(HttpSmsAdapter[BeepOptions]):
    default_base_url = "https://api.beep.invalid"

    def build_send(self, message: SmsMessage, creds: Credentials, correlation_id: str | None) -> VendorRequest:
        body = {"to": e164(message.to), "from": sender(message, self.config.from_number or self.config.sender_id, slug=self.slug),
                "text": message.body, "priority": self.config.priority, "reference": correlation_id}
        return VendorRequest("POST", "/v1/texts", json=body, headers={"X-Beep-Key": creds.data["api_key"]})

    def parse_send(self, response: httpx.Response, message: SmsMessage) -> SendResult:
        body = response.json()
        return SendResult(self.slug, body["text_id"], (RecipientResult(e164(message.to), DeliveryStatus.QUEUED, body["text_id"]),))

    def error_for(self, response: httpx.Response) -> ConnectorError:
        exc = super().error_for(response)
        error = exc.response_data.get("error") if isinstance(exc.response_data, Mapping) else None
        if isinstance(exc, ValidationError) and isinstance(error, Mapping) and error.get("code") == "recipient_blocked":
            return RecipientRefusedError(exc.message, recipient_status=DeliveryStatus.REJECTED, reason=f"beep: {error.get('message')}",
                                         service=self.slug, http_status=exc.http_status, response_data=exc.response_data)
        return exc

    def build_verify(self, creds: Credentials) -> VendorRequest:
        return VendorRequest("GET", "/v1/account", headers={"X-Beep-Key": creds.data["api_key"]})

    def check_balance(self, tenant_id: str | None = None) -> Mapping[str, Any]:
        body = self.execute("check_balance", self.build_verify, lambda r: r.json(), tenant_id=tenant_id, idempotent=True).value
        return {"vendor": self.slug, "balance": body["balance"], "currency": body["currency"]}


VENDOR = Vendor("beep", "Beep texts API (test-only vendor)", {"sms": BeepSmsAdapter}, BeepOptions,
                (AuthScheme(AuthMethod.API_KEY, ("api_key",), help="api_key: Settings > API keys in the Beep console"),),
                env={"api_key": "BEEP_API_KEY"})


# -- a local Beep that keeps to its documented contract ------------------------------------------------
class FakeBeep:
    """``POST /v1/texts`` (JSON, ``X-Beep-Key``) and ``GET /v1/account``; errors as ``{"error": {code, message}}``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.script: list[tuple[int | None, dict[str, Any], dict[str, str]]] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else {}
                fake.requests.append((self.command, self.path, body))
                status, payload, headers = fake.script.pop(0) if fake.script else fake.route(self.command, self.path, self.headers, body)
                if status is None:
                    fake.release.wait(30)
                    return
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, method: str, path: str, headers: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if headers.get("X-Beep-Key") != KEY:
            return 401, {"error": {"code": "bad_key", "message": "unknown API key"}}, {}
        if (method, path) == ("GET", "/v1/account"):
            return 200, {"balance": "12.50", "currency": "EUR"}, {}
        if (method, path) == ("POST", "/v1/texts"):
            if not headers.get("Content-Type", "").startswith("application/json") or not {"to", "from", "text"} <= body.keys():
                return 422, {"error": {"code": "invalid_request", "message": "to, from and text are required"}}, {}
            return 200, {"text_id": f"bt_{len(self.requests)}", "state": "queued"}, {}
        return 404, {"error": {"code": "not_found", "message": path}}, {}

    def then(self, status: int | None, code: str = "", headers: dict[str, str] | None = None) -> None:
        self.script.append((status, {"error": {"code": code, "message": code.replace("_", " ")}}, headers or {}))

    def sends(self) -> list[dict[str, Any]]:
        return [body for method, path, body in self.requests if (method, path) == ("POST", "/v1/texts")]

    def __enter__(self) -> "FakeBeep":
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


# -- registration: the only step outside the vendor module -----------------------------------------------
@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(catalog.VENDORS, "beep", VENDOR)
    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")


@pytest.fixture
def beep() -> Iterator[FakeBeep]:
    with FakeBeep() as fake:
        yield fake


def configure(home: Path, url: str, chain: str = "beep", **options: Any) -> Path:
    section = {"base_url": url, "timeout_seconds": 1.0, "connect_timeout_seconds": 1.0, "sender_id": "AcmeShop", **options}
    return write_config(home, json.dumps({"sms_vendor": chain.split(","), "retry_policy": {"initial_delay_ms": 1, "jitter": False},
                                          "vendors": {"beep": section}}))


def store_key(cli: Any, monkeypatch: pytest.MonkeyPatch, key: str = KEY) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(key))
    result = cli("creds", "set", "beep", "--stdin")
    assert result.exit_code == 0, result.output


# -- config ---------------------------------------------------------------------------------------------------
def test_the_config_loader_reads_the_declared_options_and_refuses_bad_ones(home: Path) -> None:
    configure(home, "http://127.0.0.1:9", priority=9)
    options = load_settings().vendor("beep")
    assert isinstance(options, BeepOptions) and (options.priority, options.sender_id) == (9, "AcmeShop")

    path = configure(home, "http://127.0.0.1:9", priority=12)
    with pytest.raises(ConfigurationError, match=rf"{path}:1: vendors.beep.priority: must be between 1 and 9"):
        load_settings()
    configure(home, "http://127.0.0.1:9", colour="blue")
    with pytest.raises(ConfigurationError, match=r"vendors.beep.colour: unknown key \(known: .*priority.*sender_id"):
        load_settings()


# -- credentials ------------------------------------------------------------------------------------------------
def test_creds_set_stores_the_declared_fields_and_creds_test_proves_them(cli: Any, home: Path, beep: FakeBeep,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    configure(home, beep.url)
    refused = cli("creds", "set", "beep", "--stdin", "--auth-method", "basic_auth")
    assert refused.exit_code == 2 and "beep takes api_key credentials, not basic_auth" in refused.stderr
    store_key(cli, monkeypatch, "wrong-key-000000000000")
    rejected = cli("creds", "test", "beep", "--json")
    assert rejected.exit_code != 0 and json.loads(rejected.stdout)["result"] == "rejected"
    store_key(cli, monkeypatch)
    ok = cli("creds", "test", "beep", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["result"] == "ok"
    assert beep.sends() == [] and KEY not in ok.output + rejected.output


def test_the_vendors_own_env_var_is_declared_in_its_module_alone(cli: Any, home: Path, beep: FakeBeep,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``env=`` in the declaration is all it takes: nothing stored, ``$BEEP_API_KEY`` set, and the send
    goes out with it; ``creds list`` and ``config show`` name the variable, never its value."""
    configure(home, beep.url)
    monkeypatch.setenv("BEEP_API_KEY", KEY)
    sent = cli("send", "sms", "--to", "+1 415 555 2671", "--message", "hello", "--json")
    assert sent.exit_code == 0, sent.output  # the fake refuses any other key
    assert len(beep.sends()) == 1
    listed = json.loads(cli("creds", "list", "-o", "json").stdout)
    assert [(r["service"], r["source"]) for r in listed] == [("beep", "env:BEEP_API_KEY")]
    shown = json.loads(cli("config", "show", "-o", "json").stdout)["values"]["credentials.beep"]
    assert shown == {"value": ["api_key"], "source": "env:BEEP_API_KEY"}
    assert KEY not in cli("creds", "list").output + cli("config", "show").output


# -- send --dry-run, send, failover ------------------------------------------------------------------------------
def test_dry_run_shows_the_real_request_with_the_key_masked_and_sends_nothing(cli: Any, home: Path, beep: FakeBeep,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    configure(home, beep.url, priority=8)
    store_key(cli, monkeypatch)
    result = cli("send", "sms", "--to", "+1 415 555 2671", "--message", "code 1234", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    (hop,) = json.loads(result.stdout)["chain"]
    request = hop["request"]
    assert (request["method"], request["url"]) == ("POST", f"{beep.url}/v1/texts")
    assert request["body"] == {"to": TO, "from": "AcmeShop", "text": "code 1234", "priority": 8, "reference": None}
    assert request["headers"]["x-beep-key"] == "***" and KEY not in result.output
    assert beep.requests == []


def test_send_goes_through_the_pipeline_and_logs_where_the_key_came_from(cli: Any, home: Path, beep: FakeBeep,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    configure(home, beep.url)
    store_key(cli, monkeypatch)
    result = cli("send", "sms", "--to", "+1 415 555 2671", "--message", "hello", "--json")
    assert result.exit_code == 0, result.output
    sent = json.loads(result.stdout)
    assert sent["vendor"] == "beep" and sent["message_id"] == "bt_1"
    assert beep.sends() == [{"to": TO, "from": "AcmeShop", "text": "hello", "priority": 5, "reference": sent["correlation_id"]}]
    rows = [json.loads(line) for line in cli("logs", "list", "--service", "beep", "-o", "jsonl").stdout.splitlines()]
    assert [(r["operation"], r["status"]) for r in rows] == [("send_sms", "success")]
    assert "credential_source" in json.dumps(rows) and KEY not in json.dumps(rows)


def test_a_beep_outage_fails_over_to_the_next_vendor(cli: Any, home: Path, beep: FakeBeep, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(home, beep.url, chain="beep,file")
    store_key(cli, monkeypatch)
    for _ in range(3):
        beep.then(503, "maintenance")
    result = cli("send", "sms", "--to", "+1 415 555 2671", "--message", "hello", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["vendor"] == "file" and len(beep.sends()) == 3
    assert len(list((home / "outbox").glob("*.sms.json"))) == 1


# -- the contract every SMS vendor passes ------------------------------------------------------------------------
class TestBeepContract(SmsContract):
    slug = "beep"
    secret = KEY
    answers = {"auth": (401, "bad_key"), "invalid": (422, "invalid_request"), "refused_recipient": (422, "recipient_blocked"),
               "unavailable": (503, "maintenance"), "server_error": (502, "bad_gateway"), "hang": (None, "")}

    def make_fake(self) -> FakeBeep:
        return FakeBeep()

    def vendor_config(self, fake: FakeBeep) -> dict[str, Any]:
        return {"sender_id": "AcmeShop"}

    def credentials(self) -> dict[str, str]:
        return {"api_key": KEY}

    def observed(self, fake: FakeBeep) -> dict[str, Any]:
        sent = fake.sends()[-1]
        return {"to": sent["to"], "from": sent["from"], "body": sent["text"]}

    def sends_seen(self, fake: FakeBeep) -> int:
        return len(fake.sends())

    def fail_next(self, fake: FakeBeep, kind: str, **options: Any) -> None:
        if kind == "rate_limited":
            fake.then(429, "rate_limited", {"Retry-After": str(options["retry_after"])})
        else:
            fake.then(*self.answers[kind])


def test_the_vendor_is_known_only_through_its_registration() -> None:
    """No product file names the vendor: everything above went through the seam."""
    product = Path(catalog.__file__).resolve().parents[1]
    assert catalog.declaration("beep") is VENDOR
    assert [p for p in product.rglob("*.py") if "beep" in p.read_text(encoding="utf-8").lower()] == []

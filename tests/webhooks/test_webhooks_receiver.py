"""The receiver route: verify on raw bytes, answer 2xx only when genuine, log every delivery, store once.

Driven through Starlette's TestClient and through a real uvicorn server on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from connectorctl.resilience.clock import FakeClock
from tests.conftest import write_config
from tests.webhooks.webhook_cases import CASES, NOW, SENDGRID_PUBLIC, Case

CONFIG = """
webhooks:
  stripe:
    scheme: stripe
    secret_env: [STRIPE_WHSEC_OLD, STRIPE_WHSEC_NEW]
  github:
    scheme: github
    secret_env: [GITHUB_SECRET]
  twilio:
    scheme: twilio
    url: https://erp.example.com/api/connector/webhooks/twilio
    secret_env: [TWILIO_TOKEN]
  postmark:
    scheme: postmark
    secret_env: [POSTMARK_HOOK_AUTH]
  sendgrid:
    scheme: sendgrid
    secret_env: [SENDGRID_PUBLIC_KEY]
  broken:
    scheme: github
    secret_env: [NEVER_SET_VARIABLE]
  small:
    scheme: github
    secret_env: [GITHUB_SECRET]
    max_body_bytes: 64
"""
SECRETS = {"STRIPE_WHSEC_OLD": "whsec_old_rotated_out", "STRIPE_WHSEC_NEW": "whsec_stripe_test_secret", "GITHUB_SECRET": "github-hook-secret",
           "TWILIO_TOKEN": "twilio-auth-token", "POSTMARK_HOOK_AUTH": "hook:s3cret-pass", "SENDGRID_PUBLIC_KEY": SENDGRID_PUBLIC}


def case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


@pytest.fixture
def connector(home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from connectorctl.config import load_settings
    from connectorctl.gateway import Connector

    write_config(home, CONFIG)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NEVER_SET_VARIABLE", raising=False)
    return Connector(load_settings(), clock=FakeClock(NOW))


@pytest.fixture
def app(connector: Any) -> Any:
    from starlette.applications import Starlette

    from connectorctl.webhooks.receiver import webhook_routes

    return Starlette(routes=webhook_routes(connector))


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    from starlette.testclient import TestClient

    with TestClient(app) as c:
        yield c


def rows(connector: Any, sql: str) -> list[dict[str, Any]]:
    def query(conn: Any) -> list[dict[str, Any]]:
        cur = conn.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    return connector.db.run(query)


def post(client: Any, service: str, signed: Any) -> Any:
    return client.post(f"/api/connector/webhooks/{service}", content=signed.body, headers=dict(signed.headers))


def test_accepted_event_is_stored_once_and_logged_inbound(client: Any, connector: Any) -> None:
    signed = case("stripe").signed()
    first = post(client, "stripe", signed)
    assert first.status_code == 200 and first.json()["status"] == "accepted"
    assert first.json()["event_id"] == "evt_1NG8Du2eZvKYlo2CUI79vXWy"
    events = rows(connector, "SELECT * FROM webhook_events")
    assert len(events) == 1
    assert (events[0]["service"], events[0]["event_type"], events[0]["processed_at"]) == ("stripe", "payment_intent.succeeded", None)
    assert events[0]["payload"].encode() == signed.body
    log = rows(connector, "SELECT * FROM integration_logs")[0]
    assert (log["direction"], log["status"], log["http_status_code"], log["operation"]) == ("inbound", "success", 200, "payment_intent.succeeded")
    assert log["correlation_id"] == "evt_1NG8Du2eZvKYlo2CUI79vXWy" and log["error_code"] is None
    assert json.loads(log["request_data"])["body"]["type"] == "payment_intent.succeeded"
    for secret in SECRETS.values():
        assert secret not in json.dumps(log)


def test_duplicate_delivery_is_acknowledged_but_not_stored_twice(client: Any, connector: Any) -> None:
    signed = case("stripe").signed()
    assert post(client, "stripe", signed).json()["status"] == "accepted"
    again = post(client, "stripe", signed)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    # Stripe's own retry, minutes later with a fresh timestamp and signature: same event id, still one row
    connector.clock.advance(3600)
    retry = post(client, "stripe", case("stripe").signed(now=NOW + 3600))
    assert retry.status_code == 200 and retry.json()["status"] == "duplicate"
    assert len(rows(connector, "SELECT * FROM webhook_events")) == 1
    logs = rows(connector, "SELECT status, error_code FROM integration_logs ORDER BY seq")
    assert logs == [{"status": "success", "error_code": None}, {"status": "success", "error_code": "replay"}, {"status": "success", "error_code": "replay"}]


@pytest.mark.parametrize(("mutate", "status", "reason"), [
    (lambda s: (s.body + b" ", dict(s.headers)), 401, "bad_signature"),
    (lambda s: (s.body, {}), 400, "missing_header"),
    (lambda s: (s.body, {"Stripe-Signature": "v1=abc"}), 400, "malformed_header"),
    (lambda s: (json.dumps(json.loads(s.body), indent=2).encode(), dict(s.headers)), 401, "bad_signature"),
])
def test_rejected_deliveries_get_4xx_are_logged_and_not_kept(client: Any, connector: Any, mutate: Any, status: int, reason: str) -> None:
    body, headers = mutate(case("stripe").signed())
    response = client.post("/api/connector/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == status and response.json()["error"]["code"] == reason
    assert rows(connector, "SELECT * FROM webhook_events") == []
    log = rows(connector, "SELECT * FROM integration_logs")[0]
    assert (log["direction"], log["status"], log["error_code"], log["http_status_code"]) == ("inbound", "failed", reason, status)


def test_stale_delivery_is_401(client: Any, connector: Any) -> None:
    response = post(client, "stripe", case("stripe").signed(now=NOW - 301))
    assert response.status_code == 401 and response.json()["error"]["code"] == "stale"


def test_rotated_secret_still_accepted(client: Any, connector: Any) -> None:
    from connectorctl.webhooks import get_verifier

    signed = get_verifier("stripe").sign(case("stripe").body, "whsec_old_rotated_out", now=NOW)
    assert post(client, "stripe", signed).status_code == 200


def test_twilio_form_uses_the_configured_public_url(client: Any, connector: Any) -> None:
    twilio = case("twilio-form")
    from connectorctl.webhooks import get_verifier

    signed = get_verifier("twilio", url="https://erp.example.com/api/connector/webhooks/twilio").sign(twilio.body, twilio.sign_secret)
    headers = {**signed.headers, "Content-Type": "application/x-www-form-urlencoded"}
    ok = client.post("/api/connector/webhooks/twilio", content=signed.body, headers=headers)
    assert ok.status_code == 200, ok.json()
    assert rows(connector, "SELECT operation FROM integration_logs")[0]["operation"] == "delivered"


def test_postmark_credentials_never_reach_the_log(client: Any, connector: Any) -> None:
    assert post(client, "postmark", case("postmark").signed()).status_code == 200
    wrong = client.post("/api/connector/webhooks/postmark", content=b"{}", headers={"Authorization": "Basic aG9vazp3cm9uZw=="})
    assert wrong.status_code == 401
    text = json.dumps(rows(connector, "SELECT * FROM integration_logs"))
    assert "aG9vazpzM2NyZXQtcGFzcw" not in text and "s3cret-pass" not in text and "aG9vazp3cm9uZw" not in text


def test_sendgrid_ecdsa_delivery(client: Any, connector: Any) -> None:
    response = post(client, "sendgrid", case("sendgrid").signed())
    assert response.status_code == 200
    assert rows(connector, "SELECT event_type FROM webhook_events")[0]["event_type"] == "delivered"


def test_unknown_misconfigured_and_oversized(client: Any, connector: Any) -> None:
    github = case("github").signed()
    assert post(client, "nobody", github).status_code == 404
    broken = post(client, "broken", github)
    assert broken.status_code == 500 and broken.json()["error"]["code"] == "config_error"
    big = client.post("/api/connector/webhooks/small", content=b"x" * 65, headers=dict(github.headers))
    assert big.status_code == 413
    assert client.get("/api/connector/webhooks/github").status_code == 405
    logged = rows(connector, "SELECT service_name, status, error_code FROM integration_logs")
    assert logged == [{"service_name": "broken", "status": "failed", "error_code": "config_error"}]


def test_real_uvicorn_server_on_localhost(app: Any, connector: Any) -> None:
    import httpx
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}/api/connector/webhooks/github"
        signed = case("github").signed()
        with httpx.Client(timeout=10) as http:
            ok = http.post(url, content=signed.body, headers=dict(signed.headers))
            dup = http.post(url, content=signed.body, headers=dict(signed.headers))
            bad = http.post(url, content=signed.body[:-1] + b"!", headers=dict(signed.headers))
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert (ok.status_code, ok.json()["status"]) == (200, "accepted")
    assert (dup.status_code, dup.json()["status"]) == (200, "duplicate")
    assert (bad.status_code, bad.json()["error"]["code"]) == (401, "bad_signature")
    assert len(rows(connector, "SELECT * FROM webhook_events")) == 1
    assert len(rows(connector, "SELECT * FROM integration_logs WHERE direction = 'inbound'")) == 3


def test_state_file_failure_is_503_so_the_vendor_retries(client: Any, connector: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectorctl.errors import StateStoreError
    from connectorctl.webhooks.receiver import WebhookReceiver

    def locked(*args: Any) -> Any:
        raise StateStoreError("database stayed locked")

    monkeypatch.setattr(WebhookReceiver, "_accept", locked)
    response = post(client, "github", case("github").signed())
    assert response.status_code == 503 and response.json()["error"]["code"] == "state_unavailable"

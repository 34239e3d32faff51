"""A signed vendor callback through a real `connectorctl serve` process, signed by `connectorctl webhook sign` (run in this process)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from tests.api.test_api_process import Served, start, stop
from tests.conftest import write_config

pytestmark = pytest.mark.slow
SECRET_ENV = {"STRIPE_ENDPOINT_SECRET": "whsec_integration_test_secret"}
CONFIG = """
webhooks:
  stripe:
    scheme: stripe
    secret_env: [STRIPE_ENDPOINT_SECRET]
"""
EVENT = {"id": "evt_1Integ", "object": "event", "type": "invoice.paid", "data": {"object": {"id": "in_1", "customer_email": "ann@example.com"}}}


@pytest.fixture
def server(home: Path) -> Iterator[Served]:
    write_config(home, CONFIG)
    served = start(home, env=SECRET_ENV)
    yield served
    if served.proc.poll() is None:
        stop(served)


def signed(cli: Callable[..., Any], tmp_path: Path, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body_file = tmp_path / f"{event['id']}.json"
    body_file.write_bytes(json.dumps(event).encode())
    result = cli("webhook", "sign", "--service", "stripe", "--body-file", str(body_file), "--json")
    assert result.exit_code == 0, result.stderr
    example = json.loads(result.stdout)
    assert example["scheme"] == "stripe" and SECRET_ENV["STRIPE_ENDPOINT_SECRET"] not in result.output
    return body_file.read_bytes(), example["headers"]


def stored_events(home: Path) -> list[tuple[str, str, str]]:
    from connectorctl.store.db import StateDB

    db = StateDB(home / "connectorctl.db")
    try:
        return db.run(lambda c: c.execute("SELECT service, event_id, event_type FROM webhook_events ORDER BY received_at").fetchall())
    finally:
        db.close()


def inbound_rows(cli: Callable[..., Any]) -> list[dict[str, Any]]:
    result = cli("logs", "list", "--json", "--service", "stripe")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)["data"]
    full = cli("logs", "list", "-o", "jsonl", "--service", "stripe")
    rows = [json.loads(line) for line in full.stdout.splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in summary]
    return [r for r in rows if r["direction"] == "inbound"]


def test_signed_delivery_is_accepted_stored_once_and_logged(server: Served, home: Path, tmp_path: Path, cli: Callable[..., Any],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    body, headers = signed(cli, tmp_path, EVENT)
    url = f"{server.url}/api/connector/webhooks/stripe"
    with httpx.Client(timeout=10) as http:
        first = http.post(url, content=body, headers={**headers, "Content-Type": "application/json"})
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "accepted" and first.json()["event_id"] == "evt_1Integ"
        again = http.post(url, content=body, headers={**headers, "Content-Type": "application/json"})
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        tampered = http.post(url, content=body.replace(b"ann@", b"eve@"), headers={**headers, "Content-Type": "application/json"})
        assert tampered.status_code == 401 and tampered.json()["error"]["code"] == "bad_signature"
        unsigned = http.post(url, content=body, headers={"Content-Type": "application/json"})
        assert unsigned.status_code == 400
        # forged or not, inbound deliveries say nothing about stripe's API: no status verdict from them
        assert "stripe" not in http.get(f"{server.url}/api/connector/status").json()["services"]

    assert stored_events(home) == [("stripe", "evt_1Integ", "invoice.paid")]
    rows = inbound_rows(cli)
    assert sorted((r["status"], r["http_status_code"], r["error_code"] or "") for r in rows) == [
        ("failed", 400, "missing_header"), ("failed", 401, "bad_signature"), ("success", 200, ""), ("success", 200, "replay"),
    ]
    accepted = next(r for r in rows if r["error_code"] is None)
    assert (accepted["operation"], accepted["correlation_id"]) == ("invoice.paid", "evt_1Integ")
    everything = json.dumps(rows)
    assert SECRET_ENV["STRIPE_ENDPOINT_SECRET"] not in everything
    status = cli("status", "--json")
    assert status.exit_code == 0 and "stripe" not in json.loads(status.stdout)["services"]
    assert stop(server) == 0


def test_secret_from_the_credential_store_verifies_through_serve(home: Path, tmp_path: Path, cli: Callable[..., Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`creds set` stores the signing secret encrypted; `serve` and `webhook sign` both read it from there."""
    import base64

    secret = "gh-hook-secret-5f1e9a77c3"
    env = {"CONNECTORCTL_MASTER_KEY": base64.b64encode(bytes(range(32))).decode()}
    write_config(home, "webhooks:\n  github:\n    scheme: github\n    secrets_from_creds: github\n")
    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY", env["CONNECTORCTL_MASTER_KEY"])
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setattr("sys.stdin", io.StringIO(secret + "\n"))
    stored = cli("creds", "set", "github", "--auth-method", "hmac", "--field", "secret", "--stdin")
    assert stored.exit_code == 0, stored.stderr
    body_file = tmp_path / "push.json"
    body_file.write_bytes(b'{"ref":"refs/heads/main","commits":[]}')
    sign = cli("webhook", "sign", "--service", "github", "--event-id", "delivery-1", "--body-file", str(body_file), "--json")
    assert sign.exit_code == 0, sign.stderr
    headers = json.loads(sign.stdout)["headers"]

    served = start(home, env=env)
    try:
        url = f"{served.url}/api/connector/webhooks/github"
        with httpx.Client(timeout=10) as http:
            ok = http.post(url, content=body_file.read_bytes(), headers=headers)
            assert ok.status_code == 200 and ok.json()["event_id"] == "delivery-1"
            forged = http.post(url, content=body_file.read_bytes() + b" ", headers=headers)
            assert forged.status_code == 401
    finally:
        assert stop(served) == 0
    assert stored_events(home) == [("github", "delivery-1", "ping")]
    on_disk = b"".join(p.read_bytes() for p in home.glob("connectorctl.db*"))
    assert secret.encode() not in on_disk
    for text in (stored.stdout, stored.stderr, sign.stdout, sign.stderr):
        assert secret not in text


def test_purge_prunes_the_replay_store(home: Path, cli: Any) -> None:
    """Expired delivery ids go with `logs purge`; ids still inside their replay window stay."""
    import time

    from connectorctl.store.db import StateDB

    write_config(home, CONFIG)
    now = time.time()
    db = StateDB(home / "connectorctl.db")
    with db.write() as c:
        c.executemany("INSERT INTO seen_webhook_events (service, event_id, seen_at, expires_at) VALUES (?, ?, ?, ?)", [
            ("stripe", "evt_old", now - 3 * 86400, now - 3 * 86400 + 600),
            ("stripe", "evt_fresh", now - 60, now + 540),
        ])
    db.close()
    dry = cli("logs", "purge", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert _seen(home) == ["evt_fresh", "evt_old"]  # a dry run deletes nothing
    result = cli("logs", "purge", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert _seen(home) == ["evt_fresh"]


def _seen(home: Path) -> list[str]:
    from connectorctl.store.db import StateDB

    db = StateDB(home / "connectorctl.db")
    try:
        return [r[0] for r in db.run(lambda c: c.execute("SELECT event_id FROM seen_webhook_events ORDER BY event_id").fetchall())]
    finally:
        db.close()

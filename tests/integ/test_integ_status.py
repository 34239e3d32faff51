"""`connectorctl status` and `GET /api/connector/status` give the same verdicts: one set of rules."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from connectorctl.store.logs import INSERT_LOG
from tests.conftest import write_config

CONFIG = """
email_vendor: [sendgrid, mailgun]
sms_vendor: [console]
status:
  window_minutes: 30
  healthy_min_success_rate: 95
  degraded_min_success_rate: 80
"""


def rows(service: str, ok: int, failed: int, minutes_ago: float, duration: int = 100) -> list[tuple[Any, ...]]:
    """``ok`` successes and ``failed`` failures, ``minutes_ago`` before now."""
    at = (datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    out = []
    for i in range(ok + failed):
        status = "success" if i < ok else "failed"
        out.append((f"01INTEG{service[:4].upper()}{minutes_ago:04.0f}{i:010d}", None, service, "send_email", "https://x.invalid", "POST",
                    status, 200 if status == "success" else 503, duration + i, None, None, None, None, 1, None, "outbound", at))
    return out


def seed(home: Path) -> None:
    from connectorctl.config import load_settings
    from connectorctl.gateway import Connector

    connector = Connector(load_settings())
    with connector.db.write() as c:
        c.executemany(INSERT_LOG, [
            *rows("sendgrid", 97, 3, 5),        # 97 %: healthy
            *rows("mailgun", 9, 1, 3),          # 90 %: degraded
            *rows("mailgun", 0, 40, 45),        # outside the 30-minute window: ignored by both
            *rows("twilio", 1, 4, 2),           # not configured but busy: 20 %, down
        ])
    connector.close()


def api_status() -> dict[str, Any]:
    from starlette.testclient import TestClient

    from connectorctl.api import create_app
    from connectorctl.config import load_settings
    from connectorctl.gateway import Connector

    connector = Connector(load_settings())
    try:
        with TestClient(create_app(connector, status_fresh_seconds=0)) as client:
            response = client.get("/api/connector/status")
            assert response.status_code == 200
            return response.json()
    finally:
        connector.close()


SHARED = ("status", "success_rate", "avg_duration_ms", "circuit_state", "calls")


def test_cli_and_api_agree_on_a_seeded_database(cli: Any, home: Path) -> None:
    write_config(home, CONFIG)
    seed(home)
    assert cli("circuit", "trip", "postmark", "--reason", "maintenance").exit_code == 0  # known only by its circuit row

    result = cli("status", "-o", "json")
    api = api_status()
    cli_body = json.loads(result.stdout)

    assert result.exit_code == 7  # twilio and postmark are down
    assert list(api) == ["services", "timestamp"]  # the reference shape, extra fields only per service
    assert list(cli_body["services"]) == list(api["services"]) == ["sendgrid", "mailgun", "console", "postmark", "twilio"]
    for name, entry in api["services"].items():
        assert {k: entry[k] for k in SHARED} == {k: cli_body["services"][name][k] for k in SHARED}, name
        assert entry["window_minutes"] == cli_body["window_minutes"] == 30
    verdicts = {name: (e["status"], e["success_rate"], e["circuit_state"]) for name, e in api["services"].items()}
    assert verdicts == {
        "sendgrid": ("healthy", 97.0, "closed"),
        "mailgun": ("degraded", 90.0, "closed"),
        "console": ("healthy", None, "closed"),
        "postmark": ("down", None, "forced_open"),
        "twilio": ("down", 20.0, "closed"),
    }
    assert api["services"]["mailgun"]["calls"] == 10 and api["services"]["mailgun"]["avg_duration_ms"] == 104.5


def test_api_status_keeps_the_reference_fields_for_every_service(home: Path) -> None:
    write_config(home, CONFIG)
    seed(home)
    body = api_status()
    for entry in body["services"].values():
        assert {"status", "success_rate", "avg_duration_ms"} <= set(entry)
        assert entry["status"] in ("healthy", "degraded", "down")
    datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))  # RFC 3339 UTC, as every machine output
    assert body["timestamp"].endswith("Z")

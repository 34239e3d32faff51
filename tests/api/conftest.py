"""A seeded installation for the API tests: fixed clock, known rows, one open circuit."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from connectorctl.config import Settings
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock
from connectorctl.store.logs import INSERT_LOG

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
NOW_DT = datetime.fromtimestamp(NOW, timezone.utc)


def ts(delta: timedelta) -> str:
    moment = NOW_DT - delta
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def log_row(row_id: str, service: str, status: str, duration_ms: int, ago: timedelta, *, http: int | None = None,
            error: str | None = None, error_code: str | None = None, tenant: str | None = None, attempt: int = 1,
            request: Any = None, response: Any = None) -> tuple[Any, ...]:
    return (
        row_id, tenant, service, "send_email", f"https://{service}.example.invalid/send", "POST", status, http, duration_ms,
        None if request is None else json.dumps(request), None if response is None else json.dumps(response),
        error, error_code, attempt, f"corr-{row_id[-2:]}", "outbound", ts(ago),
    )


def rid(n: int) -> str:
    return f"01JAPITEST{n:016d}"


SEED = [
    log_row(rid(1), "fake", "success", 100, timedelta(minutes=10), http=202, tenant="t1", request={"to": "a@example.com"}, response={"id": "m1"}),
    log_row(rid(2), "fake", "success", 200, timedelta(minutes=5), http=202, tenant="t2", request={"to": "b@example.com"}, response={"id": "m2"}),
    log_row(rid(3), "fake", "success", 300, timedelta(minutes=1), http=202, tenant="t1", request={"to": "c@example.com"}, response={"id": "m3"}),
    log_row(rid(4), "fake", "rate_limited", 0, timedelta(days=2), error="fake: local rate limit reached", error_code="rate_limited", tenant="t1"),
    *[log_row(rid(10 + i), "file", "success", 10, timedelta(minutes=12 - i), http=200) for i in range(9)],
    log_row(rid(20), "file", "failed", 60, timedelta(seconds=30), http=500, error="file: vendor error", error_code="vendor_unavailable", attempt=2),
    log_row(rid(30), "legacyvendor", "success", 5, timedelta(days=30), http=200),
]


def make_settings(home: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home, "database": home / "connectorctl.db", "config_path": None,
        "email_vendor": ("fake", "file"), "sms_vendor": ("console",),
    }
    values.update(overrides)
    return Settings(**values)


def seed(connector: Connector, rows: list[tuple[Any, ...]] = SEED) -> None:
    with connector.db.write() as c:
        c.executemany(INSERT_LOG, rows)
        c.execute(
            "INSERT INTO circuit_state (service_name, state, consecutive_failures, opened_at, open_until, updated_at) VALUES (?, 'open', 5, ?, ?, ?)",
            ("console", NOW - 30, NOW + 30, NOW - 30),
        )


@pytest.fixture
def connector(home: Path) -> Iterator[Connector]:
    conn = Connector(make_settings(home), clock=FakeClock(NOW))
    seed(conn)
    yield conn
    conn.close()


@pytest.fixture
def client(connector: Connector) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from connectorctl.api import create_app

    with TestClient(create_app(connector), raise_server_exceptions=False) as c:
        yield c

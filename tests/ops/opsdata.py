"""Data and helpers for the operations tests: a seeded integration log and real CLI processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable


ROOT = Path(__file__).resolve().parents[2]


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Row:
    age: timedelta
    service: str = "alpha"
    status: str = "success"
    http: int | None = 200
    duration: int = 100
    attempt: int = 1
    tenant: str | None = "t1"
    operation: str = "send_email"
    error: str | None = None
    correlation: str | None = None  # attempts of one logical call share one (default: a call of its own)


_counter = iter(range(10**9))


def insert_rows(db_path: Path, rows: list[Row], now: datetime | None = None) -> list[str]:
    """Insert rows the way the pipeline's log writer does; returns their ids."""
    from connectorctl.store.db import StateDB
    from connectorctl.store.logs import INSERT_LOG

    now = now or datetime.now(timezone.utc)
    db = StateDB(db_path)
    ids = []
    with db.write() as c:
        for r in rows:
            log_id = f"01TEST{next(_counter):020d}"
            ids.append(log_id)
            c.execute(INSERT_LOG, (
                log_id, r.tenant, r.service, r.operation, f"https://api.{r.service}.test/v1/send", "POST", r.status, r.http,
                r.duration, '{"to":"a@example.com","api_key":"[REDACTED]"}', '{"id":"m1"}', r.error,
                None if r.status == "success" else r.status, r.attempt, r.correlation or f"corr-{log_id}", "outbound", iso(now - r.age),
            ))
    db.close()
    return ids


def h(hours: float) -> timedelta:
    return timedelta(hours=hours)


# alpha inside 7 days: 7 rows; success 3; failures failed/timeout/rate_limited/circuit_open one each
SEED = [
    Row(h(1), duration=100),
    Row(h(2), duration=200, tenant="t2"),
    Row(h(3), status="failed", http=503, duration=300, tenant="t2", error="HTTP 503"),
    Row(h(2.9), duration=400, attempt=2, tenant="t2"),
    Row(h(24), status="timeout", http=None, duration=5000, operation="verify_credentials", error="timed out"),
    Row(h(48), status="rate_limited", http=429, duration=50, error="HTTP 429"),
    Row(h(72), status="circuit_open", http=None, duration=0, tenant=None, error="circuit open"),
    Row(h(24 * 10), duration=150),
    Row(h(24 * 40), status="failed", http=400, duration=80, error="HTTP 400"),
    Row(h(0.5), service="beta", http=202, duration=60),
    Row(h(5), service="beta", status="failed", http=500, duration=900, error="HTTP 500"),
]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def popen_cli(*args: str) -> subprocess.Popen[str]:
    """A long-running ``python -m connectorctl`` (e.g. ``logs tail -f``), line-buffered text pipes."""
    return subprocess.Popen([sys.executable, "-u", "-m", "connectorctl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env(), cwd=ROOT, bufsize=1)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; bounded, so a failure is a clear timeout, not a hang."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the timeout")
        time.sleep(interval)

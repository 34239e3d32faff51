"""Several hosts on one PostgreSQL database: each host is a process with its own connection pool.

No file is shared between the processes (no SQLite file, no circuit counter file): whatever they
agree on, they agree on through PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest

from connectorctl.store.db import StateDB
from connectorctl.store.postgres import describe
from connectorctl.store.spool import AuditSpool
from tests.conftest import ROOT, write_config
from tests.pg_server import PostgresServer, find_bindir
from tests.support import run_on

pytestmark = pytest.mark.slow

_HOST = """
import json, sys, threading
from connectorctl.domain.messages import EmailMessage
from connectorctl.errors import ConnectorctlError
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import SystemClock

class RecordingClock(SystemClock):
    seen = threading.local()
    def time(self):
        self.seen.last = super().time()
        return self.seen.last

n, name = int(sys.argv[1]), sys.argv[2]
clock = RecordingClock()
admitted, errors = [], []
with Connector(clock=clock) as c:
    email = c.email()
    limiter = c.pipeline.limiter
    judge = limiter.try_acquire
    def recorded(service, windows):
        wait = judge(service, windows)
        if wait == 0.0:
            admitted.append(clock.seen.last)  # the instant the limiter judged by
        return wait
    limiter.try_acquire = recorded
    for i in range(n):
        try:
            email.send(EmailMessage(to=(f"user{i}@example.com",), subject=f"{name} #{i}", text="hi"))
        except ConnectorctlError as exc:
            errors.append(exc.code)
print(json.dumps({"admitted": admitted, "errors": errors}))
"""


def run_hosts(count: int, sends: int) -> list[dict[str, list]]:
    procs = [subprocess.Popen([sys.executable, "-c", _HOST, str(sends), f"host{n}"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(count)]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    return [json.loads(out) for out, _ in outputs]


@pytest.fixture
def shared(postgres_url: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CONNECTORCTL_DATABASE_URL", postgres_url)
    return postgres_url


def test_eight_hosts_sending_500_each_log_every_call(shared: str, home: Path) -> None:
    write_config(home, "email_vendor: fake\n")
    results = run_hosts(8, 500)
    assert [r["errors"] for r in results] == [[]] * 8
    rows = run_on(shared, lambda c: c.execute(
        "SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE status = 'success') FROM integration_logs").fetchone())
    assert rows == (4000, 4000, 4000)


def test_four_hosts_never_exceed_a_shared_quota(shared: str, home: Path) -> None:
    write_config(home, "email_vendor: fake\nvendors:\n  fake:\n    rate_limits: [{limit: 20, per_seconds: 2}]\n"
                       "    rate_limit_max_wait_seconds: 30\n")
    results = run_hosts(4, 30)
    assert [r["errors"] for r in results] == [[]] * 4
    per_window = Counter(int(t // 2) for r in results for t in r["admitted"])
    assert sum(per_window.values()) == 120
    assert max(per_window.values()) <= 20, per_window  # 0 over-admitted, in every window, across the hosts


_SENDER = """
import itertools, json, sys, os, threading, time
from connectorctl.domain.messages import EmailMessage
from connectorctl.errors import ConnectorctlError
from connectorctl.gateway import Connector
stop, hold = sys.argv[1], sys.argv[2]
numbers, out = itertools.count(1), threading.Lock()

def say(**line):
    with out:
        print(json.dumps(line), flush=True)

with Connector() as c:
    email, pipeline = c.email(), c.pipeline
    execute = pipeline.execute

    def held(call, fn):  # while `hold` exists, a vendor call that went out waits before its row is written
        def call_vendor():
            response = fn()
            if os.path.exists(hold):
                say(in_flight=1)
                while os.path.exists(hold):
                    time.sleep(0.01)
            return response
        return execute(call, call_vendor)

    pipeline.execute = held

    def sender():
        while not os.path.exists(stop):
            i = next(numbers)
            try:
                email.send(EmailMessage(to=("a@example.com",), subject=f"#{i}", text="hi"))
                say(ok=i)
            except ConnectorctlError as exc:
                say(error=exc.code, message=exc.message)
                time.sleep(0.05)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
"""


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own, since the test stops it."""
    bindir = find_bindir()
    assert bindir is not None, "PostgreSQL server binaries not found: install the postgresql package"
    server = PostgresServer(bindir)
    server.start()
    yield server
    server.close()


def test_postgres_stopped_mid_run_fails_clearly_loses_no_audit_row_and_recovers(
        own_server: PostgresServer, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTORCTL_DATABASE_URL", own_server.url())
    monkeypatch.setenv("CONNECTORCTL_BUSY_TIMEOUT_MS", "1000")  # how long a call waits for a connection
    write_config(home, "email_vendor: file\n")
    StateDB(own_server.url()).close()
    stop, hold = home / "stop", home / "hold"
    sender = subprocess.Popen([sys.executable, "-c", _SENDER, str(stop), str(hold)], cwd=ROOT, env=dict(os.environ),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert sender.stdout is not None
    lines: list[dict[str, object]] = []

    def read_until(predicate) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = sender.stdout.readline()  # type: ignore[union-attr]
            assert line, sender.stderr.read()  # type: ignore[union-attr]
            lines.append(json.loads(line))
            if predicate(lines[-1]):
                return
        raise AssertionError("sender made no progress")

    try:
        read_until(lambda line: sum("ok" in x for x in lines) >= 20)
        hold.touch()
        read_until(lambda line: sum("in_flight" in x for x in lines) == 4)  # four sends went out ...
        own_server.stop("fast")  # ... and the database dies before their rows are written
        hold.unlink()
        errors_before = sum("error" in line for line in lines)
        read_until(lambda line: "error" in line and sum("error" in x for x in lines) >= errors_before + 3)
        own_server.restart()
        read_until(lambda line: "ok" in line and sum("error" in x for x in lines) > errors_before)
        read_until(lambda line: "ok" in line)  # and keeps going
    finally:
        stop.touch()
        # Read on through the buffer readline() filled: communicate() reads the pipe itself and would drop it.
        rest, err = sender.stdout.read(), sender.stderr.read()  # type: ignore[union-attr]
        sender.wait(timeout=60)
        lines += [json.loads(line) for line in rest.splitlines()]
    assert sender.returncode == 0 and "Traceback" not in err, err
    assert "audit rows are kept in" in err and "integration log not written" not in err, err
    errors = [line for line in lines if "error" in line]
    assert errors and {e["error"] for e in errors} == {"state_unavailable"}
    assert all("unreachable" in str(e["message"]) and "postgresql://127.0.0.1" in str(e["message"]) for e in errors)
    sent = len(list((home / "outbox").glob("*.eml")))
    logged, distinct = run_on(own_server.url(), lambda c: c.execute(
        "SELECT count(*), count(DISTINCT id) FROM integration_logs WHERE status = 'success'").fetchone())
    ok = sum("ok" in line for line in lines)
    # Nothing was sent while the state was known down, and every send has its audit row: the four sends the
    # server died under had theirs kept in the local audit spool, drained when the server came back.
    assert sent == ok and logged == distinct == sent, (sent, ok, logged, distinct, err)
    assert AuditSpool(home / "audit-spool.db").count(describe(own_server.url())) == 0

"""The circuit check reads cached circuit rows: how stale they may get, and when every call reads again.

A process re-reads the circuit rows when another process (or host) announces a change (SQLite: the
shared counter file; PostgreSQL: NOTIFY from a trigger), and at the latest after
``circuit_breaker.max_staleness_seconds``.  A change nobody announced (a lost notification, a pooler
that drops them) is therefore obeyed within that bound; without a LISTEN connection every call reads.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from connectorctl.config import load_settings
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import EmailMessage
from connectorctl.errors import CircuitOpenError
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock
from tests.conftest import write_config
from tests.support import ScriptedVendor

MESSAGE = EmailMessage(to=("a@example.com",), subject="s", text="t")

_TRIP = ("INSERT INTO circuit_state (service_name, state, reason) VALUES ('echo', 'forced_open', 'maintenance') "
         "ON CONFLICT (service_name) DO UPDATE SET state = excluded.state, reason = excluded.reason")


def connector_with(home: Path, vendor: ScriptedVendor, clock: FakeClock, max_staleness: float) -> Connector:
    write_config(home, f"""
email_vendor: echo
circuit_breaker: {{max_staleness_seconds: {max_staleness}}}
retry_policy: {{max_attempts: 1}}
vendors:
  echo: {{base_url: "{vendor.url}", timeout_seconds: 2}}
""")
    return Connector(load_settings(), clock=clock, credentials=StaticCredentialProvider({"echo": {"api_key": "k-1"}}))


def trip_unannounced(connector: Connector) -> None:
    """Open the circuit the way a lost notification looks: the row changes, no process is told."""
    db = connector.db
    if db.engine == "postgresql":
        assert db.url is not None
        with psycopg.connect(db.url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")  # this session fires no triggers
            conn.execute(_TRIP)
    else:
        with db.write() as c:
            c.execute(_TRIP)


@pytest.mark.usefixtures("engine")
def test_a_change_nobody_announced_is_obeyed_after_max_staleness(home: Path, vendor: ScriptedVendor) -> None:
    clock = FakeClock()
    connector = connector_with(home, vendor, clock, 2)
    assert connector.email().send(MESSAGE).ok
    assert connector.email().send(MESSAGE).ok  # the rows are cached now (on PostgreSQL: read after LISTEN began)
    trip_unannounced(connector)
    assert connector.email().send(MESSAGE).ok  # within the bound this process still acts on what it read
    clock.advance(2)
    served = len(vendor.requests)
    with pytest.raises(CircuitOpenError, match="maintenance"):
        connector.email().send(MESSAGE)
    assert len(vendor.requests) == served
    connector.close()


@pytest.mark.usefixtures("engine")
def test_zero_staleness_reads_the_rows_on_every_call(home: Path, vendor: ScriptedVendor) -> None:
    connector = connector_with(home, vendor, FakeClock(), 0)
    assert connector.email().send(MESSAGE).ok
    trip_unannounced(connector)
    with pytest.raises(CircuitOpenError):
        connector.email().send(MESSAGE)
    connector.close()


def listeners(connector: Connector) -> list[int]:
    return [row[0] for row in connector.db.conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'").fetchall()]


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_a_lost_listener_connection_means_every_call_reads_until_it_is_back(
        engine: str, home: Path, vendor: ScriptedVendor) -> None:
    connector = connector_with(home, vendor, FakeClock(), 300)
    assert connector.email().send(MESSAGE).ok
    assert connector.email().send(MESSAGE).ok
    [pid] = listeners(connector)
    connector.db.conn.execute("SELECT pg_terminate_backend(?)", (pid,))
    time.sleep(0.2)  # the session's goodbye reaches the client
    trip_unannounced(connector)
    with pytest.raises(CircuitOpenError):  # the 5-minute bound does not apply: nobody would announce changes
        connector.email().send(MESSAGE)
    connector.pipeline.breaker.reset("echo")
    deadline = time.monotonic() + 10
    while not listeners(connector):  # a call whose read succeeded listens again (at most once a second)
        assert time.monotonic() < deadline, "the cache never listened again"
        assert connector.email().send(MESSAGE).ok
        time.sleep(0.2)
    assert connector.email().send(MESSAGE).ok
    trip_unannounced(connector)
    assert connector.email().send(MESSAGE).ok  # cached again: nothing announced, the bound not reached
    connector.close()


@pytest.mark.parametrize("value", ["-1", "301", ".nan"])
def test_a_staleness_bound_outside_0_to_300_seconds_is_refused(home: Path, cli, value: str) -> None:  # type: ignore[no-untyped-def]
    write_config(home, f"circuit_breaker: {{max_staleness_seconds: {value}}}\n")
    result = cli("config", "show")
    assert result.exit_code == 2, result.output
    assert "config.yaml:1: circuit_breaker.max_staleness_seconds: " in result.stderr  # nan: "expected a number"
    assert "Traceback" not in result.output and result.stderr.strip().count("\n") == 0

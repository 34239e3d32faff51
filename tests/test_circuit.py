"""Circuit breaker: threshold, fail-fast, one probe across processes, operator states."""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Iterator

import pytest

from connectorctl.config import load_settings
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import EmailMessage
from connectorctl.domain.values import CircuitState
from connectorctl.errors import CircuitOpenError, ConnectorError, ValidationError, VendorUnavailableError
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock
from tests.conftest import ROOT, write_config
from tests.support import Reply, ScriptedVendor

MESSAGE = EmailMessage(to=("a@example.com",), subject="s", text="t")
MakeConnector = Callable[[FakeClock], Connector]


pytestmark = pytest.mark.usefixtures("engine")  # every circuit test runs on SQLite and on PostgreSQL

@pytest.fixture
def make_connector(home: Path, vendor: ScriptedVendor) -> Iterator[MakeConnector]:
    """Connectors of this test's installation (the echo vendor, threshold 3), closed when the test ends."""
    write_config(home, f"""
email_vendor: echo
circuit_breaker: {{failure_threshold: 3, timeout_seconds: 30}}
retry_policy: {{max_attempts: 1}}
vendors:
  echo: {{base_url: "{vendor.url}", timeout_seconds: 2}}
""")
    with ExitStack() as made:
        yield lambda clock: made.enter_context(
            Connector(load_settings(), clock=clock, credentials=StaticCredentialProvider({"echo": {"api_key": "k-123456"}}))
        )


def rows(connector: Connector) -> list[tuple]:
    connector.flush()
    return connector.db.conn.execute("SELECT status, error_code, attempt_number FROM integration_logs ORDER BY seq").fetchall()


def test_opens_after_threshold_then_fails_fast_without_touching_the_vendor(make_connector: MakeConnector, vendor: ScriptedVendor) -> None:
    clock = FakeClock()
    connector = make_connector(clock)
    vendor.default = Reply(503, {"errors": [{"message": "unavailable"}]})
    for _ in range(3):
        with pytest.raises(VendorUnavailableError):
            connector.email().send(MESSAGE)
    assert connector.pipeline.breaker.state("echo").state is CircuitState.OPEN
    before = len(vendor.requests)
    with pytest.raises(CircuitOpenError) as info:
        connector.email().send(MESSAGE)
    assert len(vendor.requests) == before
    assert info.value.retry_after_seconds == pytest.approx(30)
    assert rows(connector)[-1] == ("circuit_open", "circuit_open", 1)


def test_caller_errors_never_open_the_circuit(make_connector: MakeConnector, vendor: ScriptedVendor) -> None:
    connector = make_connector(FakeClock())
    vendor.default = Reply(400, {"errors": [{"message": "bad field"}]})
    for _ in range(6):
        with pytest.raises(ValidationError):
            connector.email().send(MESSAGE)
    assert connector.pipeline.breaker.state("echo").state is CircuitState.CLOSED


def test_half_open_probe_closes_on_success_and_reopens_on_failure(make_connector: MakeConnector, vendor: ScriptedVendor) -> None:
    clock = FakeClock()
    connector = make_connector(clock)
    vendor.default = Reply(503, {})
    for _ in range(3):
        with pytest.raises(ConnectorError):
            connector.email().send(MESSAGE)
    clock.advance(31)
    with pytest.raises(VendorUnavailableError):  # the probe goes through and fails
        connector.email().send(MESSAGE)
    assert connector.pipeline.breaker.state("echo").state is CircuitState.OPEN
    clock.advance(31)
    vendor.default = Reply(200, {"id": "ok"})
    assert connector.email().send(MESSAGE).ok
    state = connector.pipeline.breaker.state("echo")
    assert state.state is CircuitState.CLOSED and state.consecutive_failures == 0
    actions = [e["action"] for e in connector.pipeline.breaker.events("echo")]
    assert actions[:5] == ["close", "probe", "reopen", "probe", "open"]


_REGISTER = "from connectorctl.adapters import catalog; from tests.support import ECHO; catalog.VENDORS['echo'] = ECHO\n"
_RACER = _REGISTER + """
import sys, time
from connectorctl.config import load_settings
from connectorctl.errors import CircuitOpenError
from connectorctl.gateway import Connector
c = Connector(load_settings())
c.pipeline.breaker.cache.get("echo")  # warm up before the race
print("ready", flush=True)
start = float(sys.stdin.readline())
time.sleep(max(0.0, start - time.time()))
try:
    c.pipeline.breaker.before_call("echo")
    print("probe")
except CircuitOpenError:
    print("refused")
"""


def race_processes(make_connector: MakeConnector, insert_sql: str, params: tuple[object, ...]) -> list[str]:
    """Put the circuit row in place, then let eight processes (hosts, on PostgreSQL) call ``before_call`` at the same moment."""
    connector = make_connector(FakeClock())
    with connector.db.write() as c:
        c.execute(insert_sql, params)
    connector.pipeline.breaker.cache.bump()
    procs = [subprocess.Popen([sys.executable, "-c", _RACER], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(8)]
    assert [p.stdout.readline().strip() for p in procs if p.stdout] == ["ready"] * 8, [p.stderr.read() for p in procs if p.stderr]
    start = time.time() + 0.2  # every process is warmed up and waiting: they call at one moment
    outcomes = [p.communicate(f"{start}\n", timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outcomes]
    assert connector.pipeline.breaker.state("echo").state is CircuitState.HALF_OPEN
    return sorted(o[0].strip() for o in outcomes)


def test_exactly_one_probe_when_processes_race(make_connector: MakeConnector) -> None:
    verdicts = race_processes(make_connector, "INSERT INTO circuit_state (service_name, state, consecutive_failures, opened_at, open_until) "
                                  "VALUES ('echo', 'open', 3, ?, ?)", (time.time() - 100, time.time() - 1))
    assert verdicts == ["probe"] + ["refused"] * 7


def test_forced_open_by_another_process_is_obeyed_on_the_next_call(make_connector: MakeConnector, vendor: ScriptedVendor) -> None:
    connector = make_connector(FakeClock())
    assert connector.email().send(MESSAGE).ok  # this process has now cached the circuit state
    trip = _REGISTER + "from connectorctl.gateway import Connector; Connector().pipeline.breaker.trip('echo', reason='vendor maintenance', actor='ops')"
    subprocess.run([sys.executable, "-c", trip], cwd=ROOT, check=True, timeout=60)
    served = len(vendor.requests)
    with pytest.raises(CircuitOpenError, match="vendor maintenance"):
        connector.email().send(MESSAGE)
    assert len(vendor.requests) == served
    events = connector.pipeline.breaker.events("echo")
    assert events[0]["action"] == "trip" and events[0]["actor"] == "ops" and events[0]["reason"] == "vendor maintenance"
    connector.pipeline.breaker.reset("echo", actor="ops")
    assert connector.email().send(MESSAGE).ok


def test_forced_open_expires_and_survives_restarts(make_connector: MakeConnector) -> None:
    clock = FakeClock()
    connector = make_connector(clock)
    connector.pipeline.breaker.trip("echo", reason="planned", for_seconds=600)
    restarted = make_connector(clock)
    with pytest.raises(CircuitOpenError):
        restarted.email().send(MESSAGE)
    clock.advance(601)
    assert restarted.email().send(MESSAGE).ok  # the probe
    assert restarted.pipeline.breaker.state("echo").state is CircuitState.CLOSED


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # PostgreSQL: the race above covers the probe lease
def test_an_expired_forced_open_period_lets_one_racing_process_probe(make_connector: MakeConnector) -> None:
    verdicts = race_processes(make_connector, "INSERT INTO circuit_state (service_name, state, consecutive_failures, opened_at, forced_until, "
                                  "reason) VALUES ('echo', 'forced_open', 0, ?, ?, 'maintenance')", (time.time() - 100, time.time() - 1))
    assert verdicts == ["probe"] + ["refused"] * 7


def test_disabled_breaker_lets_every_call_through(make_connector: MakeConnector, vendor: ScriptedVendor) -> None:
    connector = make_connector(FakeClock())
    connector.pipeline.breaker.disable("echo", reason="debugging")
    vendor.default = Reply(503, {})
    for _ in range(5):
        with pytest.raises(VendorUnavailableError):
            connector.email().send(MESSAGE)
    assert len(vendor.requests) == 5
    assert connector.pipeline.breaker.state("echo").state is CircuitState.DISABLED


def test_failure_rate_mode_opens_on_a_bad_share_of_calls(make_connector: MakeConnector, vendor: ScriptedVendor) -> None:
    clock = FakeClock()
    connector = make_connector(clock)
    settings = connector.settings
    import dataclasses

    cb = dataclasses.replace(settings.circuit_breaker, failure_threshold=100, failure_rate_threshold=0.5, minimum_calls=6, window_seconds=60)
    with Connector(dataclasses.replace(settings, circuit_breaker=cb), clock=clock, credentials=connector.credentials) as connector:
        for i in range(6):  # alternate: never two failures in a row, but half of the calls fail
            vendor.script.append(Reply(503 if i % 2 else 200, {"id": "x"}))
        for _ in range(6):
            try:
                connector.email().send(MESSAGE)
            except VendorUnavailableError:
                pass
        assert connector.pipeline.breaker.state("echo").state is CircuitState.OPEN

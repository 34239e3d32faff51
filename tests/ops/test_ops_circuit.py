"""`connectorctl circuit ...`: operator actions on the shared breaker, obeyed across processes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests.ops.opsdata import ROOT, cli_env

WORKER = r"""
import sys
from connectorctl.domain.messages import EmailMessage
from connectorctl.errors import ConnectorError
from connectorctl.gateway import Connector

connector = Connector()
gateway = connector.email("fake")
for line in sys.stdin:
    try:
        gateway.send(EmailMessage(to=("a@example.com",), subject="hi", text="x"))
        print("ok", flush=True)
    except ConnectorError as exc:
        print(exc.code, flush=True)
"""


def test_trip_in_one_process_is_obeyed_by_another_running_process(cli):
    """The operator's commands run in this process; the worker obeying them is a process of its own."""
    worker = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=cli_env(), cwd=ROOT, bufsize=1)

    def call() -> str:
        assert worker.stdin and worker.stdout
        worker.stdin.write("go\n")
        worker.stdin.flush()
        return worker.stdout.readline().strip()

    try:
        assert call() == "ok"
        tripped = cli("circuit", "trip", "fake", "--reason", "vendor incident INC-42", "--json")
        assert tripped.exit_code == 0, tripped.stderr
        assert json.loads(tripped.stdout)["state"] == "forced_open"
        assert call() == "circuit_open"  # the running worker's very next call
        assert cli("circuit", "reset", "fake", "--reason", "vendor recovered").exit_code == 0
        assert call() == "ok"
        assert cli("circuit", "disable", "fake", "--yes").exit_code == 0
        assert call() == "ok"
    finally:
        worker.stdin.close()  # type: ignore[union-attr]
        worker.wait(timeout=20)
    assert worker.returncode == 0, worker.stderr.read()  # type: ignore[union-attr]
    show = json.loads(cli("circuit", "show", "fake", "-o", "json").stdout)
    assert show["state"] == "disabled"
    actions = [(e["action"], e["new_state"], e["reason"]) for e in show["events"]]
    assert actions == [("disable", "disabled", None), ("reset", "closed", "vendor recovered"), ("trip", "forced_open", "vendor incident INC-42")]
    assert all("@pid" in e["actor"] and e["created_at"].endswith("Z") for e in show["events"])


def test_send_from_cli_fails_fast_with_exit_code_3(cli):
    assert cli("circuit", "trip", "file").exit_code == 0
    result = cli("send", "email", "--to", "a@example.com", "--subject", "s", "--body", "b")
    assert result.exit_code == 3 and "circuit_open" in result.stderr


def test_trip_for_a_duration_and_show(cli):
    result = cli("circuit", "trip", "fake", "--for", "10m", "--reason", "deploy", "-o", "json")
    state = json.loads(result.stdout)
    assert state["state"] == "forced_open" and state["reason"] == "deploy" and state["open_until"] > state["updated_at"]
    assert "trip recorded" in result.stderr
    table = cli("circuit", "show", "fake")
    assert table.exit_code == 0 and "forced_open" in table.stdout and "deploy" in table.stdout
    listed = json.loads(cli("circuit", "list", "--json").stdout)
    assert {r["service_name"]: r["state"] for r in listed}["fake"] == "forced_open"
    assert {r["service_name"] for r in listed} >= {"fake", "file"}


@pytest.mark.parametrize("args", [("trip", "nosuchvendor"), ("trip", "fake", "--for", "soon"), ("trip", "fake", "--for", "-5m"), ("enable", "fake"), ("show", "nosuchvendor")])
def test_bad_operator_input(cli, args):
    result = cli("circuit", *args)
    assert result.exit_code == 2
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1


def test_disable_then_enable(cli):
    assert json.loads(cli("circuit", "disable", "fake", "--yes", "--json").stdout)["state"] == "disabled"
    assert json.loads(cli("circuit", "enable", "fake", "--reason", "done", "--json").stdout)["state"] == "closed"
    events = json.loads(cli("circuit", "show", "fake", "--json").stdout)["events"]
    assert [e["action"] for e in events] == ["enable", "disable"]
    assert cli("circuit", "show", "fake", "-o", "jsonl").stdout.count("\n") == 2


def _breaker(home, threshold: int = 2):
    from connectorctl.config import CircuitBreakerSettings
    from connectorctl.resilience.circuit import CircuitBreaker
    from connectorctl.resilience.clock import FakeClock
    from connectorctl.store.db import StateDB

    clock = FakeClock()
    return CircuitBreaker(StateDB(home / "connectorctl.db"), CircuitBreakerSettings(failure_threshold=threshold, timeout_seconds=30), clock), clock


def test_forced_open_expires_after_for(home):
    from connectorctl.errors import CircuitOpenError

    breaker, clock = _breaker(home)
    breaker.trip("fake", for_seconds=600, reason="r", actor="ops")
    with pytest.raises(CircuitOpenError):
        breaker.before_call("fake")
    clock.advance(601)
    probe = breaker.before_call("fake")
    assert probe.probe and breaker.state("fake").state.value == "half_open"
    with pytest.raises(CircuitOpenError, match="in flight"):
        breaker.before_call("fake")  # one probe first, everyone else still waits
    breaker.record_success(probe)
    assert breaker.state("fake").state.value == "closed"
    assert [e["action"] for e in breaker.events("fake")] == ["close", "expire", "trip"]


def test_a_failed_probe_after_a_forced_open_period_reopens_the_circuit(home):
    from connectorctl.errors import CircuitOpenError

    breaker, clock = _breaker(home)
    breaker.trip("fake", for_seconds=60, actor="ops")
    clock.advance(61)
    breaker.record_failure(breaker.before_call("fake"))
    assert breaker.state("fake").state.value == "open"
    with pytest.raises(CircuitOpenError):
        breaker.before_call("fake")


def test_a_late_expiry_does_not_end_a_fresh_trip(home):
    """Race: this process saw the old forced-open period expire, an operator re-trips meanwhile."""
    from connectorctl.domain.values import CircuitState
    from connectorctl.errors import CircuitOpenError

    breaker, clock = _breaker(home)
    breaker.trip("fake", for_seconds=10, actor="ops")
    clock.advance(11)
    breaker.trip("fake", for_seconds=3600, reason="still broken", actor="ops")
    with pytest.raises(CircuitOpenError):
        breaker._expire("fake", clock.time())  # the stale expirer loses its conditional update
    assert breaker.state("fake").state is CircuitState.FORCED_OPEN
    assert breaker.state("fake").reason == "still broken"


def test_automatic_transitions_are_all_recorded(home):
    from connectorctl.errors import CircuitOpenError

    breaker, clock = _breaker(home)
    for _ in range(2):
        breaker.record_failure(breaker.before_call("svc"))
    with pytest.raises(CircuitOpenError):
        breaker.before_call("svc")
    clock.advance(31)
    probe = breaker.before_call("svc")
    assert probe.probe
    breaker.record_success(probe)
    assert [(e["action"], e["new_state"]) for e in reversed(breaker.events("svc"))] == [("open", "open"), ("probe", "half_open"), ("close", "closed")]

"""`connectorctl demo` end to end: retries, the circuit opening, the half-open probe, then tail and metrics."""

from __future__ import annotations

import os


def test_demo_process_tells_the_whole_story(cli_process, home):
    proc = cli_process("demo", timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for text in ("#1 failed 503, #2 success 200", "#1 failed 503, #2 failed 503, #3 failed 503", "circuit: open",
                 "circuit_open: circuit for demo is open", "(HTTP requests: 0, circuit: open)",
                 "circuit transitions: open -> probe -> close", "logs tail", "metrics demo", "success_rate"):
        assert text in out, text
    assert "Traceback" not in proc.stderr
    assert not home.exists() or not any(home.iterdir())  # the user's own home was not touched


def test_run_demo_outcome_and_cleanup(home):
    from connectorctl.demo import run_demo

    before = os.environ["CONNECTORCTL_HOME"]
    story = run_demo(open_seconds=0.3)
    assert sorted(name.rsplit(".", 1)[-1] for name in story["outbox"]) == ["eml", "json"]  # the default file sink
    assert story["flaky"] == [True, True]
    assert (story["outage"], story["fast_fail"], story["fast_fail_requests"]) == (False, False, 0)
    assert (story["probe"], story["after"], story["circuit_state"]) == (True, True, "closed")
    assert story["events"] == ["open", "probe", "close"]
    assert os.environ["CONNECTORCTL_HOME"] == before

"""Shared fixtures: every test gets its own installation through CONNECTORCTL_HOME."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Started as a background job of a non-interactive shell, the suite inherits SIGINT ignored, and so
# would every process it starts: the tests that press Ctrl-C on a child need the default disposition.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
_CLEARED = (
    "CONNECTORCTL_CONFIG", "CONNECTORCTL_DEBUG", "CONNECTOR_EMAIL_VENDOR", "CONNECTOR_SMS_VENDOR",
    "CONNECTOR_LOG_RETENTION_DAYS", "CONNECTOR_CIRCUIT_FAILURE_THRESHOLD", "CONNECTOR_CIRCUIT_TIMEOUT",
)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("CONNECTORCTL_HOME", str(path))
    for var in _CLEARED:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    return path


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run the CLI in-process (fast); same entry point as the console script."""
    from connectorctl.cli.main import run

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        code = run(list(args))
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return invoke


def run_cli_process(*args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m connectorctl`` as a real process."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "connectorctl", *args], capture_output=True, text=True, env=full_env, input=input, timeout=timeout, cwd=ROOT)


@pytest.fixture
def cli_process() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli_process


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A scripted local HTTP vendor, reachable through the test-only ``echo`` adapter."""
    from connectorctl.adapters import catalog
    from tests.support import ECHO, ScriptedVendor

    monkeypatch.setitem(catalog.VENDORS, "echo", ECHO)
    server = ScriptedVendor()
    yield server
    server.close()

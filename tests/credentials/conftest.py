"""Fixtures for the credentials area: master key sources, a real Secret Service, a local vendor."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.credentials.fakevendor import ENTRY, FakeVendor, acme_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test may touch the developer's own keyring or inherit a master key."""
    import keyring.core

    from connectorctl.credentials import masterkey

    for var in (masterkey.ENV_KEY, masterkey.ENV_PREVIOUS, masterkey.ENV_FILE, "DBUS_SESSION_BUS_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    keyring.core.init_backend()
    masterkey.clear_cache()
    yield
    masterkey.clear_cache()
    import keyring.backends.fail

    keyring.core.set_keyring(keyring.backends.fail.Keyring())  # never leave a test's backend to the next area's tests


def new_key_text() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def master_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = new_key_text()
    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY", key)
    return key


@pytest.fixture(scope="session")
def secret_service_bus() -> Iterator[dict[str, str]]:
    """A private D-Bus session with gnome-keyring's Secret Service, unlocked, in a fresh XDG_DATA_HOME."""
    for tool in ("dbus-daemon", "gnome-keyring-daemon"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is missing: apt-get install gnome-keyring dbus (see .ci/run)")
    base = Path(tempfile.mkdtemp(prefix="creds-ss-"))
    env = {"HOME": str(base), "XDG_DATA_HOME": str(base / "share"), "XDG_RUNTIME_DIR": str(base / "run"), "XDG_CONFIG_HOME": str(base / "config")}
    for path in env.values():
        os.makedirs(path, mode=0o700, exist_ok=True)
    full = {**os.environ, **env}
    out = subprocess.run(["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1"], env=full, capture_output=True, text=True, check=True, timeout=10)
    address, pid = out.stdout.split()[0], int(out.stdout.split()[1])
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    full["DBUS_SESSION_BUS_ADDRESS"] = address
    daemon = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"], env=full,
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert daemon.stdin is not None
    daemon.stdin.write(b"test-login-password")
    daemon.stdin.close()
    try:
        _wait_for_secrets_name(address)
        yield env
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        os.kill(pid, 15)
        shutil.rmtree(base, ignore_errors=True)


def _wait_for_secrets_name(address: str) -> None:
    """Poll (bounded) until gnome-keyring owns org.freedesktop.secrets on our bus."""
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.blocking import open_dbus_connection

    bus = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus", interface="org.freedesktop.DBus")
    deadline = time.monotonic() + 15
    with open_dbus_connection(address) as conn:
        while time.monotonic() < deadline:
            reply = conn.send_and_get_reply(new_method_call(bus, "NameHasOwner", "s", ("org.freedesktop.secrets",)))
            if reply.body[0]:
                return
            time.sleep(0.02)
    raise RuntimeError("gnome-keyring-daemon did not register org.freedesktop.secrets within 15 s")


@pytest.fixture
def secret_service(secret_service_bus: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point keyring (in this process and in subprocesses) at the private Secret Service."""
    import keyring.core

    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", secret_service_bus["DBUS_SESSION_BUS_ADDRESS"])
    keyring.core.set_keyring(keyring.core.load_keyring("keyring.backends.SecretService.Keyring"))
    return {"DBUS_SESSION_BUS_ADDRESS": secret_service_bus["DBUS_SESSION_BUS_ADDRESS"], "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring"}


@pytest.fixture
def vendor() -> Iterator[FakeVendor]:
    import threading

    server = FakeVendor()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def acme(vendor: FakeVendor, home: Path, monkeypatch: pytest.MonkeyPatch) -> FakeVendor:
    """Register the test vendor and write a config that points at the local server."""
    from connectorctl.adapters import catalog

    monkeypatch.setitem(catalog.VENDORS, "acme", ENTRY)
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(acme_config(vendor.url), encoding="utf-8")
    return vendor


def run_acme_cli(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI as a separate process, with the test vendor registered."""
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run([sys.executable, str(ROOT / "tests" / "credentials" / "run_acme_cli.py"), *args],
                          capture_output=True, text=True, env=full, input=input, timeout=60, cwd=ROOT)

"""Shared fixtures: every test gets its own installation through CONNECTORCTL_HOME."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from tests.pg_server import PostgresServer, find_bindir

ROOT = Path(__file__).resolve().parents[1]

# Started as a background job of a non-interactive shell, the suite inherits SIGINT ignored, and so
# would every process it starts: the tests that press Ctrl-C on a child need the default disposition.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
_CLEARED = (
    "CONNECTORCTL_CONFIG", "CONNECTORCTL_DEBUG", "CONNECTOR_EMAIL_VENDOR", "CONNECTOR_SMS_VENDOR",
    "CONNECTOR_LOG_RETENTION_DAYS", "CONNECTOR_CIRCUIT_FAILURE_THRESHOLD", "CONNECTOR_CIRCUIT_TIMEOUT",
    "CONNECTORCTL_DATABASE_URL",
)
# TEST_DATABASE_ENGINE=postgresql runs every test (not only the engine-parametrized ones) on PostgreSQL.
ALL_ON_POSTGRES = os.environ.get("TEST_DATABASE_ENGINE") == "postgresql"
TEMPLATE_DB = "connectorctl_template"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fresh_schema: SQLite state files this process opens are migrated from scratch, "
                                       "not copied from the session's migrated template")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("CONNECTORCTL_HOME", str(path))
    for var in _CLEARED:
        monkeypatch.delenv(var, raising=False)
    if ALL_ON_POSTGRES:
        monkeypatch.setenv("CONNECTORCTL_DATABASE_URL", request.getfixturevalue("postgres_url"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    return path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite state file migrated by the real migrations, once per session."""
    from connectorctl.store.db import StateDB

    path = tmp_path_factory.mktemp("template") / "connectorctl.db"
    StateDB(path).close()  # the last connection's close folds the WAL back in: the file alone is the database
    return path


@pytest.fixture(autouse=True)
def _migrated_sqlite(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new SQLite state file opened in this process starts as a copy of the migrated template (~2 ms)
    instead of running every migration (~30-60 ms, most tests open one).  Migrations still run for real:
    on the template, in every CLI or worker process a test starts, through ``db migrate``, and in tests
    marked ``fresh_schema``."""
    if request.node.get_closest_marker("fresh_schema"):
        return
    from connectorctl.store.db import StateDB, is_database_url

    template = request.getfixturevalue("sqlite_template")
    opened = StateDB.__init__

    def open_from_template(self: StateDB, target: Path | str, *, migrate: bool = True) -> None:
        if migrate and not is_database_url(target) and not os.path.exists(target):
            copy = Path(f"{target}.template-{os.getpid()}-{threading.get_ident()}")
            try:
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(template, copy)
                os.link(copy, target)  # never over a file another thread created meanwhile
            except OSError:
                pass  # an unwritable place (the real open reports it), or another thread was first
            finally:
                copy.unlink(missing_ok=True)
        opened(self, target, migrate=migrate)

    monkeypatch.setattr(StateDB, "__init__", open_from_template)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, with a migrated template database that each test copies."""
    from connectorctl.store.db import StateDB

    bindir = find_bindir()
    if bindir is None:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found: install the postgresql package (`make test` does)")
    server = PostgresServer(bindir)
    server.start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {TEMPLATE_DB}")
        StateDB(server.url(TEMPLATE_DB)).close()
        yield server
    finally:
        server.close()


_databases = itertools.count()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, migrated database (a copy of the template: ~20 ms) for one test."""
    name = f"test_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    yield postgres_server.url(name)
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(autouse=True)
def _pools_closed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every PostgreSQL connection pool a test opens must be closed by its end.

    One left open keeps its connections and worker threads until the garbage collector reclaims it, which may
    happen on one of those threads ("cannot join current thread", at a random later test).  Here the leak fails
    the test that made it, with the frames that opened the pool.
    """
    from connectorctl.store import postgres

    opened: list[tuple[ConnectionPool, str]] = []

    def recorded(*args: Any, **kwargs: Any) -> ConnectionPool:
        pool = ConnectionPool(*args, **kwargs)
        ours = [f for f in traceback.extract_stack()[:-1] if f.filename.startswith(str(ROOT)) and ".venv" not in f.filename]
        opened.append((pool, "".join(traceback.format_list(ours))))
        return pool

    monkeypatch.setattr(postgres, "ConnectionPool", recorded)
    yield
    left_open = [(pool, where) for pool, where in opened if not pool.closed]
    for pool, _ in left_open:
        pool.close()
    if left_open:
        pytest.fail(f"{len(left_open)} connection pool(s) opened by this test were never closed (close the StateDB "
                    f"or Connector that owns one); the first was opened at:\n{left_open[0][1]}", pytrace=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per storage engine: the installation's state goes to SQLite, then to PostgreSQL."""
    if request.param == "postgresql":
        monkeypatch.setenv("CONNECTORCTL_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return str(request.param)


@pytest.fixture
def state_target(engine: str, home: Path) -> Path | str:
    """Where a test's own ``StateDB(...)`` should point: a file beside the home, or this test's database."""
    return os.environ.get("CONNECTORCTL_DATABASE_URL") or home / "connectorctl.db"


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

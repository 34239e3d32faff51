"""Opening the state database: one seam over the embedded SQLite file and a shared PostgreSQL.

``StateDB(path)`` is a SQLite file; ``StateDB("postgresql://...")`` is a
PostgreSQL database that several hosts share (see ``store/postgres.py``).
Callers only use ``run``, ``write`` and the connection those hand them, and
write portable SQL with ``?`` placeholders.

SQLite: WAL lets readers run beside a writer; ``busy_timeout`` turns lock
contention into a short wait instead of "database is locked";
``synchronous=NORMAL`` is durable across process crashes in WAL mode and costs
~45 µs per commit instead of ~270 µs.  Migrations are checked on every open
with one cheap query and sqlite-utils is only imported when one is pending.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

from connectorctl.errors import StateStoreError

if TYPE_CHECKING:
    from connectorctl.store.changes import ChangeSignal
    from connectorctl.store.outage import StateHealth

DEFAULT_BUSY_TIMEOUT_MS = 10000
# A checkpoint copies the pages changed since the last one back into the database and fsyncs both
# files, inside whichever commit crosses the threshold.  A logged call changes ~8 pages, mostly the
# same index leaves, so at SQLite's default of 1000 pages some caller paid a checkpoint every ~100
# calls; ten times fewer checkpoints write far fewer pages in all, for a WAL of up to ~40 MB.
WAL_AUTOCHECKPOINT_PAGES = 10000
URL_PREFIXES = ("postgresql://", "postgres://")


def is_database_url(target: object) -> bool:
    """``database:`` names a shared PostgreSQL database rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(URL_PREFIXES)


def redacted_url(url: str) -> str:
    """The URL with its password (in the user part, or as ``?password=`` / ``?sslpassword=``) replaced by ``***``."""
    url = re.sub(r"(?<=://)([^/@:]*):[^/@]*@", r"\1:***@", url)
    return re.sub(r"(?i)([?&](?:ssl)?password=)[^&]*", r"\1***", url)


def busy_timeout_ms() -> int:
    """How long a connection waits for another process's write lock (env CONNECTORCTL_BUSY_TIMEOUT_MS)."""
    try:
        return max(0, int(os.environ.get("CONNECTORCTL_BUSY_TIMEOUT_MS", DEFAULT_BUSY_TIMEOUT_MS)))
    except ValueError:
        return DEFAULT_BUSY_TIMEOUT_MS


T = TypeVar("T")


def translate_sqlite_error(exc: BaseException, path: Path | str) -> StateStoreError:
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return StateStoreError(
            f"database {path} is read-only", hint="check the file's permissions or point `database:` elsewhere"
        )
    if "locked" in text or "busy" in text:
        return StateStoreError(
            f"database {path} stayed locked for more than {busy_timeout_ms() / 1000:g} s",
            hint="another process holds a long write transaction",
        )
    if "not a database" in text or "malformed" in text:
        return StateStoreError(f"database {path} is corrupt or not an SQLite file")
    if "unable to open" in text:
        return StateStoreError(f"cannot open database {path}", hint="check that its folder exists and is writable")
    return StateStoreError(f"database {path}: {text}")


def connect(path: Path | str) -> sqlite3.Connection:
    """A tuned autocommit connection; callers open short explicit transactions."""
    try:
        timeout = busy_timeout_ms()
        conn = sqlite3.connect(
            str(path), timeout=timeout / 1000, isolation_level=None, check_same_thread=False, cached_statements=256
        )
        conn.execute(f"PRAGMA busy_timeout={timeout}")
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as exc:
        raise translate_sqlite_error(exc, path) from None
    return conn


class _SqliteBackend:
    """One connection per thread, opened on first use (and again after fork())."""

    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path.resolve())  # one file, one name: the audit spool keys its rows by it
        self._local = threading.local()

    def current(self) -> sqlite3.Connection | None:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():  # never use a connection across fork(): open a new one
            return None
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = self.current()
        if conn is None:
            conn = self._local.conn = connect(self.path)
            self._local.pid = os.getpid()
        yield conn

    def translate(self, exc: BaseException) -> StateStoreError:
        return translate_sqlite_error(exc, self.path)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class StateDB:
    """The state of one installation: a SQLite file, or a PostgreSQL database shared by many hosts."""

    def __init__(self, target: Path | str, *, migrate: bool = True) -> None:
        self.engine = "postgresql" if is_database_url(target) else "sqlite"
        self._backend: Any
        if self.engine == "postgresql":
            from connectorctl.store.postgres import PostgresBackend

            self.url: str | None = str(target)
            self.path: Path | None = None
            self._backend = PostgresBackend(str(target), timeout=max(busy_timeout_ms(), 1000) / 1000)
        else:
            self.url = None
            self.path = Path(target)
            self._backend = _SqliteBackend(self.path)
        self.label: str = self._backend.label
        if migrate:
            try:
                self.migrate()
            except BaseException:  # nobody holds this half-made object to close it: a pool would retry forever
                self.close()
                raise

    def change_signal(self, name: str) -> "ChangeSignal":
        """Tells this process when other processes (or hosts) changed the rows that ``name`` watches."""
        if self.engine == "postgresql":
            from connectorctl.store.postgres import ChangeFeed

            return ChangeFeed(self._backend, f"connectorctl_{name}")
        from connectorctl.store.changes import FileCounter

        return FileCounter(f"{self.path}.{name}-epoch")

    @cached_property
    def health(self) -> StateHealth:
        """Whether this database is known to be down, shared by every ``StateDB`` on it in this process."""
        from connectorctl.store.outage import health_of

        return health_of(self.label)

    def migrate(self) -> list[int]:
        """Apply pending migrations (creating a SQLite file's folder first); the numbers applied."""
        from connectorctl.store.migrations import apply_migrations

        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StateStoreError(f"cannot create folder {self.path.parent} ({exc.strerror})") from None
        return self.run(lambda conn: apply_migrations(conn, self.engine))

    @property
    def conn(self) -> Any:
        """A connection for one-off statements outside ``run``/``write`` (errors are not mapped)."""
        if self.engine == "postgresql":
            return self._backend.statements()
        with self._backend.connection() as conn:
            return conn

    def in_transaction(self) -> bool:
        """Whether this thread is inside ``write()`` (or a transaction it began itself)."""
        conn = self._backend.current()
        return bool(conn is not None and conn.in_transaction)

    def run(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn`` on this thread's connection, mapping the engine's errors once."""
        conn = self._backend.current()  # SQLite's thread connection, or the one a surrounding write() holds
        if conn is None:
            with self._connection() as conn:
                return self._call(fn, conn)
        return self._call(fn, conn)

    def _call(self, fn: Callable[[Any], T], conn: Any) -> T:
        try:
            return fn(conn)
        except self._backend.errors as exc:
            self._rollback(conn)
            raise self._backend.translate(exc) from exc

    @contextmanager
    def write(self) -> Iterator[Any]:
        """A short write transaction that takes the (cross-process, cross-host) write lock up front."""
        with self._connection() as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except self._backend.errors as exc:
                self._rollback(conn)
                raise self._backend.translate(exc) from exc
            try:
                yield conn
            except BaseException as exc:
                self._rollback(conn)
                if isinstance(exc, self._backend.errors):
                    raise self._backend.translate(exc) from exc
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except self._backend.errors as exc:
                    self._rollback(conn)
                    raise self._backend.translate(exc) from exc

    @contextmanager
    def read_cursor(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[Any]:
        """A cursor to ``fetchmany`` a large result from, on this thread's connection."""
        with self._connection() as conn:
            try:
                yield conn.execute(sql, params)
            except self._backend.errors as exc:
                raise self._backend.translate(exc) from exc

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        try:
            with self._backend.connection() as conn:
                yield conn
        except self._backend.errors as exc:  # could not even open / borrow a connection
            raise self._backend.translate(exc) from exc

    def _rollback(self, conn: Any) -> None:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except self._backend.errors:
            pass  # the connection is gone; so is its transaction

    def close(self) -> None:
        self._backend.close()

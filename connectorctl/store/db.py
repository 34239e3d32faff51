"""Opening the state database: pragmas that make one file safe for many processes.

WAL lets readers run beside a writer; ``busy_timeout`` turns lock contention
into a short wait instead of "database is locked"; ``synchronous=NORMAL`` is
durable across process crashes in WAL mode and costs ~45 µs per commit instead
of ~270 µs.  Migrations are checked on every open with one cheap query and
sqlite-utils is only imported when one is pending.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from connectorctl.errors import StateStoreError

DEFAULT_BUSY_TIMEOUT_MS = 10000
# A checkpoint copies the pages changed since the last one back into the database and fsyncs both
# files, inside whichever commit crosses the threshold.  A logged call changes ~8 pages, mostly the
# same index leaves, so at SQLite's default of 1000 pages some caller paid a checkpoint every ~100
# calls; ten times fewer checkpoints write far fewer pages in all, for a WAL of up to ~40 MB.
WAL_AUTOCHECKPOINT_PAGES = 10000


def busy_timeout_ms() -> int:
    """How long a connection waits for another process's write lock (env CONNECTORCTL_BUSY_TIMEOUT_MS)."""
    try:
        return max(0, int(os.environ.get("CONNECTORCTL_BUSY_TIMEOUT_MS", DEFAULT_BUSY_TIMEOUT_MS)))
    except ValueError:
        return DEFAULT_BUSY_TIMEOUT_MS


T = TypeVar("T")


def translate_sqlite_error(exc: sqlite3.Error, path: Path | str) -> StateStoreError:
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


class StateDB:
    """The state file of one installation, with one connection per thread."""

    def __init__(self, path: Path | str, *, migrate: bool = True) -> None:
        self.path = Path(path)
        self._local = threading.local()
        if migrate:
            from connectorctl.store.migrations import apply_migrations

            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StateStoreError(f"cannot create folder {self.path.parent} ({exc.strerror})") from None
            self.run(apply_migrations)

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            # A connection must never cross fork() (e.g. a pre-forking app server): open a new one.
            conn = self._local.conn = connect(self.path)
            self._local.pid = os.getpid()
        return conn

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on this thread's connection, mapping sqlite errors once."""
        try:
            return fn(self.conn)
        except sqlite3.Error as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise translate_sqlite_error(exc, self.path) from exc

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A short ``BEGIN IMMEDIATE`` transaction: take the write lock up front."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, self.path) from exc
        try:
            yield conn
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise translate_sqlite_error(exc, self.path) from exc
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise translate_sqlite_error(exc, self.path) from exc

    def sqlite_utils(self):  # -> sqlite_utils.Database
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

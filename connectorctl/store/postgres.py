"""PostgreSQL as the shared state of many hosts, behind the same connection shape as SQLite.

The rest of the package writes portable SQL with ``?`` placeholders and talks
to a connection through ``execute``/``executemany``/``in_transaction``; here
that shape is put over a psycopg 3 connection borrowed from a
``psycopg_pool`` pool, so the pipeline, CLI and API never know the engine.

Transactions keep SQLite's semantics across hosts: ``BEGIN IMMEDIATE`` (one
writer at a time, the basis of exact quotas, single probes and
check-and-record webhooks) takes one transaction-scoped advisory lock, and a
read ``BEGIN`` is a REPEATABLE READ snapshot.  Timestamps are ``timestamptz``
columns read back as the same ISO-8601 text SQLite stores (UTC, milliseconds,
``Z``), integers are ``bigint``, and whole ``numeric`` aggregates come back as
``int``.  The connection URL's password never appears in a message.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Sequence
from urllib.parse import quote

import psycopg
from psycopg import adapt, postgres, pq
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.string import StrDumperUnknown
from psycopg_pool import ConnectionPool

from connectorctl.errors import ConnectorctlError, StateStoreError

# The pool logs each failed reconnect (to stderr when nothing is configured); the caller gets one StateStoreError.
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())

WRITE_LOCK = 0x636F6E6E  # advisory lock key of "BEGIN IMMEDIATE" (one writer at a time, like SQLite)
MIGRATE_LOCK = 0x6D696772  # advisory lock key held while migrations run

_BEGIN = {  # without parameters psycopg sends one simple query: two statements, one round trip
    "BEGIN": "BEGIN ISOLATION LEVEL REPEATABLE READ",
    "BEGIN IMMEDIATE": f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})",
}
_HINTS = re.compile(r"\s+(?:INDEXED BY \w+|NOT INDEXED)\b")
_QUOTED = re.compile(r"('(?:[^']|'')*')")


def describe(url: str) -> str:
    """``postgresql://host:port/dbname`` without user or password, for messages and the audit spool's rows.

    One spelling per database (port 5432 filled in, host names lower-cased; a socket folder is a path and kept
    as written), so ``h/app`` and ``H:5432/app`` name the same database; DNS names are not resolved.
    """
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    hosts = str(parts.get("host") or "localhost").split(",")
    ports = str(parts.get("port") or "").split(",")
    ports = ports * len(hosts) if len(ports) == 1 else ports  # libpq: one port serves every host
    addresses = ",".join(f"{_address(host)}:{port or 5432}" for host, port in zip(hosts, ports, strict=False))
    return f"postgresql://{addresses}/{parts.get('dbname') or ''}"


def _address(host: str) -> str:
    if host.startswith("/"):  # a socket folder: a path, written so that the name parses back to itself
        return quote(host, safe="")
    return f"[{host.lower()}]" if ":" in host else host.lower() or "localhost"  # IPv6 in URL brackets


MAX_URL_LENGTH = 8192  # room for a cloud IAM token as the password; a dbname is at most 63 bytes
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def check_url(url: str, error: type[ConnectorctlError], where: str) -> None:
    """Raise ``error`` when ``url`` cannot work, before any connection is tried, in words that never quote it.

    libpq accepts a bad port or sslmode when parsing and refuses it only when connecting, which the
    pool retries until its timeout: an "unreachable" database after seconds instead of a config error.
    A password with a bare ``@`` or ``/`` parses as host or port, so no part of the URL is echoed.
    """
    encode = "percent-encode @ : / ? # % and spaces in the user name and password (%40 %3A %2F %3F %23 %25 %20)"
    if len(url) > MAX_URL_LENGTH:
        raise error(f"{where}: URL longer than {MAX_URL_LENGTH} characters")
    if "\0" in url:  # libpq would read the URL only up to it
        raise error(f"{where}: the URL contains a NUL character")
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        quoted = re.compile(r'"([^"]*)"')  # libpq quotes the part of the URL it stumbled on
        reason = quoted.sub(lambda m: m[0] if len(m[1]) < 2 else '"..."', str(exc).strip().splitlines()[0])
        raise error(f"{where}: not a valid PostgreSQL URL ({reason})", hint=encode) from None
    path = url.split("://", 1)[1].partition("?")[0].partition("/")[2]
    if "@" in str(parts.get("host", "")) or "@" in path:  # a password's bare @ or / moved it into host or dbname
        raise error(f"{where}: not a valid PostgreSQL URL (@ outside the user name and password)", hint=encode)
    if not all(p == "" or (p.isdigit() and 1 <= int(p) <= 65535) for p in str(parts.get("port", "")).split(",")):
        raise error(f"{where}: the port must be a number from 1 to 65535", hint=encode)
    if parts.get("sslmode") not in (None, *SSLMODES):
        raise error(f"{where}: sslmode must be one of {', '.join(SSLMODES)}")


def translate_sql(sql: str) -> str:
    """SQLite-dialect text to psycopg's: ``?`` -> ``%s`` outside literals, ``%`` escaped, planner hints dropped."""
    parts = _QUOTED.split(_HINTS.sub("", sql))
    return "".join(
        p.replace("%", "%%") if i % 2 else p.replace("%", "%%").replace("?", "%s") for i, p in enumerate(parts)
    )


class _BoolAsInt(adapt.Dumper):
    """Python booleans land in ``bigint`` columns, as SQLite stores them."""

    oid = postgres.types["int8"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class _NulEscaped(StrDumperUnknown):
    """PostgreSQL text cannot hold NUL: it is stored as the six characters ``\\u0000`` (as JSON writes it)."""

    def dump(self, obj: str) -> Any:
        return super().dump(obj.replace("\x00", "\\u0000") if "\x00" in obj else obj)


class _IsoText(adapt.Loader):
    """``timestamptz`` (session time zone UTC) read back as ``2026-01-02T03:04:05.678Z``."""

    def load(self, data: Any) -> str:
        text = bytes(data).decode()
        day, _, rest = text.partition(" ")
        clock = rest[:-3] if rest.endswith("+00") else rest  # the session runs in UTC
        whole, _, fraction = clock.partition(".")
        if len(day) != 10:  # years beyond 9999 or BC: let Python say it
            return datetime.fromisoformat(text).astimezone(timezone.utc).isoformat()
        return f"{day}T{whole}.{(fraction + '000')[:3]}Z"


class _Number(adapt.Loader):
    """``numeric`` (what ``sum(bigint)`` returns) as int when whole, else float, as SQLite returns them."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        return float(text) if "." in text or "e" in text.lower() or text == "NaN" else int(text)


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_dumper(bool, _BoolAsInt)
    conn.adapters.register_dumper(str, _NulEscaped)
    conn.adapters.register_loader("timestamptz", _IsoText)
    conn.adapters.register_loader("numeric", _Number)


class PgConnection:
    """The part of ``sqlite3.Connection`` the package uses, over one pooled psycopg connection."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != pq.TransactionStatus.IDLE

    def execute(self, sql: str, params: Sequence[Any] | None = ()) -> psycopg.Cursor[Any]:
        cur = self.raw.cursor()
        special = _BEGIN.get(sql.strip().upper())
        if special is not None:
            cur.execute(special)
            return cur
        cur.execute(_translated(sql), tuple(params or ()))
        return cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cur = self.raw.cursor()
        cur.executemany(_translated(sql), [tuple(r) for r in rows])
        return cur


_translated = functools.lru_cache(maxsize=1024)(translate_sql)


class PostgresBackend:
    """One pool per process; a thread keeps the connection it borrowed until its outermost use ends."""

    errors: tuple[type[BaseException], ...] = (psycopg.Error,)

    def __init__(self, url: str, *, timeout: float, max_size: int = 8) -> None:
        self.url = url
        self.label = describe(url)
        self.timeout = timeout
        self.max_size = max_size
        self._pool: ConnectionPool[Any] | None = None
        self._pid = os.getpid()
        self._pool_lock = threading.Lock()
        self._local = threading.local()

    def connect_kwargs(self) -> dict[str, Any]:
        return {"autocommit": True, "options": "-c TimeZone=UTC", "connect_timeout": max(1, int(self.timeout))}

    def _get_pool(self) -> ConnectionPool[Any]:
        with self._pool_lock:
            if self._pool is None or self._pid != os.getpid():  # a pool never crosses fork(): the child opens its own
                # One connection first: a pool retries a refused connection until its timeout and then reports
                # only that; the server's reason (no such database, wrong password) belongs in the error, at once.
                psycopg.connect(self.url, **self.connect_kwargs()).close()
                self._pid = os.getpid()
                self._pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=self.max_size,
                    timeout=self.timeout,
                    open=True,
                    kwargs=self.connect_kwargs(),
                    configure=_configure,
                    name="connectorctl",
                )
            return self._pool

    def current(self) -> PgConnection | None:
        return getattr(self._local, "conn", None)

    @contextmanager
    def connection(self) -> Iterator[PgConnection]:
        held = self.current()
        if held is not None:
            yield held
            return
        pool = self._get_pool()
        with pool.connection() as raw:
            conn = self._local.conn = PgConnection(raw)
            try:
                yield conn
            finally:
                self._local.conn = None

    def statements(self) -> "_OneShot":
        return _OneShot(self)

    def translate(self, exc: BaseException) -> StateStoreError:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        password = _password(self.url)
        if password:
            text = text.replace(str(password), "***")
        if isinstance(exc, psycopg.OperationalError):
            if self._pool is not None:
                self._pool.check()  # drop connections that died with the server, so the next call starts fresh
            if "FATAL:" in text:  # the server answered and said no
                return StateStoreError(
                    f"database {self.label} refused the connection ({text.split('FATAL:', 1)[1].strip()})",
                    hint="check the user, the password and the database name in `database:`",
                )
            return StateStoreError(
                f"database {self.label} is unreachable ({text})",
                hint="check that PostgreSQL is running and that `database:` points at it",
            )
        return StateStoreError(f"database {self.label}: {text}")

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.close()
            self._pool = None  # in a forked child the pool is the parent's: closing it would end the parent's sessions


def _password(url: str) -> str | None:
    """What to mask in a driver message; None for a URL that does not parse (the loader refuses those)."""
    try:
        return str(conninfo_to_dict(url).get("password") or "") or None
    except psycopg.ProgrammingError:
        return None


class ChangeFeed:
    """How many NOTIFYs arrived on one channel, counted without a query or a thread.

    A dedicated connection LISTENs; ``version()`` drains the notifications that
    already sit in its socket (a non-blocking read, a few microseconds, no round
    trip).  It is None before the first LISTEN, after the connection was lost
    (server stopped, session killed) and in a forked child: the caller then reads
    the rows itself.  Listening starts or resumes only in ``revive()``, which the
    caller invokes after the database answered one of its reads, at most once per
    ``retry_seconds``: an outage never adds a connect timeout to a call.
    A pooler in transaction mode (PgBouncer) does not deliver notifications; the
    caller's own time bound then limits how stale its rows get.
    """

    def __init__(self, backend: PostgresBackend, channel: str, *, retry_seconds: float = 1.0) -> None:
        self.backend = backend
        self.channel = channel
        self.retry_seconds = retry_seconds
        self._conn: psycopg.Connection[Any] | None = None
        self._pid = 0
        self._count = 0
        self._next_try = 0.0
        self._ended = False
        self._lock = threading.Lock()

    @property
    def listening(self) -> bool:
        return self._conn is not None and self._pid == os.getpid()

    def version(self) -> int | None:
        if self._conn is None or self._pid != os.getpid():
            return None
        with self._lock:
            if self._conn is None:
                return None
            pg = self._conn.pgconn
            try:
                pg.consume_input()
            except psycopg.OperationalError:  # the server went away: nobody tells us about changes any more
                self._drop()
                return None
            while pg.notifies() is not None:
                self._count += 1
            if self._ended:  # the server said it is closing this session (shutdown, pg_terminate_backend)
                self._drop()
                return None
            return self._count

    def bump(self) -> None:
        """Nothing to send: the table's trigger notified every listener inside the writing transaction."""

    def revive(self) -> None:
        if self.listening or time.monotonic() < self._next_try:
            return
        self._next_try = time.monotonic() + self.retry_seconds
        try:
            conn = psycopg.connect(self.backend.url, **self.backend.connect_kwargs())
            conn.add_notice_handler(self._on_notice)
            conn.execute(f"LISTEN {self.channel}")
        except psycopg.Error:
            return  # keep reading on every call; try again later
        with self._lock:
            if self.listening:  # another thread got there first
                conn.close()
                return
            self._conn, self._pid, self._ended = conn, os.getpid(), False
            self._count += 1  # rows read before the LISTEN may have changed unannounced

    def _on_notice(self, diagnostic: psycopg.errors.Diagnostic) -> None:
        """A session's last words (FATAL) arrive as a notice, before the socket closes."""
        if diagnostic.severity_nonlocalized in ("FATAL", "PANIC"):
            self._ended = True

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        if self.listening:
            with self._lock:
                self._drop()
        self._conn = None  # a parent's connection is left to the parent (psycopg never closes it in a child)


class _OneShot:
    """Autocommit statements, each on a connection borrowed for just that statement (results are fetched "
    "client-side)."""

    def __init__(self, backend: PostgresBackend) -> None:
        self.backend = backend

    @property
    def in_transaction(self) -> bool:
        held = self.backend.current()
        return held is not None and held.in_transaction

    def execute(self, sql: str, params: Sequence[Any] | None = ()) -> psycopg.Cursor[Any]:
        with self.backend.connection() as conn:
            return conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        with self.backend.connection() as conn:
            return conn.executemany(sql, rows)

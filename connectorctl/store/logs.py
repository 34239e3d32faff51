"""Writing integration-log rows: the pipeline's hot path, with group commit.

The guarantee: a call that has returned to its caller (with a result or an
exception) has its log row committed: in the database, or, when the database
refuses it, in the local audit spool (``store/spool.py``), which is drained
into the database as soon as it answers again.  No background thread and no exit hook
is involved, so it holds in forked workers (gunicorn, celery, multiprocessing),
which end with ``os._exit`` and never run exit hooks; a kill -9 can only lose
rows of calls that had not returned yet.

Throughput comes from sharing commits: a caller appends its row and, if no
commit is running, commits everything pending (it is the leader); otherwise
it waits for the commit that takes its row.  Under many threads one commit
carries many rows; a single thread pays one small commit per call (WAL with
``synchronous=NORMAL``: no fsync).
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from typing import Any

from connectorctl.errors import StateStoreError
from connectorctl.ids import new_ulid
from connectorctl.resilience.pipeline import AttemptRecord
from connectorctl.store.db import StateDB
from connectorctl.store.spool import AuditSpool, log_rows
from connectorctl.times import iso_utc

INSERT_LOG = (
    "INSERT INTO integration_logs (id, tenant_id, service_name, operation, endpoint, method, status, http_status_code, "
    "duration_ms, request_data, response_data, error_message, error_code, attempt_number, correlation_id, "
    "direction, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_LOG_IF_NEW = INSERT_LOG + " ON CONFLICT (id) DO NOTHING"  # replaying spooled rows


def to_row(r: AttemptRecord) -> tuple[Any, ...]:
    return (
        new_ulid(r.started_at),
        r.tenant_id,
        r.service,
        r.operation,
        r.endpoint,
        r.method,
        r.status._value_,  # the plain attribute: ``.value`` is a Python-level property
        r.http_status,
        r.duration_ms,
        r.request.json(),
        r.response.json(),
        r.error_message,
        r.error_code,
        r.attempt,
        r.correlation_id,
        r.direction,
        iso_utc(r.started_at),
    )


_LIVE: "weakref.WeakSet[IntegrationLogWriter]" = weakref.WeakSet()


def _reset_after_fork() -> None:
    """A forked child starts with fresh locks and nothing pending: rows pending at the fork
    belong to the parent's callers, which are waiting for the parent to commit them."""
    for writer in list(_LIVE):
        writer._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class _Batch:
    """Rows to be committed in one transaction, and the callers waiting for them (woken only by it)."""

    __slots__ = ("records", "done", "moved_to", "lock", "cond")

    def __init__(self, lock: threading.Lock) -> None:
        self.records: list[AttemptRecord] = []
        self.done = False
        self.moved_to: _Batch | None = None  # an interrupted commit hands its rows to the next batch
        self.lock = lock
        self.cond: threading.Condition | None = None  # made by the first caller that has to wait

    def wait(self) -> None:
        if self.cond is None:
            self.cond = threading.Condition(self.lock)
        self.cond.wait()

    def wake(self, n: int | None = None) -> None:
        """Wake ``n`` waiters (all when None); nothing to do if nobody ever waited."""
        if self.cond is None:
            return
        if n is None:
            self.cond.notify_all()
        else:
            self.cond.notify(n)


class IntegrationLogWriter:
    """Pipeline hook: returns only once the record's row is committed (group commit).

    Each batch has its own condition, so a finished commit wakes only the callers whose rows it
    wrote, plus one caller of the next batch to lead that commit: no herd of threads waking to
    find it was not their turn.
    """

    def __init__(self, db: StateDB, spool: AuditSpool) -> None:
        self.db = db
        self.spool = spool
        self.health = db.health
        self.health.attach(spool, db.label)
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._open = _Batch(self._lock)  # rows appended now are committed in this batch
        self._committing = False

    def __call__(self, record: AttemptRecord) -> None:
        with self._lock:
            alone = not self._committing and not self._open.records
            if alone:
                self._committing = True
        if alone:  # nobody commits and nobody waits (one thread, the common case): no batch to build
            self._commit_alone(record)
        else:
            self._commit_through(record)

    def _commit_alone(self, record: AttemptRecord) -> None:
        committed = False
        try:
            self._commit([to_row(record)])
            committed = True
        except Exception:
            committed = True  # reported, not re-queued: as for a batch
            raise
        finally:
            with self._lock:
                self._committing = False
                if not committed:  # interrupted: the next commit (or ``flush``) takes the row
                    self._open.records.insert(0, record)
                self._open.wake(1)  # a caller that arrived meanwhile leads the next commit

    def flush(self, timeout: float | None = None) -> None:
        """Commit rows left pending by a caller interrupted (Ctrl-C) while it waited for its batch."""
        self._commit_through(None)

    def close(self) -> None:
        self.flush()

    def _commit_through(self, record: AttemptRecord | None) -> None:
        """Return once ``record`` (or everything pending now) is committed, leading the commit if none runs."""
        with self._lock:
            batch = self._open
            if record is not None:
                batch.records.append(record)
            elif not batch.records:
                return
            while True:
                while batch.moved_to is not None:
                    batch = batch.moved_to
                if batch.done:
                    return
                if not self._committing:
                    break  # nobody is committing, so ``batch`` is still the open one: lead it
                batch.wait()
            self._open = _Batch(self._lock)
            self._committing = True
        committed = False
        try:
            self._commit([to_row(r) for r in batch.records])
            committed = True
        except Exception:
            committed = True  # a row that cannot be built would fail every later batch too: report it, do not re-queue
            raise
        finally:
            with self._lock:
                self._committing = False
                if committed:
                    batch.done = True
                else:  # interrupted: the next batch takes the rows instead of dropping them
                    self._open.records[:0] = batch.records
                    batch.moved_to = self._open
                batch.wake()
                self._open.wake(1)  # one caller of the next batch leads its commit

    def _commit(self, rows: list[tuple[Any, ...]]) -> None:
        try:
            insert_rows(self.db, rows)
        except StateStoreError as exc:  # the busy timeout already waited for other writers
            # The vendor calls already happened; failing them now would invite a double send.
            self._spool(rows, exc)
            return
        if self.health.spooled:  # rows of an earlier failure wait
            self._drain()

    def _spool(self, rows: list[tuple[Any, ...]], exc: StateStoreError) -> None:
        first = self.health.mark_down(exc)  # the next calls are refused before they reach a vendor
        try:
            self.spool.append(self.db.label, rows)
        except StateStoreError as spool_exc:
            print(
                f"connectorctl: warning: integration log not written ({log_rows(len(rows))}): {exc}; {spool_exc}",
                file=sys.stderr,
            )
            return
        self.health.spooled = True
        if first:
            print(
                f"connectorctl: warning: {exc}; audit rows are kept in {self.spool.path} until it answers again",
                file=sys.stderr,
            )

    def _drain(self) -> None:
        try:
            self.health.recover(self.db)
        except StateStoreError:
            pass  # the rows stay spooled; a later commit or probe moves them


def insert_rows(db: StateDB, rows: list[tuple[Any, ...]], *, replay: bool = False) -> None:
    """Commit integration-log rows in one transaction; ``replay``: rows already there (same id) are skipped."""
    try:
        _insert(db, rows, INSERT_LOG_IF_NEW if replay else INSERT_LOG)
    except UnicodeEncodeError:
        # A lone surrogate (undecodable bytes from argv or the environment) in one value: keep the
        # rows with it escaped rather than lose the whole batch.
        _insert(db, [_escaped(row) for row in rows], INSERT_LOG_IF_NEW if replay else INSERT_LOG)


def _insert(db: StateDB, rows: list[tuple[Any, ...]], sql: str) -> None:
    if len(rows) == 1:  # one statement in autocommit: the single-thread case, the common one
        db.run(lambda c: c.execute(sql, rows[0]))
        return
    with db.write() as conn:
        conn.executemany(sql, rows)


def _escaped(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(v.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(v, str) else v for v in row)

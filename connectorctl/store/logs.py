"""Writing integration-log rows: the pipeline's hot path.

One autocommit INSERT costs ~45 µs with the table's indexes, about as much as
the rest of the pipeline together, so by default rows go to a background
thread that commits them in batches every few milliseconds (sqlite releases
the GIL while it writes, so this runs beside the caller).  ``flush()`` and
process exit drain the queue; ``logging.writer: sync`` commits each row
before the call returns, for callers that prefer that to speed.
"""

from __future__ import annotations

import atexit
import collections
import os
import sys
import threading
import weakref
from datetime import datetime, timezone
from typing import Any

from connectorctl.errors import StateStoreError
from connectorctl.ids import new_ulid
from connectorctl.resilience.pipeline import AttemptRecord
from connectorctl.store.db import StateDB

INSERT_LOG = (
    "INSERT INTO integration_logs (id, tenant_id, service_name, operation, endpoint, method, status, http_status_code, "
    "duration_ms, request_data, response_data, error_message, error_code, attempt_number, correlation_id, direction, "
    "created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
BATCH_MAX = 1000
FLUSH_INTERVAL_S = 0.02


def iso_utc(epoch: float) -> str:
    """Sortable UTC timestamp with milliseconds, e.g. ``2026-11-26T03:20:00.123Z``."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def to_row(r: AttemptRecord) -> tuple[Any, ...]:
    return (
        new_ulid(r.started_at),
        r.tenant_id,
        r.service,
        r.operation,
        r.endpoint,
        r.method,
        r.status.value,
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


class IntegrationLogWriter:
    """Synchronous hook: one autocommit INSERT per attempt."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def __call__(self, record: AttemptRecord) -> None:
        row = to_row(record)
        self.db.run(lambda c: c.execute(INSERT_LOG, row))

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self) -> None:
        return None


_LIVE: "weakref.WeakSet[BackgroundLogWriter]" = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for writer in list(_LIVE):
        writer.close()


def _forget_parent_state() -> None:
    """In a forked child the writer thread does not exist and the buffered rows are the
    parent's to write: start afresh (the next row starts a new thread)."""
    for writer in list(_LIVE):
        writer._thread = None
        writer._buffer.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent_state)


class BackgroundLogWriter:
    """Buffer records; a daemon thread wakes every few ms and commits them in one batch.

    The caller only appends to a deque (no lock, no thread wake-up per row):
    waking the writer on every row would cost a GIL hand-off per call.
    """

    def __init__(self, db: StateDB, interval: float = FLUSH_INTERVAL_S) -> None:
        self.db = db
        self.interval = interval
        self._buffer: "collections.deque[AttemptRecord]" = collections.deque()
        self._wake = threading.Event()
        self._flushed = threading.Condition()
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        _LIVE.add(self)

    def __call__(self, record: AttemptRecord) -> None:
        if self._closed:
            row = to_row(record)
            try:
                self.db.run(lambda c: c.execute(INSERT_LOG, row))
            except UnicodeEncodeError:
                self.db.run(lambda c: c.execute(INSERT_LOG, _escaped(row)))
            return
        self._buffer.append(record)
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="connectorctl-log-writer", daemon=True)
                self._thread.start()

    def flush(self, timeout: float | None = 30.0) -> None:
        """Return once every row buffered before this call is committed."""
        if self._thread is None or not self._thread.is_alive():
            self._drain()
            return
        with self._flushed:
            target = self._generation + 2  # the batch in progress may predate our rows
            self._wake.set()
            self._flushed.wait_for(
                lambda: self._generation >= target or not self._buffer and self._generation >= target - 1, timeout
            )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(30.0)
        self._drain()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            self._drain()
        self._drain()

    def _drain(self) -> None:
        while self._buffer:
            rows: list[Any] = []
            while self._buffer and len(rows) < BATCH_MAX:
                rows.append(to_row(self._buffer.popleft()))
            self._commit(rows)
        with self._flushed:
            self._generation += 1
            self._flushed.notify_all()

    def _commit(self, rows: list[tuple[Any, ...]]) -> None:
        error: Exception | None = None
        for _ in range(3):
            try:
                with self.db.write() as conn:
                    conn.executemany(INSERT_LOG, rows)
                return
            except StateStoreError as exc:
                error = exc
            except UnicodeEncodeError:
                # A lone surrogate (undecodable bytes from argv or the environment) in one value: keep the
                # rows with it escaped; raising here used to kill the writer thread and lose every later row.
                rows = [_escaped(row) for row in rows]
        print(f"connectorctl: warning: {len(rows)} integration-log rows not written: {error}", file=sys.stderr)


def _escaped(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(v.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(v, str) else v for v in row)

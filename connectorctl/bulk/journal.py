"""The batch journal: what each recipient of a batch already got, across runs and crashes.

Write pattern, chosen for both safety and speed:

* ``mark_pending`` (one autocommit row, from the worker, right before the
  vendor call) records the correlation id the call will use;
* outcomes are buffered and written by ``flush`` in one transaction per few
  dozen recipients (a commit per recipient would cost more than the send).

A run killed in between leaves ``pending`` rows.  The next run resolves them
from the integration log, which the pipeline commits right after (or within
milliseconds of) the vendor's answer: a ``success`` row for the correlation id
means accepted.
Anything else is ``uncertain`` (the call may have been in flight) and is not
re-sent unless the caller asks for it: a duplicate SMS is worse than a late one.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Callable, Iterable

from connectorctl.store.db import StateDB
from connectorctl.store.logs import iso_utc

DONE = "accepted"
FAILED = "failed"
PENDING = "pending"
UNCERTAIN = "uncertain"


def batch_id_for(channel: str, file_content: bytes, template: Iterable[str]) -> str:
    """Same file + same message => same batch, so a plain re-run resumes it."""
    digest = hashlib.sha256(channel.encode() + b"\0" + file_content)
    for part in template:
        digest.update(b"\0" + part.encode())
    return "b-" + digest.hexdigest()[:20]


@dataclass(frozen=True)
class Outcome:
    recipient: str
    state: str
    vendor: str | None = None
    message_id: str | None = None
    correlation_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class BatchJournal:
    def __init__(self, db: StateDB, batch_id: str, clock_time: Callable[[], float]) -> None:
        self.db = db
        self.batch_id = batch_id
        self.now = clock_time
        self._buffer: list[Outcome] = []
        self._lock = threading.Lock()

    def open(self, channel: str, source: str, total: int) -> None:
        stamp = iso_utc(self.now())
        with self.db.write() as c:
            c.execute(
                "INSERT INTO bulk_batches (batch_id, channel, source, total, created_at, updated_at, runs) VALUES "
                "(?, ?, ?, ?, ?, ?, 1) "
                "ON CONFLICT(batch_id) DO UPDATE SET runs = bulk_batches.runs + 1, updated_at = excluded.updated_at",
                (self.batch_id, channel, source, total, stamp, stamp),
            )

    def started_at(self) -> float:
        """When the batch's first run began: no send of this batch can be older."""
        from connectorctl.times import parse_time

        row = self.db.run(
            lambda c: c.execute("SELECT created_at FROM bulk_batches WHERE batch_id=?", (self.batch_id,)).fetchone()
        )
        return parse_time(row[0]).timestamp() if row else self.now()

    def states(self) -> dict[str, tuple[str, str | None]]:
        """recipient -> (state, correlation id), after resolving what a killed run left pending."""
        self._resolve_pending()
        rows = self.db.run(
            lambda c: c.execute(
                "SELECT recipient, state, correlation_id FROM bulk_items WHERE batch_id=?", (self.batch_id,)
            ).fetchall()
        )
        return {r: (s, cid) for r, s, cid in rows}

    def _resolve_pending(self) -> None:
        with self.db.write() as c:
            c.execute(
                "UPDATE bulk_items SET state=?, vendor=(SELECT l.service_name FROM integration_logs l WHERE "
                "l.correlation_id=bulk_items.correlation_id "
                "AND l.status='success' LIMIT 1), error_code=NULL, error_message='recovered from the integration log' "
                "WHERE batch_id=? AND state=? AND EXISTS (SELECT 1 FROM integration_logs l WHERE "
                "l.correlation_id=bulk_items.correlation_id "
                "AND l.status='success' AND l.operation LIKE 'send_%')",
                (DONE, self.batch_id, PENDING),
            )
            c.execute(
                "UPDATE bulk_items SET state=?, error_code='uncertain', error_message='the run stopped during this "
                "call; the vendor may have it' "
                "WHERE batch_id=? AND state=?",
                (UNCERTAIN, self.batch_id, PENDING),
            )

    def mark_pending(self, recipient: str, row_number: int, correlation_id: str) -> None:
        stamp = iso_utc(self.now())
        self.db.run(
            lambda c: c.execute(
                "INSERT INTO bulk_items (batch_id, recipient, row_number, state, correlation_id, attempts, "
                "updated_at) VALUES (?, ?, ?, ?, ?, 1, ?) "
                "ON CONFLICT(batch_id, recipient) DO UPDATE SET state=excluded.state, "
                "correlation_id=excluded.correlation_id, "
                "attempts=bulk_items.attempts+1, updated_at=excluded.updated_at",
                (self.batch_id, recipient, row_number, PENDING, correlation_id, stamp),
            )
        )

    def record(self, outcome: Outcome) -> None:
        with self._lock:
            self._buffer.append(outcome)

    def flush(self) -> None:
        with self._lock:
            pending, self._buffer = self._buffer, []
        if not pending:
            return
        stamp = iso_utc(self.now())
        try:
            self._write(pending, stamp)
        except BaseException:  # noqa: BLE001 - Ctrl-C or a locked file: keep them for the next flush
            with self._lock:
                self._buffer[:0] = pending
            raise

    def _write(self, pending: list[Outcome], stamp: str) -> None:
        with self.db.write() as c:
            c.executemany(
                "INSERT INTO bulk_items (batch_id, recipient, state, vendor, message_id, correlation_id, "
                "error_code, error_message, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(batch_id, recipient) DO UPDATE SET "
                "state=excluded.state, "
                "vendor=excluded.vendor, message_id=excluded.message_id, "
                "correlation_id=coalesce(excluded.correlation_id, bulk_items.correlation_id), "
                "error_code=excluded.error_code, error_message=excluded.error_message, updated_at=excluded.updated_at",
                [
                    (
                        self.batch_id,
                        o.recipient,
                        o.state,
                        o.vendor,
                        o.message_id,
                        o.correlation_id,
                        o.error_code,
                        o.error_message,
                        stamp,
                    )
                    for o in pending
                ],
            )

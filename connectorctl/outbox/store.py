"""The outbox table (migration 80): messages accepted now, delivered when a vendor can take them.

One row per (channel, key): enqueueing a key twice is one message.  A worker
*claims* due rows with one ``UPDATE ... WHERE <still due> RETURNING`` (the
same statement on SQLite and PostgreSQL), which hands each row to exactly one
worker for ``lease_seconds``.  A row whose lease ran out while it was
``sending`` belongs to a worker that died mid-send: whoever claims it next
gets ``check_first`` set and must ask the vendor before sending again.  Every
change after a claim is guarded by the claimant's lease, so a worker that
lost its lease cannot overwrite another's outcome.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from connectorctl.errors import InvalidInputError
from connectorctl.ids import new_ulid
from connectorctl.resilience.clock import Clock, SystemClock
from connectorctl.store.db import StateDB
from connectorctl.store.intents import ReferenceConflictError, fingerprint
from connectorctl.store.migrations import migration
from connectorctl.times import iso_utc
from connectorctl.validation import check_reference


class OutboxStatus(str, enum.Enum):
    QUEUED = "queued"  # waiting for its first attempt
    RETRYING = "retrying"  # waiting after a failure, an open circuit or a spent quota
    SENDING = "sending"  # claimed by a worker
    UNCERTAIN = "uncertain"  # may have been sent and the vendor cannot be asked: an operator decides
    SENT = "sent"
    DEAD = "dead"  # refused for good, or still failing at outbox.max_age_hours
    DROPPED = "dropped"  # an operator gave up on it


DUE = (OutboxStatus.QUEUED.value, OutboxStatus.RETRYING.value)
OPEN = (*DUE, OutboxStatus.SENDING.value)


@migration(80, "outbox")
def _outbox(db: Any) -> None:
    # Times are epoch seconds as DOUBLE PRECISION: REAL affinity on SQLite, and no float4 on PostgreSQL,
    # whose REAL would round today's epoch to minutes.
    db.execute(
        "CREATE TABLE outbox_messages ("
        "id TEXT PRIMARY KEY, channel TEXT NOT NULL, msg_key TEXT NOT NULL, tenant_id TEXT, vendors TEXT NOT NULL, "
        "payload TEXT NOT NULL, fingerprint TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
        "check_first INTEGER NOT NULL DEFAULT 0, next_attempt_at DOUBLE PRECISION NOT NULL, lease_owner TEXT, "
        "lease_until DOUBLE PRECISION, vendor TEXT, vendor_message_id TEXT, last_error_code TEXT, last_error TEXT, "
        "created_at DOUBLE PRECISION NOT NULL, queued_at DOUBLE PRECISION NOT NULL, "
        "updated_at DOUBLE PRECISION NOT NULL, sent_at DOUBLE PRECISION)"
    )
    db.execute("CREATE UNIQUE INDEX ux_outbox_key ON outbox_messages(channel, msg_key)")
    db.execute("CREATE INDEX ix_outbox_due ON outbox_messages(status, next_attempt_at)")
    db.execute("CREATE INDEX ix_outbox_updated ON outbox_messages(status, updated_at)")


_COLUMNS = (
    "id, channel, msg_key, tenant_id, vendors, payload, status, attempts, check_first, next_attempt_at, lease_owner, "
    "lease_until, vendor, vendor_message_id, last_error_code, last_error, created_at, queued_at, updated_at, sent_at, "
    "fingerprint"
)


@dataclass(frozen=True)
class OutboxMessage:
    id: str
    channel: str
    key: str
    tenant_id: str | None
    vendors: tuple[str, ...]
    payload: Mapping[str, Any]
    status: OutboxStatus
    attempts: int
    check_first: bool
    next_attempt_at: float
    lease_owner: str | None
    lease_until: float | None
    vendor: str | None
    vendor_message_id: str | None
    last_error_code: str | None
    last_error: str | None
    created_at: float
    queued_at: float
    updated_at: float
    sent_at: float | None
    fingerprint: str
    new: bool = field(default=False, compare=False)  # True only on the row ``enqueue`` just stored

    def to_dict(self) -> dict[str, Any]:
        def when(epoch: float | None) -> str | None:
            return iso_utc(epoch) if epoch is not None else None

        return {
            "id": self.id,
            "key": self.key,
            "channel": self.channel,
            "tenant_id": self.tenant_id,
            "vendors": list(self.vendors),
            "status": self.status.value,
            "attempts": self.attempts,
            "check_first": self.check_first,
            "recipients": recipients(self.channel, self.payload),
            "vendor": self.vendor,
            "vendor_message_id": self.vendor_message_id,
            "last_error_code": self.last_error_code,
            "last_error": self.last_error,
            "created_at": when(self.created_at),
            "next_attempt_at": when(self.next_attempt_at) if self.status.value in DUE else None,
            "updated_at": when(self.updated_at),
            "sent_at": when(self.sent_at),
            "new": self.new,
        }


def recipients(channel: str, payload: Mapping[str, Any]) -> list[str]:
    if channel == "sms":
        return [str(payload.get("to", ""))]
    return [str(a) for field in ("to", "cc", "bcc") for a in payload.get(field) or ()]


def _message(row: Sequence[Any]) -> OutboxMessage:
    values = list(row)
    values[4] = tuple(values[4].split(",")) if values[4] else ()
    values[5] = json.loads(values[5])
    values[6] = OutboxStatus(values[6])
    values[8] = bool(values[8])
    return OutboxMessage(*values)


class OutboxStore:
    """The outbox of one installation; every change is one short transaction."""

    def __init__(self, db: StateDB, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()

    # -- producers ----------------------------------------------------------------
    def enqueue(
        self,
        channel: str,
        payload: Mapping[str, Any],
        vendors: Sequence[str],
        *,
        key: str | None = None,
        tenant_id: str | None = None,
    ) -> OutboxMessage:
        """Store the message (committed when this returns); when ``key`` was enqueued before, the stored one
        (``new`` False).

        The same key with another message, chain or tenant is refused: the key names one message.
        """
        now = self.clock.time()
        message_id = new_ulid(now)
        key = check_reference(key) if key is not None else message_id
        body = json.dumps(dict(payload), sort_keys=True, separators=(",", ":"))
        digest = fingerprint(channel, {"payload": payload, "vendors": list(vendors), "tenant_id": tenant_id})
        with self.db.write() as conn:
            row = conn.execute(
                "INSERT INTO outbox_messages (id, channel, msg_key, tenant_id, vendors, payload, fingerprint, status, "
                f"next_attempt_at, "
                f"created_at, queued_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT (channel, msg_key) DO NOTHING RETURNING {_COLUMNS}",
                (
                    message_id,
                    channel,
                    key,
                    tenant_id,
                    ",".join(vendors),
                    body,
                    digest,
                    OutboxStatus.QUEUED.value,
                    now,
                    now,
                    now,
                    now,
                ),
            ).fetchone()
            created = row is not None
            if row is None:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM outbox_messages WHERE channel = ? AND msg_key = ?", (channel, key)
                ).fetchone()
        message = _message(row)
        if not created and message.fingerprint != digest:
            raise ReferenceConflictError(
                f"outbox key {key!r} was already used for another {channel} message; nothing was queued",
                hint="use a new key for a different message",
            )
        return replace(message, new=created)

    # -- workers --------------------------------------------------------------------
    def claim(
        self, owner: str, *, lease_seconds: float, limit: int = 1, due_by: float | None = None
    ) -> list[OutboxMessage]:
        """Take up to ``limit`` messages due by ``due_by`` (default now), and ones whose sender died,
        for ``lease_seconds``."""
        now = self.clock.time()
        due = "(status IN (?, ?) AND next_attempt_at <= ?) OR (status = ? AND lease_until < ?)"
        args = (*DUE, min(now, due_by) if due_by is not None else now, OutboxStatus.SENDING.value, now)
        with self.db.write() as conn:
            rows = conn.execute(
                f"UPDATE outbox_messages SET status = ?, lease_owner = ?, lease_until = ?, updated_at = ?, "
                f"check_first = CASE WHEN status = ? THEN 1 ELSE check_first END "
                f"WHERE id IN (SELECT id FROM outbox_messages WHERE {due} ORDER BY next_attempt_at LIMIT ?) "
                f"AND ({due}) "
                f"RETURNING {_COLUMNS}",
                (
                    OutboxStatus.SENDING.value,
                    owner,
                    now + lease_seconds,
                    now,
                    OutboxStatus.SENDING.value,
                    *args,
                    limit,
                    *args,
                ),
            ).fetchall()
        return [_message(r) for r in rows]

    def renew(self, owner: str, lease_seconds: float) -> int:
        """Extend every lease ``owner`` holds: while its process lives, nobody else takes its messages over."""
        with self.db.write() as conn:
            return conn.execute(
                "UPDATE outbox_messages SET lease_until = ? WHERE lease_owner = ? AND status = ?",
                (self.clock.time() + lease_seconds, owner, OutboxStatus.SENDING.value),
            ).rowcount

    def next_due(self) -> float | None:
        """When the next message becomes due (or a held lease runs out), for an idle worker's sleep."""
        row = self.db.run(
            lambda c: c.execute(
                "SELECT MIN(CASE WHEN status = ? THEN lease_until ELSE next_attempt_at END) FROM outbox_messages "
                "WHERE status IN (?, ?, ?)",
                (OutboxStatus.SENDING.value, *OPEN),
            ).fetchone()
        )
        return row[0] if row else None

    def _finish(self, message: OutboxMessage, owner: str, sets: str, args: Sequence[Any]) -> bool:
        """Apply an outcome if ``owner`` still holds the lease; False when another worker took the message over."""
        with self.db.write() as conn:
            cur = conn.execute(
                f"UPDATE outbox_messages SET {sets}, lease_owner = NULL, lease_until = NULL, updated_at = ? "
                f"WHERE id = ? AND status = ? AND lease_owner = ?",
                (*args, self.clock.time(), message.id, OutboxStatus.SENDING.value, owner),
            )
            return cur.rowcount == 1

    def mark_sent(
        self,
        message: OutboxMessage,
        owner: str,
        vendor: str | None,
        vendor_message_id: str | None,
        *,
        attempted: bool = True,
        note: str | None = None,
    ) -> bool:
        return self._finish(
            message,
            owner,
            "status = ?, vendor = ?, vendor_message_id = ?, attempts = attempts + ?, check_first = 0, "
            "sent_at = ?, last_error_code = NULL, last_error = ?",
            (OutboxStatus.SENT.value, vendor, vendor_message_id, int(attempted), self.clock.time(), note),
        )

    def reschedule(
        self,
        message: OutboxMessage,
        owner: str,
        at: float,
        *,
        attempted: bool,
        check_first: bool,
        error_code: str | None,
        error: str | None,
    ) -> bool:
        """Back to waiting until ``at``; ``attempted=False`` for a wait the vendor never saw (open circuit,
        spent quota)."""
        return self._finish(
            message,
            owner,
            "status = ?, next_attempt_at = ?, attempts = attempts + ?, check_first = ?, "
            "last_error_code = ?, last_error = ?",
            (OutboxStatus.RETRYING.value, at, int(attempted), int(check_first), error_code, error),
        )

    def settle(
        self,
        message: OutboxMessage,
        owner: str,
        status: OutboxStatus,
        *,
        attempted: bool,
        error_code: str | None,
        error: str | None,
        vendor: str | None = None,
        check_first: bool = False,
    ) -> bool:
        """A final state an operator has to look at: ``dead`` or ``uncertain``; ``check_first`` makes a redrive
        ask the vendor first."""
        return self._finish(
            message,
            owner,
            "status = ?, attempts = attempts + ?, last_error_code = ?, last_error = ?, "
            "vendor = COALESCE(?, vendor), check_first = ?",
            (status.value, int(attempted), error_code, error, vendor, int(check_first)),
        )

    def release(self, message: OutboxMessage, owner: str) -> bool:
        """Give a claimed message back untouched (a worker stopping before it started the send)."""
        return self._finish(
            message,
            owner,
            "status = ?, next_attempt_at = ?",
            (OutboxStatus.RETRYING.value if message.attempts else OutboxStatus.QUEUED.value, self.clock.time()),
        )

    def hold_route(self, channel: str, vendors: Sequence[str], until: float) -> int:
        """Make every waiting message of one vendor chain wait until ``until`` (its circuit is open or its
        quota spent), so workers sleep instead of claiming them one by one just to be refused."""
        with self.db.write() as conn:
            return conn.execute(
                "UPDATE outbox_messages SET next_attempt_at = ? "
                "WHERE channel = ? AND vendors = ? AND status IN (?, ?) AND next_attempt_at < ?",
                (until, channel, ",".join(vendors), *DUE, until),
            ).rowcount

    # -- operators ------------------------------------------------------------------
    def get(self, message_id: str) -> OutboxMessage | None:
        row = self.db.run(
            lambda c: c.execute(f"SELECT {_COLUMNS} FROM outbox_messages WHERE id = ?", (message_id,)).fetchone()
        )
        return _message(row) if row else None

    def list(
        self, *, status: OutboxStatus | None = None, service: str | None = None, limit: int = 100
    ) -> list[OutboxMessage]:
        sql = f"SELECT {_COLUMNS} FROM outbox_messages WHERE 1 = 1"
        args: list[Any] = []
        if status is not None:
            sql += " AND status = ?"
            args.append(status.value)
        if service:
            sql += " AND (vendor = ? OR ',' || vendors || ',' LIKE ?)"
            args += [service, f"%,{service},%"]
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        args.append(limit)
        return [_message(r) for r in self.db.run(lambda c: c.execute(sql, args).fetchall())]

    def retry(self, message_id: str) -> OutboxMessage:
        """Redrive one message now.  An ``uncertain`` one is sent again without asking: that is the operator's call."""
        now = self.clock.time()
        with self.db.write() as conn:
            row = conn.execute(
                f"UPDATE outbox_messages SET status = ?, next_attempt_at = ?, queued_at = ?, updated_at = ?, "
                "check_first = CASE WHEN status = ? THEN 0 ELSE check_first END "
                f"WHERE id = ? AND status IN (?, ?, ?, ?) RETURNING {_COLUMNS}",
                (
                    OutboxStatus.RETRYING.value,
                    now,
                    now,
                    now,
                    OutboxStatus.UNCERTAIN.value,
                    message_id,
                    *DUE,
                    OutboxStatus.UNCERTAIN.value,
                    OutboxStatus.DEAD.value,
                ),
            ).fetchone()
        if row is None:
            raise self._not_changeable(message_id, "retried")
        return _message(row)

    def retry_dead(self, since: float | None = None) -> int:
        now = self.clock.time()
        with self.db.write() as conn:
            return conn.execute(
                "UPDATE outbox_messages SET status = ?, next_attempt_at = ?, queued_at = ?, updated_at = ? "
                "WHERE status = ? AND updated_at >= ?",
                (OutboxStatus.RETRYING.value, now, now, now, OutboxStatus.DEAD.value, since or 0.0),
            ).rowcount

    def drop(self, message_id: str) -> OutboxMessage:
        """Give up on a message that is not being sent right now; the row stays for the record."""
        now = self.clock.time()
        with self.db.write() as conn:
            row = conn.execute(
                "UPDATE outbox_messages SET status = ?, updated_at = ? "
                f"WHERE id = ? AND status IN (?, ?, ?, ?) RETURNING {_COLUMNS}",
                (
                    OutboxStatus.DROPPED.value,
                    now,
                    message_id,
                    *DUE,
                    OutboxStatus.UNCERTAIN.value,
                    OutboxStatus.DEAD.value,
                ),
            ).fetchone()
        if row is None:
            raise self._not_changeable(message_id, "dropped")
        return _message(row)

    def purge_sent(self, older_than_seconds: float) -> int:
        cutoff = self.clock.time() - older_than_seconds
        with self.db.write() as conn:
            return conn.execute(
                "DELETE FROM outbox_messages WHERE status = ? AND updated_at < ?", (OutboxStatus.SENT.value, cutoff)
            ).rowcount

    def _not_changeable(self, message_id: str, verb: str) -> InvalidInputError:
        current = self.get(message_id)
        if current is None:
            return InvalidInputError(f"no outbox message {message_id!r}", hint="see: connectorctl outbox list")
        return InvalidInputError(f"outbox message {message_id} is {current.status.value} and cannot be {verb}")


REPORTED = tuple(s.value for s in OutboxStatus if s not in (OutboxStatus.SENT, OutboxStatus.DROPPED))


def depth(db: StateDB, now: float) -> dict[str, Any]:
    """Messages still to deliver (queued, retrying, being sent), the age of the oldest in seconds, and a count
    per status needing attention: one answer for ``status``, the API and Prometheus."""
    rows = db.run(
        lambda c: c.execute(
            "SELECT status, COUNT(*), MIN(created_at) FROM outbox_messages "
            f"WHERE status IN ({', '.join('?' * len(REPORTED))}) GROUP BY status",
            REPORTED,
        ).fetchall()
    )
    counts = dict.fromkeys(REPORTED, 0)
    oldest = [created for status, _, created in rows if status in OPEN]
    counts.update({status: count for status, count, _ in rows})
    return {
        "depth": sum(counts[s] for s in OPEN),
        "oldest_age_seconds": round(now - min(oldest), 3) if oldest else None,
        "by_status": counts,
    }

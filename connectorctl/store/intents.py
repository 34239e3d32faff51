"""Write-ahead intents: a call that must happen once and never be forgotten (migration 50).

A charge, a refund or a label purchase first commits an *intent* row (the
caller's business reference, the operation, a fingerprint of its parameters,
the idempotency key derived from the reference, the vendor) and only then
talks to the vendor; its outcome is committed afterwards.  A process that dies
in between leaves the row behind, so nothing is silently lost: a row whose
answer never arrived is ``uncertain``, and so is an ``intent`` row whose owner
process is gone or whose lease ran out.  Reconciliation asks the vendor about
those rows and settles them.

The store is channel-agnostic: payments and shipping use it the same way, each
with its own ``channel`` name.  One row per (channel, reference): a reference
names one operation with one set of parameters, so the same reference with
other parameters is refused before any vendor is contacted.
"""

from __future__ import annotations

import builtins
import enum
import hashlib
import json
import os
import socket
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from connectorctl.errors import ConnectorctlError, InvalidInputError
from connectorctl.resilience.clock import Clock, SystemClock
from connectorctl.store.db import StateDB
from connectorctl.store.migrations import migration
from connectorctl.validation import check_reference

HOST = socket.gethostname()


class IntentState(str, enum.Enum):
    INTENT = "intent"  # committed, request about to be sent or in flight
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the vendor refused, or provably never acted
    UNCERTAIN = "uncertain"  # the request may have been acted on; only the vendor knows


class ReferenceConflictError(InvalidInputError):
    """The reference was used before with other parameters; nothing was sent."""

    code = "reference_conflict"


class IntentInProgressError(ConnectorctlError):
    """Another live process is sending this reference right now."""

    code = "in_progress"


@migration(50, "operation_intents")
def _operation_intents(db: Any) -> None:
    db.execute(
        "CREATE TABLE operation_intents ("
        "channel TEXT NOT NULL, reference TEXT NOT NULL, operation TEXT NOT NULL, fingerprint TEXT NOT NULL, "
        "idempotency_key TEXT NOT NULL, vendor TEXT NOT NULL, state TEXT NOT NULL, params TEXT NOT NULL, "
        "outcome TEXT, vendor_id TEXT, error_code TEXT, error_message TEXT, attempts INTEGER NOT NULL DEFAULT 1, "
        "owner_host TEXT, owner_pid INTEGER, lease_until REAL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
        "PRIMARY KEY (channel, reference))"
    )
    db.execute(
        "CREATE INDEX ix_intents_open ON operation_intents(channel, state, updated_at) WHERE state IN ('intent', "
        "'uncertain')"
    )
    db.execute(
        "CREATE INDEX ix_intents_vendor_id ON operation_intents(channel, vendor, vendor_id) WHERE vendor_id IS NOT NULL"
    )
    db.execute("CREATE INDEX ix_intents_time ON operation_intents(channel, created_at)")


@dataclass(frozen=True)
class Intent:
    channel: str
    reference: str
    operation: str
    fingerprint: str
    idempotency_key: str
    vendor: str
    state: IntentState
    params: Mapping[str, Any]
    outcome: Mapping[str, Any] | None
    vendor_id: str | None
    error_code: str | None
    error_message: str | None
    attempts: int
    owner_host: str | None
    owner_pid: int | None
    lease_until: float | None
    created_at: str
    updated_at: str
    new: bool = field(default=False, compare=False)  # True only on the row ``begin`` just inserted

    @property
    def settled(self) -> bool:
        return self.state in (IntentState.SUCCEEDED, IntentState.FAILED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "reference": self.reference,
            "operation": self.operation,
            "vendor": self.vendor,
            "state": self.state.value,
            "idempotency_key": self.idempotency_key,
            "vendor_id": self.vendor_id,
            "params": dict(self.params),
            "outcome": dict(self.outcome) if self.outcome is not None else None,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def fingerprint(operation: str, params: Mapping[str, Any]) -> str:
    """Stable digest of what is asked; key order and JSON spacing do not matter."""
    text = json.dumps([operation, params], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def idempotency_key(channel: str, reference: str) -> str:
    """The vendor idempotency key for a reference: the same on every retry, failover and restart.

    A digest rather than the reference itself, so the key fits every vendor's
    limit (PayPal-Request-Id: 108 characters) and carries no business data.
    """
    return "cc-" + hashlib.sha256(f"{channel}\n{reference}".encode("utf-8")).hexdigest()[:48]


def _now_iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


_COLUMNS = (
    "channel, reference, operation, fingerprint, idempotency_key, vendor, state, params, outcome, vendor_id, "
    "error_code, error_message, attempts, owner_host, owner_pid, lease_until, created_at, updated_at"
)


def _intent(row: Sequence[Any]) -> Intent:
    values = list(row)
    values[6] = IntentState(values[6])
    values[7] = json.loads(values[7])
    values[8] = json.loads(values[8]) if values[8] is not None else None
    return Intent(*values)


class IntentStore:
    """Intents of every channel in the state database; each change is one short transaction."""

    def __init__(self, db: StateDB, clock: Clock | None = None) -> None:
        self.db = db
        self.clock: Clock = clock or SystemClock()

    def begin(
        self,
        channel: str,
        reference: str,
        operation: str,
        vendor: str,
        params: Mapping[str, Any],
        *,
        lease_seconds: float,
    ) -> Intent:
        """Commit the intent for ``reference`` (before any request), or return the row it already has.

        A new reference gets an ``intent`` row owned by this process for
        ``lease_seconds`` (with ``new`` set: send it).  An existing row is returned as it is (the caller
        replays a settled outcome, or resolves an uncertain one with the vendor
        before sending again), unless its parameters differ
        (:class:`ReferenceConflictError`) or a live process owns it
        (:class:`IntentInProgressError`).
        """
        check_reference(reference)
        digest = fingerprint(operation, params)
        now = self.clock.time()
        with self.db.write() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM operation_intents WHERE channel = ? AND reference = ?", (channel, reference)
            ).fetchone()
            if row is None:
                stamp = _now_iso(now)
                conn.execute(
                    f"INSERT INTO operation_intents ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, "
                    "NULL, 1, ?, ?, ?, ?, ?)",
                    (
                        channel,
                        reference,
                        operation,
                        digest,
                        idempotency_key(channel, reference),
                        vendor,
                        IntentState.INTENT.value,
                        json.dumps(dict(params), sort_keys=True, default=str),
                        HOST,
                        os.getpid(),
                        now + lease_seconds,
                        stamp,
                        stamp,
                    ),
                )
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM operation_intents WHERE channel = ? AND reference = ?",
                    (channel, reference),
                ).fetchone()
                return replace(_intent(row), new=True)
        existing = _intent(row)
        if existing.fingerprint != digest:
            raise ReferenceConflictError(
                f"reference {reference!r} was already used for a {existing.operation} with other parameters; nothing "
                "was sent",
                hint="use a new reference for a different operation",
            )
        if existing.state is IntentState.INTENT and not self.is_stale(existing):
            raise IntentInProgressError(
                f"reference {reference!r} is being sent by another process (pid {existing.owner_pid})",
                hint="wait for it to finish, then run the command again",
            )
        return existing

    def claim(self, intent: Intent, *, vendor: str | None = None, lease_seconds: float) -> Intent:
        """Take over an unsettled row to send it (again), possibly to another vendor; same key."""
        now = self.clock.time()
        with self.db.write() as conn:
            cur = conn.execute(
                "UPDATE operation_intents SET state = ?, vendor = ?, attempts = attempts + 1, owner_host = ?, "
                "owner_pid = ?, "
                "lease_until = ?, updated_at = ? WHERE channel = ? AND reference = ? AND state = ? AND attempts = ?",
                (
                    IntentState.INTENT.value,
                    vendor or intent.vendor,
                    HOST,
                    os.getpid(),
                    now + lease_seconds,
                    _now_iso(now),
                    intent.channel,
                    intent.reference,
                    intent.state.value,
                    intent.attempts,
                ),
            )
            if cur.rowcount != 1:
                raise IntentInProgressError(
                    f"reference {intent.reference!r} changed while being taken over by another process",
                    hint="run the command again",
                )
        return self._reload(intent)

    def settle(
        self,
        intent: Intent,
        state: IntentState,
        *,
        outcome: Mapping[str, Any] | None = None,
        vendor_id: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> Intent:
        """Record what became of the request; ``uncertain`` keeps the row open for reconciliation."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE operation_intents SET state = ?, outcome = ?, vendor_id = COALESCE(?, vendor_id), error_code "
                "= ?, "
                "error_message = ?, lease_until = NULL, updated_at = ? WHERE channel = ? AND reference = ?",
                (
                    state.value,
                    json.dumps(dict(outcome), sort_keys=True, default=str) if outcome is not None else None,
                    vendor_id,
                    error_code,
                    error_message,
                    _now_iso(self.clock.time()),
                    intent.channel,
                    intent.reference,
                ),
            )
        return self._reload(intent)

    def get(self, channel: str, reference: str) -> Intent | None:
        row = self.db.run(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM operation_intents WHERE channel = ? AND reference = ?", (channel, reference)
            ).fetchone()
        )
        return _intent(row) if row else None

    def by_vendor_id(self, channel: str, vendor: str, vendor_id: str) -> list[Intent]:
        rows = self.db.run(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM operation_intents WHERE channel = ? AND vendor = ? AND vendor_id = ? ORDER "
                "BY created_at",
                (channel, vendor, vendor_id),
            ).fetchall()
        )
        return [_intent(r) for r in rows]

    def list(
        self,
        channel: str,
        *,
        states: Sequence[IntentState] = (),
        since: str | None = None,
        limit: int | None = None,
        reference_prefix: str | None = None,
    ) -> list[Intent]:
        sql = f"SELECT {_COLUMNS} FROM operation_intents WHERE channel = ?"
        args: list[Any] = [channel]
        if reference_prefix:
            sql += " AND reference >= ? AND reference < ?"  # a range, so the primary key answers it
            args += [reference_prefix, reference_prefix + "\U0010ffff"]
        if states:
            sql += f" AND state IN ({', '.join('?' * len(states))})"
            args += [s.value for s in states]
        if since:
            sql += " AND created_at >= ?"
            args.append(since)
        sql += " ORDER BY created_at, reference"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_intent(r) for r in self.db.run(lambda c: c.execute(sql, args).fetchall())]

    def is_stale(self, intent: Intent) -> bool:
        """An ``intent`` row nobody is working on: its lease ran out or its owner process is gone."""
        if intent.state is not IntentState.INTENT:
            return False
        if intent.lease_until is None or intent.lease_until <= self.clock.time():
            return True
        return intent.owner_host == HOST and intent.owner_pid is not None and not _pid_alive(intent.owner_pid)

    def unresolved(self, channel: str, *, since: str | None = None) -> builtins.list[Intent]:
        """Rows only the vendor can settle: ``uncertain`` ones and abandoned ``intent`` ones."""
        rows = self.list(channel, states=(IntentState.INTENT, IntentState.UNCERTAIN), since=since)
        return [i for i in rows if i.state is IntentState.UNCERTAIN or self.is_stale(i)]

    def _reload(self, intent: Intent) -> Intent:
        fresh = self.get(intent.channel, intent.reference)
        assert fresh is not None  # rows are never deleted
        return fresh

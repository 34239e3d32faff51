"""Circuit breaker whose state lives in the state database, so every process (and host) obeys it.

Calls read an in-process copy of the circuit rows that is reloaded when any
process changes them (bounded staleness, see ``_StateCache``); writes happen
only on counted failures, on recovery and on transitions.  After the open
timeout exactly one process wins a probe lease (a conditional UPDATE, always
on the database), everyone else keeps failing fast;
the lease expires so a crashed prober cannot wedge the circuit half-open.
Operator states (forced open, disabled) win over automatic ones; a forced-open
period that ends turns half-open, so it too lets exactly one probe through.
"""

from __future__ import annotations

import getpass
import os
import threading
from dataclasses import dataclass
from typing import Any

from connectorctl.domain.values import CircuitBreakerState, CircuitState
from connectorctl.errors import CircuitOpenError, InvalidInputError
from connectorctl.resilience.clock import Clock
from connectorctl.settings import CircuitBreakerSettings
from connectorctl.store.db import StateDB

MAX_TRIP_SECONDS = 36500 * 86400

_COLUMNS = (
    "service_name, state, consecutive_failures, opened_at, open_until, probe_lease_until, forced_until, reason, "
    "updated_by, updated_at"
)


@dataclass(frozen=True)
class Ticket:
    """Permission for one attempt; says how its outcome must be recorded."""

    service: str
    probe: bool = False
    bypass: bool = False
    had_failures: bool = False


def current_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@pid{os.getpid()}"


class _StateCache:
    """Circuit rows cached in-process, trusted while nothing says they changed and for at most ``max_age`` s.

    Every write to ``circuit_state`` moves the database's change signal (see
    ``store/changes.py``): on SQLite a shared memory-mapped counter, on PostgreSQL
    a NOTIFY sent by a trigger inside the writing transaction and counted on a
    LISTEN connection.  A call compares the signal with the version it saw before
    it last loaded the rows; equal means nothing changed, so honouring other
    processes' (and hosts') circuit changes costs a memory access or a
    non-blocking socket read instead of a query.  The rows are read again anyway
    once ``max_age`` seconds passed (a notification lost on the way cannot keep a
    host sending for longer), and on every call while the signal is unknown (its
    connection lost).  Those reads fail while the database is down, which refuses
    the call before any vendor request.
    """

    def __init__(self, db: StateDB, clock: Clock, max_age: float) -> None:
        self.db = db
        self.clock = clock
        self.max_age = max_age
        self.signal = db.change_signal("circuit")
        self._rows: dict[str, tuple[Any, ...]] = {}
        self._seen: int | None = None
        self._fresh_until = 0.0
        self._lock = threading.Lock()

    def get(self, service: str) -> tuple[Any, ...] | None:
        seen = self.signal.version()
        if seen is not None and seen == self._seen and self.clock.monotonic() < self._fresh_until:
            return self._rows.get(service)  # the dict is replaced whole, never mutated: no lock needed
        fresh_until = self.clock.monotonic() + self.max_age
        rows = self.db.run(
            lambda c: c.execute(
                "SELECT service_name, state, consecutive_failures, open_until, probe_lease_until, forced_until, "
                "reason FROM circuit_state"
            ).fetchall()
        )
        if seen is None:
            self.signal.revive()
        with self._lock:
            self._rows = {r[0]: r[1:] for r in rows}
            self._seen = seen
            self._fresh_until = fresh_until
            return self._rows.get(service)

    def bump(self) -> None:
        """This process changed circuit rows (call after commit): it reloads them, and so does everyone else."""
        with self._lock:
            self._seen = None
        self.signal.bump()

    def close(self) -> None:
        self.signal.close()


class CircuitBreaker:
    def __init__(self, db: StateDB, settings: CircuitBreakerSettings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.cache = _StateCache(db, clock, settings.max_staleness_seconds)
        self._tickets: dict[tuple[str, bool, bool], Ticket] = {}

    # -- the hot path -------------------------------------------------------------
    def _ticket(self, service: str, *, had_failures: bool = False, bypass: bool = False) -> Ticket:
        """Tickets are immutable, so the common ones are made once per service and reused."""
        key = (service, had_failures, bypass)
        ticket = self._tickets.get(key)
        if ticket is None:
            ticket = self._tickets[key] = Ticket(service, had_failures=had_failures, bypass=bypass)
        return ticket

    def before_call(self, service: str) -> Ticket:
        row = self.cache.get(service)
        rate_mode = self.settings.failure_rate_threshold is not None
        if row is None:
            return self._ticket(service, had_failures=rate_mode)
        state, failures, open_until, lease_until, forced_until, reason = row
        if state == CircuitState.CLOSED:
            return self._ticket(service, had_failures=failures > 0 or rate_mode)
        if state == CircuitState.DISABLED:
            return self._ticket(service, bypass=True)
        now = self.clock.time()
        if state == CircuitState.FORCED_OPEN:
            if forced_until is not None and forced_until <= now:
                return self._expire(service, now)
            raise open_error(service, "forced open", reason, forced_until, now)
        # open or half-open: the timeout must have passed and the probe lease must be free
        if open_until is not None and now < open_until:
            raise open_error(service, "open", reason, open_until, now)
        lease = now + self.settings.probe_lease_seconds
        won = self.db.run(
            lambda c: (
                c.execute(
                    "UPDATE circuit_state SET state='half_open', probe_lease_until=?, updated_at=? "
                    "WHERE service_name=? AND state IN ('open','half_open') AND (open_until IS NULL OR open_until<=?) "
                    "AND (probe_lease_until IS NULL OR probe_lease_until<=?)",
                    (lease, now, service, now, now),
                ).rowcount
            )
        )
        if won:
            self.cache.bump()
            if state == CircuitState.OPEN:  # record the transition once, not on every lease renewal
                self._event(
                    service,
                    "probe",
                    CircuitState.OPEN,
                    CircuitState.HALF_OPEN,
                    "auto",
                    "open timeout passed: one probe call let through",
                )
            return Ticket(service, probe=True, had_failures=True)
        raise open_error(
            service, "half-open and its probe call is in flight", reason, now + self.settings.probe_lease_seconds, now
        )

    def _expire(self, service: str, now: float) -> Ticket:
        """A forced-open period ended: half-open, and only the process whose UPDATE wins probes.

        The vendor was down for maintenance or an incident; letting every waiting process
        through at once would hit it with the whole backlog before one call proved it is back.
        """
        lease = now + self.settings.probe_lease_seconds
        with self.db.write() as c:
            won = c.execute(
                "UPDATE circuit_state SET state='half_open', open_until=NULL, forced_until=NULL, probe_lease_until=?, "
                "consecutive_failures=0, updated_by='auto', updated_at=? "
                "WHERE service_name=? AND state='forced_open' AND forced_until IS NOT NULL AND forced_until<=?",
                (lease, now, service, now),
            ).rowcount
            if won:
                self._event(
                    service,
                    "expire",
                    CircuitState.FORCED_OPEN,
                    CircuitState.HALF_OPEN,
                    "auto",
                    "forced-open period ended: one probe call let through",
                    conn=c,
                )
        self.cache.bump()
        if won:
            return Ticket(service, probe=True, had_failures=True)
        raise CircuitOpenError(
            f"circuit for {service} is half-open and its probe is in flight",
            service=service,
            retry_after_seconds=self.settings.probe_lease_seconds,
        )

    def record_success(self, ticket: Ticket) -> None:
        if ticket.bypass or not ticket.had_failures:
            return
        now = self.clock.time()
        if ticket.probe:
            if self.db.run(
                lambda c: (
                    c.execute(
                        "UPDATE circuit_state SET state='closed', consecutive_failures=0, probe_lease_until=NULL, "
                        "open_until=NULL, reason=NULL, "
                        "window_start=NULL, window_calls=0, window_failures=0, updated_at=? WHERE service_name=? "
                        "AND state='half_open'",
                        (now, ticket.service),
                    ).rowcount
                )
            ):
                self.cache.bump()
                self._event(
                    ticket.service, "close", CircuitState.HALF_OPEN, CircuitState.CLOSED, "auto", "probe succeeded"
                )
            return
        if self.settings.failure_rate_threshold is None:
            if self.db.run(
                lambda c: (
                    c.execute(
                        "UPDATE circuit_state SET consecutive_failures=0, updated_at=? WHERE service_name=? AND "
                        "consecutive_failures>0",
                        (now, ticket.service),
                    ).rowcount
                )
            ):
                self.cache.bump()
        else:
            self._count_in_window(ticket.service, failed=False, now=now)

    def record_failure(self, ticket: Ticket, cause: str | None = None) -> None:
        """Count a failure; ``cause`` (``code: message``, redacted) becomes the reason if it opens the circuit."""
        if ticket.bypass:
            return
        now = self.clock.time()
        if ticket.probe:
            if self.db.run(
                lambda c: (
                    c.execute(
                        "UPDATE circuit_state SET state='open', opened_at=?, open_until=?, probe_lease_until=NULL, "
                        "reason=?, updated_at=? "
                        "WHERE service_name=? AND state='half_open'",
                        (now, now + self.settings.timeout_seconds, _cause("probe failed", cause), now, ticket.service),
                    ).rowcount
                )
            ):
                self.cache.bump()
                self._event(ticket.service, "reopen", CircuitState.HALF_OPEN, CircuitState.OPEN, "auto", "probe failed")
            return
        with self.db.write() as c:
            failures, state = c.execute(
                "INSERT INTO circuit_state (service_name, state, consecutive_failures, updated_at) VALUES (?, "
                "'closed', 1, ?) "
                "ON CONFLICT(service_name) DO UPDATE SET consecutive_failures=circuit_state.consecutive_failures+1, "
                "updated_at=excluded.updated_at "
                "RETURNING consecutive_failures, state",
                (ticket.service, now),
            ).fetchone()
            trip = state == CircuitState.CLOSED and failures >= self.settings.failure_threshold
            why = f"{failures} consecutive failures"
            if not trip and self.settings.failure_rate_threshold is not None:
                trip, why = self._count_in_window(ticket.service, failed=True, now=now, conn=c)
            if trip:
                why = _cause(why, cause)
                c.execute(
                    "UPDATE circuit_state SET state='open', opened_at=?, open_until=?, probe_lease_until=NULL, "
                    "reason=? WHERE service_name=? AND state='closed'",
                    (now, now + self.settings.timeout_seconds, why, ticket.service),
                )
                self._event(ticket.service, "open", CircuitState.CLOSED, CircuitState.OPEN, "auto", why, conn=c)
        self.cache.bump()

    def _count_in_window(self, service: str, *, failed: bool, now: float, conn: Any = None) -> tuple[bool, str]:
        s = self.settings
        sql = (
            "INSERT INTO circuit_state AS c (service_name, state, window_start, window_calls, window_failures, "
            "updated_at) VALUES (?, 'closed', ?, 1, ?, ?) "
            "ON CONFLICT(service_name) DO UPDATE SET "
            "window_calls = CASE WHEN c.window_start IS NULL OR c.window_start <= ? THEN 1 ELSE c.window_calls + 1 "
            "END, "
            "window_failures = CASE WHEN c.window_start IS NULL OR c.window_start <= ? THEN excluded.window_failures "
            "ELSE c.window_failures + excluded.window_failures END, "
            "window_start = CASE WHEN c.window_start IS NULL OR c.window_start <= ? THEN excluded.window_start ELSE "
            "c.window_start END, "
            "consecutive_failures = CASE WHEN excluded.window_failures = 0 THEN 0 ELSE c.consecutive_failures END "
            "RETURNING window_calls, window_failures"
        )
        expired = now - s.window_seconds
        params = (service, now, int(failed), now, expired, expired, expired)
        calls, failures = (
            conn.execute(sql, params) if conn else self.db.run(lambda c: c.execute(sql, params))
        ).fetchone()
        if failed and calls >= s.minimum_calls and failures / calls >= (s.failure_rate_threshold or 1.0):
            return True, f"failure rate {failures}/{calls} over {s.window_seconds:g} s"
        return False, ""

    # -- operator actions and inspection ------------------------------------------
    def state(self, service: str) -> CircuitBreakerState:
        row = self.db.run(
            lambda c: c.execute(f"SELECT {_COLUMNS} FROM circuit_state WHERE service_name=?", (service,)).fetchone()
        )
        if row is None:
            return CircuitBreakerState(service)
        return _to_state(row)

    def all_states(self) -> list[CircuitBreakerState]:
        rows = self.db.run(
            lambda c: c.execute(f"SELECT {_COLUMNS} FROM circuit_state ORDER BY service_name").fetchall()
        )
        return [_to_state(r) for r in rows]

    def events(self, service: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.db.run(
            lambda c: c.execute(
                "SELECT action, previous_state, new_state, actor, reason, created_at FROM circuit_events WHERE "
                "service_name=? ORDER BY id DESC LIMIT ?",
                (service, limit),
            ).fetchall()
        )
        keys = ("action", "previous_state", "new_state", "actor", "reason", "created_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def trip(
        self, service: str, *, reason: str | None = None, for_seconds: float | None = None, actor: str | None = None
    ) -> CircuitBreakerState:
        if (
            for_seconds is not None and not 0 < for_seconds <= MAX_TRIP_SECONDS
        ):  # nan/absurd: an expiry nothing can show
            raise InvalidInputError(
                f"a trip lasts more than 0 s and at most {MAX_TRIP_SECONDS // 86400} days, got {for_seconds!r}"
            )
        until = None if for_seconds is None else self.clock.time() + for_seconds
        return self._transition(
            service, CircuitState.FORCED_OPEN, "trip", actor or current_actor(), reason, forced_until=until
        )

    def reset(self, service: str, *, reason: str | None = None, actor: str | None = None) -> CircuitBreakerState:
        return self._transition(service, CircuitState.CLOSED, "reset", actor or current_actor(), reason)

    def disable(self, service: str, *, reason: str | None = None, actor: str | None = None) -> CircuitBreakerState:
        return self._transition(service, CircuitState.DISABLED, "disable", actor or current_actor(), reason)

    def enable(self, service: str, *, reason: str | None = None, actor: str | None = None) -> CircuitBreakerState:
        current = self.state(service)
        if current.state != CircuitState.DISABLED:
            raise InvalidInputError(f"circuit for {service} is {current.state.value}, not disabled")
        return self._transition(service, CircuitState.CLOSED, "enable", actor or current_actor(), reason)

    def _transition(
        self,
        service: str,
        new: CircuitState,
        action: str,
        actor: str,
        reason: str | None,
        *,
        forced_until: float | None = None,
    ) -> CircuitBreakerState:
        now = self.clock.time()
        with self.db.write() as c:
            row = c.execute("SELECT state FROM circuit_state WHERE service_name=?", (service,)).fetchone()
            previous = CircuitState(row[0]) if row else CircuitState.CLOSED
            c.execute(
                "INSERT INTO circuit_state (service_name, state, consecutive_failures, opened_at, open_until, "
                "probe_lease_until, forced_until, reason, updated_by, updated_at, window_start, window_calls, "
                "window_failures) "
                "VALUES (?, ?, 0, ?, NULL, NULL, ?, ?, ?, ?, NULL, 0, 0) "
                "ON CONFLICT(service_name) DO UPDATE SET state=excluded.state, consecutive_failures=0, "
                "opened_at=excluded.opened_at, open_until=NULL, "
                "probe_lease_until=NULL, forced_until=excluded.forced_until, reason=excluded.reason, "
                "updated_by=excluded.updated_by, updated_at=excluded.updated_at, "
                "window_start=NULL, window_calls=0, window_failures=0",
                (
                    service,
                    new.value,
                    now if new == CircuitState.FORCED_OPEN else None,
                    forced_until,
                    reason,
                    actor,
                    now,
                ),
            )
            self._event(service, action, previous, new, actor, reason, conn=c)
        self.cache.bump()
        return self.state(service)

    def _event(
        self,
        service: str,
        action: str,
        previous: CircuitState,
        new: CircuitState,
        actor: str,
        reason: str | None,
        conn: Any = None,
    ) -> None:
        sql = (
            "INSERT INTO circuit_events (service_name, action, previous_state, new_state, actor, reason, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        params = (service, action, previous.value, new.value, actor, reason, self.clock.time())
        if conn is not None:
            conn.execute(sql, params)
        else:
            self.db.run(lambda c: c.execute(sql, params))


MAX_CAUSE_CHARS = 300


def _cause(why: str, cause: str | None) -> str:
    """The reason an automatic opening records: the rule that fired and the last failure."""
    if not cause:
        return why
    last = cause if len(cause) <= MAX_CAUSE_CHARS else cause[: MAX_CAUSE_CHARS - 3] + "..."
    return f"{why}; last: {last}"


def open_error(service: str, state: str, reason: str | None, until: float | None, now: float) -> CircuitOpenError:
    """A circuit_open error that says why the circuit opened, when a call may pass again, and how to close it now."""
    from connectorctl.store.logs import iso_utc

    if until is None:
        when = "until an operator resets it"
    else:
        what = "a probe call is let through" if state != "forced open" else "it closes"
        when = f"{what} at {iso_utc(until)[:19].replace('T', ' ')} UTC (in {max(0.0, until - now):.0f} s)"
    because = f" ({reason})" if reason else ""
    return CircuitOpenError(
        f"circuit for {service} is {state}{because}; {when}",
        service=service,
        retry_after_seconds=None if until is None else max(0.0, until - now),
        hint=f"if {service} is back, close it now: connectorctl circuit reset {service}",
    )


def _to_state(row: tuple[Any, ...]) -> CircuitBreakerState:
    service, state, failures, opened_at, open_until, lease, forced_until, reason, updated_by, updated_at = row
    return CircuitBreakerState(
        service_name=service,
        state=CircuitState(state),
        consecutive_failures=failures or 0,
        opened_at=opened_at,
        open_until=forced_until if state == CircuitState.FORCED_OPEN else open_until,
        probe_lease_until=lease,
        reason=reason,
        updated_by=updated_by,
        updated_at=updated_at,
    )

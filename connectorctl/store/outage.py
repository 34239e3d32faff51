"""Refusing new sends while the state database is known to be down.

Once a write of the state failed (the log writer could not commit, or the
quota / circuit state could not be read), the next calls must not reach a
vendor: their quotas, circuits and audit rows cannot be kept.  So every
pipeline attempt first looks at the database's :class:`StateHealth`: while it
is down the call fails at once with ``state_unavailable``, and at most once a
second one caller probes the database by draining the audit spool into it;
when that works the database is up again and calls go through.

One health object per database and process, shared by every ``StateDB`` (and
so every ``Connector``) that opens it.  Between processes only the spool
speaks: a process that starts while rows for its database wait there (left by
one that exited before the database came back) probes before its first send;
otherwise each process finds out on its own first failed read or write.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

from connectorctl.errors import StateStoreError

if TYPE_CHECKING:
    from connectorctl.store.db import StateDB
    from connectorctl.store.spool import AuditSpool

PROBE_INTERVAL_SECONDS = 1.0


class StateHealth:
    """Up, or down since a failed write (``down`` holds that error); the pipeline reads ``down`` on every attempt."""

    def __init__(self) -> None:
        self.down: StateStoreError | None = None
        self.spool: AuditSpool | None = None  # set by the log writer: a probe drains it
        self.spooled = False  # rows may wait in the spool: the next successful commit drains it
        self._next_probe = 0.0
        self._probing = threading.Lock()

    def attach(self, spool: AuditSpool, label: str) -> None:
        """The log writer's spool.  Rows an earlier process left there for this database (the process exited
        before the database came back) mean it may still refuse writes: the first call probes before it sends."""
        known = self.spool is not None and self.spool.path == spool.path
        self.spool = spool
        if known or not spool.path.exists():
            return
        from connectorctl.store.spool import log_rows

        try:
            waiting = spool.count(label)
        except StateStoreError:
            return  # an unreadable spool is reported when a row has to go there
        if waiting and self.down is None:
            self.spooled = True
            self.down = StateStoreError(
                f"database {label} has not taken the {log_rows(waiting)} waiting in the audit spool {spool.path}",
                hint="`connectorctl db check` says why",
            )
            self._next_probe = 0.0

    def mark_down(self, exc: StateStoreError) -> bool:
        """Record a failed write; True if the database was up until now (the moment to tell the operator)."""
        was_up = self.down is None
        if was_up:
            self._next_probe = time.monotonic() + PROBE_INTERVAL_SECONDS
        self.down = exc
        return was_up

    def check(self, db: StateDB) -> None:
        """Raise ``state_unavailable`` while the database is down, unless this caller's probe finds it back."""
        exc = self.down
        if exc is None:
            return
        if time.monotonic() >= self._next_probe and self._probing.acquire(blocking=False):
            try:
                self.recover(db)
                return
            except StateStoreError as again:
                exc = self.down = again
            finally:
                self._next_probe = time.monotonic() + PROBE_INTERVAL_SECONDS
                self._probing.release()
        raise StateStoreError(exc.message, hint=exc.hint)

    def recover(self, db: StateDB) -> int:
        """Drain the spool into the database (an empty write transaction if it was down and the spool is empty);
        the rows moved.

        Raises StateStoreError when the database still refuses.
        """
        spooled, self.spooled = self.spooled, False  # before the drain: a row spooled meanwhile sets it again
        try:
            moved = self.spool.drain(db) if self.spool is not None else 0
            if not moved and self.down is not None:
                with db.write():  # a write lock, not a read: a locked or read-only SQLite file still answers reads
                    pass
        except StateStoreError:
            self.spooled = self.spooled or spooled
            raise
        self.down = None
        return moved

    def _after_fork(self) -> None:
        self._probing = threading.Lock()  # a thread that held it at the fork does not exist in the child


_HEALTH: dict[str, StateHealth] = {}
_LOCK = threading.Lock()


def health_of(label: str) -> StateHealth:
    """The process's health object for the database called ``label``."""
    health = _HEALTH.get(label)
    if health is None:
        with _LOCK:
            health = _HEALTH.setdefault(label, StateHealth())
    return health


def _reset_after_fork() -> None:
    global _LOCK
    _LOCK = threading.Lock()
    for health in _HEALTH.values():
        health._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)

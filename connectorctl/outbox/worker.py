"""Workers: drain the outbox through the normal gateway (chain, pipeline, log), a few claimed messages at a time.

Per message the outcome decides the next state:

* accepted -> ``sent`` with the vendor's id;
* an open circuit or a spent quota -> wait until the circuit lets a probe
  through or the quota refills, *without* counting an attempt, and every other
  message of that vendor chain waits with it (so workers sleep, not spin);
* a transient failure -> ``retrying`` with exponential backoff (``outbox.*``
  settings) until the message is ``outbox.max_age_hours`` old, then ``dead``;
* a permanent refusal (validation, auth, a refused recipient, a suppressed
  address) -> ``dead`` with its error, for an operator to redrive;
* a send that may have reached the vendor (an uncertain SMS, a 500 or timeout)
  -> asked about before any resend (:mod:`connectorctl.outbox.resolve`).

``stop`` (set on SIGTERM) makes each thread finish the message it holds and
exit; nothing is left claimed.  While a worker lives it renews its leases every
quarter lease, so a lease runs out only when its worker died (or stalled for a
whole lease): then another worker asks the vendor before sending again.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connectorctl.domain.messages import DeliveryStatus
from connectorctl.domain.values import CircuitState
from connectorctl.errors import CircuitOpenError, ConnectorctlError, ConnectorError, RateLimitedError
from connectorctl.ids import new_ulid
from connectorctl.outbox.codec import decode
from connectorctl.outbox.resolve import resolve
from connectorctl.outbox.store import OutboxMessage, OutboxStatus, OutboxStore

if TYPE_CHECKING:
    from connectorctl.gateway import Connector

log = logging.getLogger("connectorctl.outbox")
MIN_WAIT_SECONDS = 0.05
CLAIM_BATCH = 4  # messages a thread claims in one transaction (fewer write locks when several processes share the file)
OUTCOMES = ("sent", "retrying", "waiting", "dead", "uncertain", "lost_lease")


@dataclass
class WorkReport:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    stopped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"stopped_by_signal": self.stopped, **self.counts}


class OutboxWorker:
    def __init__(self, connector: "Connector", *, concurrency: int = 1, stop: threading.Event | None = None) -> None:
        self.connector = connector
        self.store = OutboxStore(connector.db, connector.clock)
        self.settings = connector.settings.outbox
        self.concurrency = max(1, concurrency)
        self.stop = stop or threading.Event()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_ulid()[-8:]}"
        self.report = WorkReport()
        self._lock = threading.Lock()
        self._rng = random.Random()

    def run(self, *, once: bool = False) -> WorkReport:
        """Work until ``stop`` is set; with ``once``, only what is due when the run starts (for cron)."""
        due_by = self.connector.clock.time() if once else None
        threads = [
            threading.Thread(target=self._loop, args=(due_by,), name=f"outbox-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        renewed = self.connector.clock.time()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.05)  # short joins keep the main thread free to run a signal handler
                if self.connector.clock.time() - renewed >= self.settings.lease_seconds / 4:
                    renewed = self.connector.clock.time()
                    self.store.renew(self.owner, self.settings.lease_seconds)
        self.report.stopped = self.stop.is_set()
        return self.report

    def _loop(self, due_by: float | None) -> None:
        while not self.stop.is_set():
            claimed = self.store.claim(
                self.owner, lease_seconds=self.settings.lease_seconds, limit=CLAIM_BATCH, due_by=due_by
            )
            if not claimed:
                if due_by is not None:
                    return
                self._idle()
                continue
            for message in claimed:
                if self.stop.is_set():  # stopping: what this thread has not started goes back untouched
                    self.store.release(message, self.owner)
                    continue
                try:
                    self.deliver(message)
                except Exception:  # noqa: BLE001 - one broken message must not stop the worker
                    log.exception("outbox message %s: unexpected error", message.id)
                    self._count(
                        "retrying",
                        self.store.reschedule(
                            message,
                            self.owner,
                            self.connector.clock.time() + self._backoff(message.attempts + 1),
                            attempted=True,
                            check_first=True,
                            error_code="internal_error",
                            error="unexpected error in the worker (see its log)",
                        ),
                    )

    def _idle(self) -> None:
        """Sleep until the next message is due (at most ``poll_seconds``): an idle worker costs nothing."""
        due = self.store.next_due()
        wait = self.settings.poll_seconds if due is None else due - self.connector.clock.time()
        self.stop.wait(min(max(wait, MIN_WAIT_SECONDS), self.settings.poll_seconds))

    # -- one message ----------------------------------------------------------------------
    def deliver(self, message: OutboxMessage) -> None:
        channel_gateway = self.connector.email if message.channel == "email" else self.connector.sms
        gateway = channel_gateway(message.vendors, tenant_id=message.tenant_id)
        payload: Any = decode(message.channel, message.payload)  # the channel's message type, as its gateway takes
        if message.check_first:
            try:
                found = resolve(gateway, payload, key=message.id, since=message.created_at)
            except ConnectorError as exc:  # the vendor's search is down too: ask again later
                return self._failed(message, exc, check_first=True)
            if found.sent:
                return self._count(
                    "sent",
                    self.store.mark_sent(
                        message, self.owner, found.vendor, found.message_id, attempted=False, note=found.reason
                    ),
                )
            if found.sent is None:
                return self._count(
                    "uncertain",
                    self.store.settle(
                        message,
                        self.owner,
                        OutboxStatus.UNCERTAIN,
                        attempted=False,
                        error_code="uncertain",
                        error=found.reason,
                        vendor=found.vendor,
                    ),
                )
        try:
            result = gateway.send(payload, correlation_id=message.id)
        except (CircuitOpenError, RateLimitedError) as exc:
            return self._wait(message, exc)
        except ConnectorError as exc:
            if exc.transient:
                from connectorctl.gateway import may_have_delivered

                return self._failed(message, exc, check_first=may_have_delivered(exc))
            return self._dead(message, exc.code, exc.message)
        except ConnectorctlError as exc:  # a suppressed address, a broken config
            return self._dead(message, exc.code, exc.message)
        if result.ok:
            return self._count("sent", self.store.mark_sent(message, self.owner, result.vendor, result.message_id))
        refused = result.failed[0]
        if refused.status is DeliveryStatus.UNCERTAIN:  # e.g. an SMS timeout: ask the vendor before any resend
            at = self.connector.clock.time() + self.settings.check_delay_seconds
            return self._count(
                "retrying",
                self.store.reschedule(
                    message,
                    self.owner,
                    at,
                    attempted=True,
                    check_first=True,
                    error_code="uncertain",
                    error=refused.reason,
                ),
            )
        return self._dead(
            message, refused.status.value, refused.reason or f"{result.vendor} refused {refused.recipient}"
        )

    def _wait(self, message: OutboxMessage, exc: ConnectorError) -> None:
        """The vendor never saw it: wait for the circuit's probe time or the quota's refill, attempts untouched."""
        wait = self._circuit_wait(exc) if isinstance(exc, CircuitOpenError) and exc.service else exc.retry_after_seconds
        until = self.connector.clock.time() + max(wait or self.settings.poll_seconds, MIN_WAIT_SECONDS)
        self._count(
            "waiting",
            self.store.reschedule(
                message,
                self.owner,
                until,
                attempted=False,
                check_first=message.check_first,
                error_code=exc.code,
                error=exc.message,
            ),
        )
        self.store.hold_route(message.channel, message.vendors, until)

    def _circuit_wait(self, exc: ConnectorError) -> float | None:
        """Until the circuit lets a probe through, read now: a probe in flight settles in a moment (one poll),
        a forced-open circuit until its expiry (or one poll when it has none)."""
        circuit = self.connector.pipeline.breaker.state(str(exc.service))
        if circuit.state is CircuitState.FORCED_OPEN:
            return exc.retry_after_seconds
        if circuit.state is CircuitState.OPEN and circuit.open_until is not None:
            return circuit.open_until - self.connector.clock.time()
        return None

    def _failed(self, message: OutboxMessage, exc: ConnectorError, *, check_first: bool) -> None:
        now = self.connector.clock.time()
        if now - message.queued_at >= self.settings.max_age_hours * 3600:
            return self._dead(
                message,
                exc.code,
                f"{exc.message} (still failing {self.settings.max_age_hours:g} h after it was queued)",
                check_first=check_first,
            )
        at = now + self._backoff(message.attempts + 1)
        self._count(
            "retrying",
            self.store.reschedule(
                message, self.owner, at, attempted=True, check_first=check_first, error_code=exc.code, error=exc.message
            ),
        )

    def _dead(self, message: OutboxMessage, code: str, error: str, *, check_first: bool = False) -> None:
        self._count(
            "dead",
            self.store.settle(
                message,
                self.owner,
                OutboxStatus.DEAD,
                attempted=True,
                error_code=code,
                error=error,
                check_first=check_first,
            ),
        )

    def _backoff(self, attempt: int) -> float:
        """Doubling from ``backoff_initial_seconds`` up to ``backoff_max_seconds``, with equal jitter."""
        delay = min(
            self.settings.backoff_initial_seconds * 2 ** min(attempt - 1, 30), self.settings.backoff_max_seconds
        )
        return self._rng.uniform(delay / 2, delay)

    def _count(self, outcome: str, applied: bool) -> None:
        with self._lock:
            self.report.counts[outcome if applied else "lost_lease"] += 1

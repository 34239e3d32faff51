"""Send one message per recipient row with bounded concurrency, resumably.

Each row goes through the gateway (so failover, limits, circuits and the log
apply per recipient).  Where the first vendor has a batch API, rows go in
chunks of its documented maximum, one request per chunk, each row still with
its own result.  One failed row never stops the others.  Rows the
journal says were accepted in an earlier run are skipped; rows whose earlier
call may have been in flight are reported ``uncertain`` and only re-sent on
request.  A rate-limit refusal that outlived the pipeline's own waiting makes
the worker wait ``retry_after`` and try the row again (the vendor did not
process it), so a batch slows down to the quota instead of failing rows.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from connectorctl.bulk.journal import DONE, FAILED, UNCERTAIN, BatchJournal, Outcome
from connectorctl.bulk.recipients import Row
from connectorctl.domain.messages import DeliveryStatus
from connectorctl.errors import ConnectorctlError, RateLimitedError
from connectorctl.resilience.pipeline import new_id

if TYPE_CHECKING:
    from connectorctl.outbox.resolve import Resolution

FLUSH_SECONDS = 0.25
RATE_LIMIT_REQUEUES = 5
STATUSES = ("accepted", "failed", "skipped", "uncertain", "duplicate")


@dataclass
class BulkReport:
    batch_id: str
    channel: str
    results: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    elapsed_seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for r in self.results:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        return counts

    @property
    def ok(self) -> bool:
        c = self.counts
        return not self.interrupted and c["failed"] == 0 and c["uncertain"] == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "channel": self.channel,
            "ok": self.ok,
            "interrupted": self.interrupted,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "summary": self.counts,
            "results": sorted(self.results, key=lambda r: r["row"]),
        }


def _result(row: Row, key: str, status: str, **extra: Any) -> dict[str, Any]:
    base = {
        "row": row.number,
        "recipient": key or row.address,
        "status": status,
        "vendor": None,
        "message_id": None,
        "correlation_id": None,
        "error_code": None,
        "error": None,
    }
    base.update(extra)
    return base


class BulkRunner:
    def __init__(
        self,
        gateway: Any,
        journal: BatchJournal,
        *,
        concurrency: int,
        sleep: Callable[[float], None] = time.sleep,
        resend_uncertain: bool = False,
        progress: Callable[[dict[str, Any]], None] | None = None,
        ask: Callable[[Row, str, str], Resolution] | None = None,
    ) -> None:
        """``ask(row, recipient, correlation_id)`` settles a row an earlier run left uncertain with the vendor."""
        self.gateway = gateway
        self.journal = journal
        self.concurrency = max(1, concurrency)
        self.sleep = sleep
        self.resend_uncertain = resend_uncertain
        self.ask = ask
        self.progress = progress or (lambda r: None)

    def plan(
        self, rows: Sequence[Row], normalize: Callable[[str], str]
    ) -> tuple[list[tuple[Row, str]], list[dict[str, Any]]]:
        """Split rows into (to send) and (already decided: invalid, duplicate, accepted before, uncertain)."""
        states = self.journal.states()
        todo: list[tuple[Row, str]] = []
        decided: list[dict[str, Any]] = []
        seen: set[str] = set()
        for row in rows:
            try:
                key = normalize(row.address)
            except ConnectorctlError as exc:
                decided.append(_result(row, row.address, "failed", error_code=exc.code, error=exc.message))
                continue
            if key in seen:
                decided.append(_result(row, key, "duplicate", error="same recipient earlier in the file; sent once"))
                continue
            seen.add(key)
            state, cid = states.get(key, (None, None))
            if state == DONE:
                decided.append(_result(row, key, "skipped", correlation_id=cid, error="accepted in an earlier run"))
            elif state == UNCERTAIN:
                settled = self.ask(row, key, cid) if self.ask is not None and cid else None
                if settled is not None and settled.sent:
                    self.journal.record(Outcome(key, DONE, settled.vendor, settled.message_id, cid))
                    decided.append(
                        _result(
                            row,
                            key,
                            "skipped",
                            vendor=settled.vendor,
                            message_id=settled.message_id,
                            correlation_id=cid,
                            error=f"delivered in an earlier run ({settled.reason})",
                        )
                    )
                elif (settled is not None and settled.sent is False) or self.resend_uncertain:
                    todo.append((row, key))
                else:
                    why = settled.reason if settled is not None else "an earlier run stopped during this call"
                    decided.append(
                        _result(
                            row,
                            key,
                            "uncertain",
                            correlation_id=cid,
                            error_code="uncertain",
                            error=f"{why}; re-run with --resend-uncertain after checking",
                        )
                    )
            else:
                todo.append((row, key))
        return todo, decided

    def send_one(self, row: Row, key: str, build: Callable[[Row, str], Any]) -> dict[str, Any]:
        try:
            message = build(row, key)
        except ConnectorctlError as exc:
            self.journal.record(Outcome(key, FAILED, error_code=exc.code, error_message=exc.message))
            return _result(row, key, "failed", error_code=exc.code, error=exc.message)
        correlation_id = new_id()
        self.journal.mark_pending(key, row.number, correlation_id)
        for requeue in range(RATE_LIMIT_REQUEUES + 1):
            try:
                result = self.gateway.send(message, correlation_id=correlation_id)
                break
            except RateLimitedError as exc:
                if requeue == RATE_LIMIT_REQUEUES:
                    return self._outcome(row, key, correlation_id, exc)
                self._wait(exc)
            except ConnectorctlError as exc:
                return self._outcome(row, key, correlation_id, exc)
        return self._outcome(row, key, correlation_id, result)

    def send_chunk(self, items: Sequence[tuple[Row, str]], build: Callable[[Row, str], Any]) -> list[dict[str, Any]]:
        """Rows that go to the vendor's batch API together: one correlation id, one result per row."""
        if len(items) == 1:
            return [self.send_one(items[0][0], items[0][1], build)]
        done: list[dict[str, Any]] = []
        ready: list[tuple[Row, str, Any]] = []
        for row, key in items:
            try:
                ready.append((row, key, build(row, key)))
            except ConnectorctlError as exc:
                self.journal.record(Outcome(key, FAILED, error_code=exc.code, error_message=exc.message))
                done.append(_result(row, key, "failed", error_code=exc.code, error=exc.message))
        correlation_id = new_id()
        for row, key, _ in ready:
            self.journal.mark_pending(key, row.number, correlation_id)
        for requeue in range(RATE_LIMIT_REQUEUES + 1):
            outcomes = self.gateway.send_bulk([m for _, _, m in ready], concurrency=1, correlation_id=correlation_id)
            limited = [
                (item, o)
                for item, o in zip(ready, outcomes, strict=True)
                if isinstance(o, RateLimitedError) and requeue < RATE_LIMIT_REQUEUES
            ]
            done += [
                self._outcome(row, key, correlation_id, o)
                for (row, key, _), o in zip(ready, outcomes, strict=True)
                if not (isinstance(o, RateLimitedError) and requeue < RATE_LIMIT_REQUEUES)
            ]
            if not limited:
                break
            self._wait(max((o for _, o in limited), key=lambda e: e.retry_after_seconds or 0))
            ready = [item for item, _ in limited]
        return done

    def _wait(self, exc: RateLimitedError) -> None:
        """The vendor did not take a rate-limited request: wait its ``retry_after`` and send again."""
        self.sleep(min(max(exc.retry_after_seconds or 1.0, 0.05), 60.0))

    def _outcome(self, row: Row, key: str, correlation_id: str, outcome: Any) -> dict[str, Any]:
        """Journal one row's outcome (a SendResult or an error) and describe it."""
        if isinstance(outcome, ConnectorctlError):
            self.journal.record(
                Outcome(
                    key, FAILED, getattr(outcome, "service", None), None, correlation_id, outcome.code, outcome.message
                )
            )
            return _result(
                row,
                key,
                "failed",
                vendor=getattr(outcome, "service", None),
                correlation_id=correlation_id,
                error_code=outcome.code,
                error=outcome.message,
            )
        result = outcome
        if result.ok:
            self.journal.record(Outcome(key, DONE, result.vendor, result.message_id, correlation_id))
            return _result(
                row, key, "accepted", vendor=result.vendor, message_id=result.message_id, correlation_id=correlation_id
            )
        refused = result.failed[0]
        reason = refused.reason or refused.status.value
        uncertain = refused.status is DeliveryStatus.UNCERTAIN  # the vendor may have it: a re-run must not resend it
        self.journal.record(
            Outcome(
                key,
                UNCERTAIN if uncertain else FAILED,
                result.vendor,
                result.message_id,
                correlation_id,
                refused.status.value,
                reason,
            )
        )
        return _result(
            row,
            key,
            "uncertain" if uncertain else "failed",
            vendor=result.vendor,
            correlation_id=correlation_id,
            error_code=refused.status.value,
            error=reason,
        )

    def run(
        self, rows: Sequence[Row], normalize: Callable[[str], str], build: Callable[[Row, str], Any], report: BulkReport
    ) -> BulkReport:
        """``concurrency`` worker threads pull rows from one queue; this thread only flushes the journal.

        Workers (not futures) keep the per-row overhead to a lock and a list
        append, which matters when the vendor answers in a few milliseconds.
        """
        started = time.perf_counter()
        todo, decided = self.plan(rows, normalize)
        for r in decided:
            report.results.append(r)
            self.progress(r)
        size = max(1, self.gateway.batch_limit() if hasattr(self.gateway, "batch_limit") else 1)
        chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
        queue = iter(chunks)
        lock = threading.Lock()
        stop = threading.Event()
        finished = threading.Event()
        alive = [min(self.concurrency, len(chunks))]

        def worker() -> None:
            try:
                while not stop.is_set():
                    with lock:
                        item = next(queue, None)
                    if item is None:
                        return
                    results = self.send_chunk(item, build)
                    with lock:
                        for r in results:
                            report.results.append(r)
                            self.progress(r)
            finally:
                with lock:
                    alive[0] -= 1
                    if alive[0] <= 0:
                        finished.set()

        threads = [threading.Thread(target=worker, name=f"bulk-{n}", daemon=True) for n in range(alive[0])]
        if not threads:
            finished.set()
        for t in threads:
            t.start()
        try:
            while not finished.wait(FLUSH_SECONDS):
                self.journal.flush()
        except KeyboardInterrupt:
            report.interrupted = True
            stop.set()  # workers finish the call they are in (never abandon a send mid-way), then stop
            for t in threads:
                t.join()
        finally:
            self.journal.flush()
            report.elapsed_seconds = time.perf_counter() - started
        return report

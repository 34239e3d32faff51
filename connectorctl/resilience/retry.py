"""Retry policy on top of tenacity: what is retried, how long we wait, when we stop.

Only transient failures are retried (connect errors, timeouts, 429, 502/503/504).
A non-idempotent call (an SMS, a payment) is retried only with an idempotency
key or when the failure proves the vendor never processed it.  A 500 leaves
unknown whether the vendor acted, so it is retried only for a call carrying an
idempotency key the vendor honours: the vendor then acts at most once per key
(Stripe and PayPal replay the first outcome), which is why Stripe asks for
exactly that retry.  ``Retry-After``
is a floor for the wait, and a wait that would overrun the total time budget
ends the retries instead of sleeping past it.
"""

from __future__ import annotations

import random
from typing import Any, Callable, TypeVar

import tenacity

from connectorctl.errors import ConnectorError, LocalRateLimitedError, VendorUnavailableError
from connectorctl.resilience.clock import Clock
from connectorctl.settings import RetrySettings

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({502, 503, 504})
KEYED_RETRYABLE_STATUS = RETRYABLE_STATUS | {500}


def is_retryable(exc: BaseException, *, idempotent: bool, keyed: bool = False) -> bool:
    """``keyed``: the call carries an idempotency key the vendor honours (which also makes it idempotent)."""
    if not isinstance(exc, ConnectorError) or not exc.transient:
        return False
    if isinstance(exc, LocalRateLimitedError):
        return False  # the limiter already waited as long as it was allowed to
    if isinstance(exc, VendorUnavailableError) and exc.http_status not in (
        KEYED_RETRYABLE_STATUS if keyed else RETRYABLE_STATUS
    ):
        return False
    return idempotent or keyed or exc.vendor_processed is False


class RetryRunner:
    """Builds one tenacity ``Retrying`` per call shape and runs attempts through it."""

    def __init__(self, policy: RetrySettings, clock: Clock, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.clock = clock
        self.rng = rng or random.Random()
        self._runners = {
            (idempotent, keyed): self._build(idempotent, keyed)
            for idempotent in (True, False)
            for keyed in (True, False)
        }

    def backoff_seconds(self, retry_number: int) -> float:
        p = self.policy
        delay = min(p.initial_delay_ms * p.multiplier ** (retry_number - 1), p.max_delay_ms) / 1000
        if p.jitter:
            delay = self.rng.uniform(delay / 2, delay)  # "equal jitter": never below half the backoff
        return delay

    def _wait(self, state: tenacity.RetryCallState) -> float:
        delay = self.backoff_seconds(state.attempt_number)
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after_seconds", None)
        if retry_after is not None:
            delay = max(delay, float(retry_after))
        return delay

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= self.policy.max_attempts:
            return True
        call = state.fn
        assert isinstance(call, _Call)  # _build wraps every attempt function in one
        elapsed = self.clock.monotonic() - call.started
        return elapsed + (state.upcoming_sleep or 0.0) > self.policy.total_budget_ms / 1000

    def _build(self, idempotent: bool, keyed: bool) -> tenacity.Retrying:
        return tenacity.Retrying(
            stop=self._stop,
            wait=self._wait,
            retry=tenacity.retry_if_exception(lambda e: is_retryable(e, idempotent=idempotent, keyed=keyed)),
            sleep=self.clock.sleep,
            reraise=True,
        )

    def retries(self, exc: ConnectorError, *, idempotent: bool, keyed: bool = False) -> bool:
        """Whether a first attempt that failed with ``exc`` is worth handing to :meth:`resume`."""
        return self.policy.max_attempts > 1 and is_retryable(exc, idempotent=idempotent, keyed=keyed)

    def run(self, fn: Callable[[], T], *, idempotent: bool, keyed: bool = False) -> T:
        """Call ``fn``; on a retryable failure let tenacity take over (see :meth:`resume`)."""
        started = self.clock.monotonic()
        try:
            return fn()
        except ConnectorError as exc:
            if not self.retries(exc, idempotent=idempotent, keyed=keyed):
                raise
            first = exc
        return self.resume(first, fn, started, idempotent=idempotent, keyed=keyed)

    def resume(
        self, first: ConnectorError, fn: Callable[[], T], started: float, *, idempotent: bool, keyed: bool = False
    ) -> T:
        """Retry ``fn`` after its first attempt (begun at ``started``, on our monotonic clock) failed with ``first``.

        The first attempt runs outside tenacity so the common success path costs
        nothing; its failure is replayed into tenacity as attempt 1, so waits,
        stops and attempt numbers are exactly tenacity's.
        """
        replayed = False
        maybe_acted = None if first.vendor_processed is False else first

        def resumed() -> T:
            nonlocal replayed, maybe_acted
            if not replayed:
                replayed = True
                raise first
            try:
                return fn()
            except ConnectorError as exc:
                maybe_acted = maybe_acted or (None if exc.vendor_processed is False else exc)
                raise

        try:
            return self._runners[idempotent, keyed](_Call(resumed, started))
        except ConnectorError as last:
            # A last attempt refused untouched (503, circuit open) must not hide an earlier one the vendor may
            # have acted on: the caller would otherwise send the request again elsewhere.
            if maybe_acted is not None and last.vendor_processed is False:
                raise maybe_acted from last
            raise


class _Call:
    """The attempt function plus when the call began, on our injectable clock
    (tenacity's own start time always reads the real monotonic clock)."""

    __slots__ = ("fn", "started")

    def __init__(self, fn: Callable[[], Any], started: float) -> None:
        self.fn = fn
        self.started = started

    def __call__(self) -> Any:
        return self.fn()


def retry_after_from_header(value: str | None, now: float) -> float | None:
    """Parse ``Retry-After`` (delta seconds or an HTTP date) into seconds from ``now``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)

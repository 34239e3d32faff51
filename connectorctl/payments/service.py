"""The payment gateway: every money operation is write-ahead, idempotent and reconcilable.

For each operation, in order: the caller's reference is checked against the
intent store (a settled reference replays its outcome, a reference used with
other parameters is refused, an uncertain one is first resolved with the
vendor); the intent is committed; the request is sent with the idempotency key
derived from the reference; the outcome is committed, or the intent is left
``uncertain`` when the vendor may have acted without us hearing back.  The
integration-log rows of a payment are committed before the call returns,
whatever the log writer mode.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from connectorctl.adapters.payment.base import PaymentAdapter
from connectorctl.domain.money import Money
from connectorctl.domain.payments import Payment, PaymentRequest, PaymentStatus
from connectorctl.errors import (
    CircuitOpenError,
    ConnectorctlError,
    ConnectorError,
    InvalidInputError,
    OutcomeUncertainError,
    PaymentDeclinedError,
    UnsupportedFeatureError,
)
from connectorctl.payments.records import PaymentRecords
from connectorctl.store.intents import Intent, IntentInProgressError, IntentState, IntentStore

if TYPE_CHECKING:
    from connectorctl.gateway import Connector

CHANNEL = "payment"
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
Operation = Callable[[PaymentAdapter[Any], Intent], Payment]  # sends under the intent's key


@dataclass(frozen=True)
class Reconciled:
    """What reconciliation did with one unsettled intent."""

    reference: str
    operation: str
    vendor: str
    before: str
    after: str
    payment_id: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "operation": self.operation,
            "vendor": self.vendor,
            "before": self.before,
            "after": self.after,
            "payment_id": self.payment_id,
            "note": self.note,
        }


def never_acted(exc: ConnectorError) -> bool:
    """The failure proves the vendor did not carry out the request (so it may be sent again, or elsewhere)."""
    if isinstance(exc, (CircuitOpenError, UnsupportedFeatureError)) or exc.vendor_processed is False:
        return True
    # A 4xx other than a decline or an in-flight conflict: refused before anything happened
    # (Stripe stores nothing for those).
    return exc.http_status is not None and 400 <= exc.http_status < 500 and exc.http_status not in (402, 409)


class PaymentService:
    """Implements :class:`~connectorctl.domain.roles.PaymentGateway` over the configured vendor chain."""

    def __init__(self, connector: "Connector", chain: Sequence[str], tenant_id: str | None = None) -> None:
        self.connector = connector
        self.chain = tuple(chain)
        self.tenant_id = tenant_id
        self.intents = IntentStore(connector.db, connector.clock)
        self.records = PaymentRecords(connector.db)
        for slug in self.chain:
            self._adapter(slug)  # fail fast on an unknown vendor

    # -- operations ------------------------------------------------------------------
    def charge(
        self,
        amount: Money,
        *,
        reference: str,
        capture: bool = True,
        payment_method: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Payment:
        """Authorize and capture (or only authorize) ``amount``; ``reference`` is your business key."""
        request = PaymentRequest(amount, reference, capture, payment_method, description, dict(metadata or {}))
        return self._perform(
            reference,
            "create",
            request.params(),
            None,
            lambda adapter, intent: adapter.create(request, key=intent.idempotency_key, tenant_id=self.tenant_id),
        )

    def capture(self, payment_id: str, amount: Money | int | None = None, *, reference: str | None = None) -> Payment:
        payment = self._known(payment_id)
        minor = self._minor(payment, amount)
        if payment.status is not PaymentStatus.AUTHORIZED and not reference:
            raise InvalidInputError(
                f"payment {payment_id} is {payment.status.value}, only an authorized payment can be captured"
            )
        return self._perform(
            reference or f"{payment.payment_id}:capture",
            "capture",
            {"payment_id": payment.payment_id, "amount": minor},
            payment,
            lambda adapter, intent: adapter.capture(
                payment, minor, key=intent.idempotency_key, tenant_id=self.tenant_id
            ),
        )

    def cancel(self, payment_id: str, *, reference: str | None = None) -> Payment:
        payment = self._known(payment_id)
        return self._perform(
            reference or f"{payment.payment_id}:cancel",
            "cancel",
            {"payment_id": payment.payment_id},
            payment,
            lambda adapter, intent: adapter.cancel(payment, key=intent.idempotency_key, tenant_id=self.tenant_id),
        )

    def refund(
        self,
        payment_id: str,
        amount: Money | int | None = None,
        *,
        reason: str | None = None,
        reference: str | None = None,
    ) -> Payment:
        """Refund all that is left, or part; each partial refund needs its own reference (one is numbered for you)."""
        if reason is not None and reason not in REFUND_REASONS:
            raise InvalidInputError(f"refund reason must be one of {', '.join(REFUND_REASONS)}")
        payment = self._known(payment_id)
        minor = self._minor(payment, amount)
        params = {"payment_id": payment.payment_id, "amount": minor, "reason": reason}
        return self._perform(
            reference or self._next_refund_reference(payment, params),
            "refund",
            params,
            payment,
            lambda adapter, intent: adapter.refund(
                payment, minor, reason, reference=intent.reference, key=intent.idempotency_key, tenant_id=self.tenant_id
            ),
        )

    def retrieve(self, payment_id: str) -> Payment:
        """Ask the vendor for the payment now and record what it says."""
        known = self.records.get(payment_id)
        vendor = known.vendor if known else self.chain[0]
        try:
            fresh = self._adapter(vendor).retrieve(
                payment_id, reference=known.reference if known else None, tenant_id=self.tenant_id
            )
        finally:
            self.connector.flush()
        return self.records.record(fresh)

    def show(
        self, payment_id: str | None = None, *, reference: str | None = None
    ) -> tuple[Payment | None, Intent | None]:
        """What we know locally: the payment and the intent of the charge that created it."""
        payment = self.records.get(payment_id) if payment_id else self.records.by_reference(reference or "")
        intent = self.intents.get(CHANNEL, reference or (payment.reference if payment and payment.reference else ""))
        return payment, intent

    def list_payments(
        self, *, status: PaymentStatus | None = None, since: str | None = None, reference: str | None = None
    ) -> list[tuple[Payment, str]]:
        """Recorded payments, newest first; ``reference`` matches our references that start with it."""
        return self.records.list(status=status, since=since, reference_prefix=reference)

    def unresolved(self, *, since: str | None = None) -> list[Intent]:
        return self.intents.unresolved(CHANNEL, since=since)

    def reconcile(self, *, since: str | None = None) -> list[Reconciled]:
        """Ask the vendor about every unsettled intent and record the answer; running it again is harmless."""
        done = []
        try:
            for intent in self.unresolved(since=since):
                done.append(self._reconcile_one(intent))
        finally:
            self.connector.flush()
        return done

    # -- the write-ahead protocol ---------------------------------------------------------
    def _perform(
        self, reference: str, operation: str, params: Mapping[str, Any], payment: Payment | None, call: Operation
    ) -> Payment:
        vendor = payment.vendor if payment is not None else self.chain[0]
        intent = self.intents.begin(
            CHANNEL, reference, operation, vendor, params, lease_seconds=self._lease_seconds(vendor)
        )
        try:
            if not intent.new:
                settled = self._settled_or_claimed(intent, payment)
                if isinstance(settled, Payment):
                    return settled
                intent = settled
            return self._send(intent, payment, call)
        finally:
            self.connector.flush()  # payment attempts are committed before the call returns, whatever the writer mode

    def _settled_or_claimed(self, intent: Intent, payment: Payment | None) -> Payment | Intent:
        """Replay a settled intent; otherwise take it over, resolving an uncertain one with the vendor first."""
        if intent.state is IntentState.SUCCEEDED:
            return Payment.from_dict(intent.outcome or {}).replay()
        if intent.state is IntentState.FAILED and intent.error_code == PaymentDeclinedError.code:
            outcome = intent.outcome or {}
            raise PaymentDeclinedError(
                f"{intent.error_message} (recorded earlier for reference {intent.reference!r})",
                service=intent.vendor,
                decline_code=outcome.get("decline_code"),
                payment_id=outcome.get("payment_id"),
            )
        was_uncertain = intent.state is not IntentState.FAILED
        intent = self.intents.claim(intent, lease_seconds=self._lease_seconds(intent.vendor))
        if was_uncertain:
            found = self._ask_vendor(intent, payment)
            if found is not None:
                return self._settle_found(intent, found)
        return intent

    def _send(self, intent: Intent, payment: Payment | None, call: Operation) -> Payment:
        chain = (
            (intent.vendor,)
            if payment is not None
            else self.chain[self.chain.index(intent.vendor) :]
            if intent.vendor in self.chain
            else (intent.vendor,)
        )
        last: ConnectorError | None = None
        for slug in chain:
            if slug != intent.vendor:
                intent = self.intents.claim(
                    intent, vendor=slug, lease_seconds=self._lease_seconds(slug)
                )  # failover: same key
            adapter = self._adapter(slug)
            try:
                result = call(adapter, intent)
            except PaymentDeclinedError as exc:
                self._settle_declined(intent, exc)
                raise
            except ConnectorError as exc:
                if not never_acted(exc):
                    self.intents.settle(intent, IntentState.UNCERTAIN, error_code=exc.code, error_message=exc.message)
                    raise OutcomeUncertainError(
                        f"{slug}: the {intent.operation} for reference {intent.reference!r} may have gone through "
                        f"({exc.code}): its outcome is uncertain",
                        service=slug,
                        http_status=exc.http_status,
                        hint="it will not be done twice: run `connectorctl payments reconcile` "
                        "(or repeat the command) to settle it",
                    ) from exc
                intent = self.intents.settle(intent, IntentState.FAILED, error_code=exc.code, error_message=exc.message)
                last = exc
                if exc.transient or isinstance(exc, (CircuitOpenError, UnsupportedFeatureError)):
                    continue  # provably not taken: the next vendor may have it
                raise
            except ConnectorctlError as exc:  # refused before anything was sent (input, configuration, state)
                self.intents.settle(intent, IntentState.FAILED, error_code=exc.code, error_message=exc.message)
                raise
            except BaseException:
                self.intents.settle(
                    intent,
                    IntentState.UNCERTAIN,
                    error_code="interrupted",
                    error_message="interrupted while waiting for the vendor",
                )
                raise
            return self._settle_found(intent, result)
        assert last is not None
        raise last

    def _settle_found(self, intent: Intent, found: Payment) -> Payment:
        if found.status is PaymentStatus.FAILED and intent.operation == "create":
            stored = self.records.record(found)
            self.intents.settle(
                intent,
                IntentState.FAILED,
                outcome={"decline_code": found.decline_code, "payment_id": found.payment_id},
                vendor_id=found.payment_id,
                error_code=PaymentDeclinedError.code,
                error_message=f"{found.vendor}: declined ({found.decline_code})",
            )
            raise PaymentDeclinedError(
                f"{found.vendor}: declined ({found.decline_code})",
                service=found.vendor,
                decline_code=found.decline_code,
                payment_id=stored.payment_id,
            )
        stored = self.records.record(found)
        result = replace(stored, refund_id=found.refund_id, replayed=found.replayed)
        self.intents.settle(
            intent, IntentState.SUCCEEDED, outcome=result.to_dict(), vendor_id=found.refund_id or found.payment_id
        )
        return result

    def _settle_declined(self, intent: Intent, exc: PaymentDeclinedError) -> None:
        if exc.payment_id and intent.operation == "create":
            params = intent.params
            self.records.record(
                Payment(
                    intent.vendor,
                    exc.payment_id,
                    PaymentStatus.FAILED,
                    Money(int(params["amount"]), params["currency"]),
                    reference=intent.reference,
                    decline_code=exc.decline_code,
                )
            )
        self.intents.settle(
            intent,
            IntentState.FAILED,
            outcome={"decline_code": exc.decline_code, "payment_id": exc.payment_id},
            vendor_id=exc.payment_id,
            error_code=exc.code,
            error_message=exc.message,
        )

    def _ask_vendor(self, intent: Intent, payment: Payment | None) -> Payment | None:
        adapter = self._adapter(intent.vendor)
        if payment is None and intent.operation != "create":
            payment = self._known(str(intent.params["payment_id"]))
        return adapter.find(intent, payment)

    def _reconcile_one(self, intent: Intent) -> Reconciled:
        before = "uncertain" if intent.state is IntentState.UNCERTAIN else "abandoned"
        try:
            intent = self.intents.claim(intent, lease_seconds=self._lease_seconds(intent.vendor))
        except IntentInProgressError:  # another process took it over: that process settles it
            return Reconciled(
                intent.reference,
                intent.operation,
                intent.vendor,
                before,
                "skipped",
                note="taken over by another process",
            )
        try:
            found = self._ask_vendor(intent, None)
        except ConnectorError as exc:
            self.intents.settle(intent, IntentState.UNCERTAIN, error_code=exc.code, error_message=exc.message)
            return Reconciled(
                intent.reference,
                intent.operation,
                intent.vendor,
                before,
                "uncertain",
                note=f"vendor not reachable: {exc.code}",
            )
        if found is None:
            self.intents.settle(
                intent,
                IntentState.FAILED,
                error_code="not_received",
                error_message=f"{intent.vendor} never received the request; running the command again sends it",
            )
            return Reconciled(
                intent.reference, intent.operation, intent.vendor, before, "failed", note="never received by the vendor"
            )
        try:
            stored = self._settle_found(intent, found)
        except PaymentDeclinedError as exc:
            return Reconciled(
                intent.reference,
                intent.operation,
                intent.vendor,
                before,
                "failed",
                exc.payment_id,
                note=f"declined ({exc.decline_code})",
            )
        return Reconciled(
            intent.reference,
            intent.operation,
            intent.vendor,
            before,
            "succeeded",
            stored.payment_id,
            note=stored.status.value,
        )

    # -- helpers ---------------------------------------------------------------------------
    def _adapter(self, slug: str) -> PaymentAdapter[Any]:
        return self.connector.channel_adapter(slug, PaymentAdapter)

    def _known(self, payment_id: str) -> Payment:
        payment = self.records.get(payment_id)
        if payment is None:
            payment = self.retrieve(payment_id)
        return payment

    def _minor(self, payment: Payment, amount: Money | int | None) -> int | None:
        if amount is None:
            return None
        if isinstance(amount, Money):
            if amount.currency != payment.amount.currency:
                raise InvalidInputError(
                    f"payment {payment.payment_id} is in {payment.amount.currency}, not {amount.currency}"
                )
            amount = amount.amount
        if not 0 < amount <= payment.amount.amount:
            raise InvalidInputError(f"the amount must be above zero and at most {payment.amount}")
        return amount

    def _next_refund_reference(self, payment: Payment, params: Mapping[str, Any]) -> str:
        """``<payment id>:refund:<n>``; the same refund asked again reuses its reference, so it is never duplicated."""
        prefix = f"{payment.payment_id}:refund:"
        refunds = self.intents.list(CHANNEL, reference_prefix=prefix)
        for intent in refunds:
            resendable = intent.state is IntentState.FAILED and intent.error_code != PaymentDeclinedError.code
            if (not intent.settled or resendable) and dict(intent.params) == dict(params):
                return intent.reference  # unfinished or never received: finish that one
            if not intent.settled:
                raise InvalidInputError(
                    f"refund {intent.reference!r} of {payment.payment_id} is not settled yet",
                    hint="run `connectorctl payments reconcile` first, or pass --reference for a separate refund",
                )
        return f"{prefix}{len(refunds) + 1}"

    def _lease_seconds(self, vendor: str) -> float:
        """How long a sender may own an intent: the whole retry budget plus one more timeout."""
        return (
            self.connector.settings.retry_policy.total_budget_ms / 1000
            + self.connector.settings.vendor(vendor).timeout_seconds
            + 30
        )

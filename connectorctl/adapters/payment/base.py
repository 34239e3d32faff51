"""The payment channel base: runs every payment request; vendor modules only translate.

A vendor module says how to build each request (``build_<operation>``), how to
read the answer (``parse_payment``) and which error bodies are declines
(:class:`PaymentDeclinedError`: never retried, never counted against the
circuit); this base sends every request through the pipeline under the
idempotency key the caller derived from its reference, with one OAuth2 renewal
after a 401.  Deciding *whether* to send (intents, replays, failover,
reconciliation) is the payment service's job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import httpx

from connectorctl.adapters.base import OptionsT
from connectorctl.adapters.http import HttpAdapter, VendorRequest
from connectorctl.domain.payments import Payment, PaymentRequest
from connectorctl.domain.values import Credentials
from connectorctl.errors import ConnectorError

if TYPE_CHECKING:
    from connectorctl.store.intents import Intent

REFERENCE_METADATA_KEY = "connectorctl_reference"


class IdempotencyConflictError(ConnectorError):
    """The vendor refused an idempotency key: used with other parameters, or still in flight."""

    code = "idempotency_conflict"


class PaymentAdapter(HttpAdapter[OptionsT]):
    channel = "payment"

    # -- what a vendor module implements ------------------------------------------
    def build_create(self, request: PaymentRequest, key: str, creds: Credentials) -> VendorRequest:
        raise NotImplementedError

    def build_capture(self, payment: Payment, amount: int | None, key: str, creds: Credentials) -> VendorRequest:
        raise NotImplementedError

    def build_cancel(self, payment: Payment, key: str, creds: Credentials) -> VendorRequest:
        raise NotImplementedError

    def build_refund(
        self, payment: Payment, amount: int | None, reason: str | None, reference: str, key: str, creds: Credentials
    ) -> VendorRequest:
        raise NotImplementedError

    def build_retrieve(self, payment_id: str, creds: Credentials) -> VendorRequest:
        raise NotImplementedError

    def parse_payment(self, body: Any, reference: str | None = None) -> Payment:
        raise NotImplementedError

    def find(self, intent: "Intent", payment: Payment | None) -> Payment | None:
        """Reconciliation: what the vendor holds for an unsettled intent (None: it never got the request)."""
        raise NotImplementedError

    # -- what the service calls ---------------------------------------------------
    def create(
        self, request: PaymentRequest, *, key: str, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> Payment:
        body = self.send(
            "create",
            lambda creds: self.build_create(request, key, creds),
            key=key,
            tenant_id=tenant_id,
            correlation_id=correlation_id,
        )
        return self.parse_payment(body, request.reference)

    def capture(
        self,
        payment: Payment,
        amount: int | None,
        *,
        key: str,
        tenant_id: str | None = None,
        correlation_id: str | None = None,
    ) -> Payment:
        body = self.send(
            "capture",
            lambda creds: self.build_capture(payment, amount, key, creds),
            key=key,
            tenant_id=tenant_id,
            correlation_id=correlation_id,
        )
        return self.after_capture(payment, body, tenant_id)

    def cancel(
        self, payment: Payment, *, key: str, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> Payment:
        body = self.send(
            "cancel",
            lambda creds: self.build_cancel(payment, key, creds),
            key=key,
            tenant_id=tenant_id,
            correlation_id=correlation_id,
        )
        return self.after_cancel(payment, body, tenant_id)

    def refund(
        self,
        payment: Payment,
        amount: int | None,
        reason: str | None,
        *,
        reference: str,
        key: str,
        tenant_id: str | None = None,
        correlation_id: str | None = None,
    ) -> Payment:
        body = self.send(
            "refund",
            lambda creds: self.build_refund(payment, amount, reason, reference, key, creds),
            key=key,
            tenant_id=tenant_id,
            correlation_id=correlation_id,
        )
        return self.after_refund(payment, body, tenant_id)

    def retrieve(self, payment_id: str, *, reference: str | None = None, tenant_id: str | None = None) -> Payment:
        return self.parse_payment(
            self.get(lambda creds: self.build_retrieve(payment_id, creds), tenant_id=tenant_id), reference
        )

    # -- hooks with a sensible default ----------------------------------------------
    def after_capture(self, payment: Payment, body: Any, tenant_id: str | None) -> Payment:
        return self.parse_payment(body, payment.reference)

    def after_cancel(self, payment: Payment, body: Any, tenant_id: str | None) -> Payment:
        return self.parse_payment(body, payment.reference)

    def after_refund(self, payment: Payment, body: Any, tenant_id: str | None) -> Payment:
        """The payment after a refund (vendors answer with the refund object: read the payment again)."""
        return self.retrieve(payment.payment_id, reference=payment.reference, tenant_id=tenant_id)

    # -- the one way a request leaves -------------------------------------------------
    def send(
        self,
        operation: str,
        build: Callable[[Credentials], VendorRequest],
        *,
        key: str,
        tenant_id: str | None,
        correlation_id: str | None,
    ) -> Any:
        """One money-moving POST under ``key`` (retried only with that same key)."""
        return self.execute(
            f"payment_{operation}",
            build,
            _json,
            tenant_id=tenant_id,
            correlation_id=correlation_id,
            idempotency_key=key,
        ).value

    def get(
        self, build: Callable[[Credentials], VendorRequest], *, tenant_id: str | None, operation: str = "retrieve"
    ) -> Any:
        return self.execute(f"payment_{operation}", build, _json, tenant_id=tenant_id, idempotent=True).value


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    return response.json()

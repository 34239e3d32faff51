"""Stripe PaymentIntents and Refunds (API v1), translated; the payment base does the sending.

Contract: ``https://api.stripe.com/v1/...``, ``Authorization: Bearer sk_...``,
form-encoded bodies in bracket notation (``metadata[k]=v``,
``payment_method_types[0]=card``), a pinned ``Stripe-Version`` header
(``vendors.stripe.api_version``), ``Idempotency-Key`` on every POST (Stripe
stores the first answer for at least 24 h and replays it with
``Idempotent-Replayed: true``).  A decline is HTTP 402 with
``error.type = card_error`` and a ``decline_code``; a key reused with other
parameters is a 400 ``idempotency_error``, one still in flight a 409.

Amounts are in Stripe's "smallest currency unit", which matches the ISO 4217
minor unit except for a few currencies handled in :func:`stripe_amount`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import quote, urlencode

import httpx

from connectorctl.adapters.declaration import API_KEY, Vendor
from connectorctl.adapters.http import VendorRequest
from connectorctl.adapters.payment.base import REFERENCE_METADATA_KEY, IdempotencyConflictError, PaymentAdapter
from connectorctl.domain.money import Money
from connectorctl.domain.payments import Payment, PaymentRequest, PaymentStatus, refund_status
from connectorctl.domain.values import Credentials
from connectorctl.errors import ConnectorError, InvalidInputError, PaymentDeclinedError
from connectorctl.settings import VendorSettings

if TYPE_CHECKING:
    from connectorctl.store.intents import Intent

DEFAULT_API_VERSION = "2024-06-20"
LIST_PAGE = 100
# Stripe counts these in whole units although ISO 4217 gives them two decimals (ISK: two decimals that must be 00).
_STRIPE_ZERO_DECIMAL = frozenset({"MGA"})
_STRIPE_TWO_DECIMAL = frozenset({"ISK"})
_STATUS = {
    "requires_payment_method": PaymentStatus.REQUIRES_ACTION,
    "requires_confirmation": PaymentStatus.REQUIRES_ACTION,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "processing": PaymentStatus.REQUIRES_ACTION,
    "requires_capture": PaymentStatus.AUTHORIZED,
    "succeeded": PaymentStatus.CAPTURED,
    "canceled": PaymentStatus.CANCELED,
}


def form_pairs(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's bracket notation: nested mappings as ``a[b]``, sequences as ``a[0]``, booleans as ``true``."""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs += form_pairs(value, name)
        elif isinstance(value, (list, tuple)):
            pairs += form_pairs({str(i): v for i, v in enumerate(value)}, name)
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        else:
            pairs.append((name, str(value)))
    return pairs


def stripe_amount(money: Money) -> int:
    if money.currency in _STRIPE_ZERO_DECIMAL:
        return money.amount // 100  # ISO minor units -> whole units (the request was checked to be whole)
    if money.currency in _STRIPE_TWO_DECIMAL:
        return money.amount * 100
    return money.amount


def from_stripe_amount(amount: int, currency: str) -> int:
    code = currency.upper()
    if code in _STRIPE_ZERO_DECIMAL:
        return amount * 100
    if code in _STRIPE_TWO_DECIMAL:
        return amount // 100
    return amount


@dataclass(frozen=True)
class StripeOptions(VendorSettings):
    api_version: str = (
        DEFAULT_API_VERSION  # sent as Stripe-Version: pinned, so a Stripe upgrade never changes answers under us
    )


class StripePaymentAdapter(PaymentAdapter[StripeOptions]):
    default_base_url = "https://api.stripe.com"

    # -- requests -------------------------------------------------------------------
    def _post(self, path: str, fields: Mapping[str, Any], key: str, creds: Credentials) -> VendorRequest:
        pairs = form_pairs(fields)
        headers = {**self._headers(creds), "Idempotency-Key": key, "Content-Type": "application/x-www-form-urlencoded"}
        return VendorRequest("POST", path, content=urlencode(pairs).encode(), headers=headers, log=dict(pairs))

    def _get(self, path: str, params: Mapping[str, Any], creds: Credentials) -> VendorRequest:
        return VendorRequest("GET", path, params=form_pairs(params), headers=self._headers(creds))

    def _headers(self, creds: Credentials) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {creds.data['api_key']}",
            "Stripe-Version": self.config.api_version,
            "Accept": "application/json",
        }

    def build_verify(self, creds: Credentials) -> VendorRequest:
        """The balance: authenticated, read-only, free."""
        return self._get("/v1/balance", {}, creds)

    def build_create(self, request: PaymentRequest, key: str, creds: Credentials) -> VendorRequest:
        if request.amount.currency in _STRIPE_ZERO_DECIMAL and request.amount.amount % 100:
            raise InvalidInputError(
                f"Stripe charges {request.amount.currency} in whole units: {request.amount} cannot be charged"
            )
        fields: dict[str, Any] = {
            "amount": stripe_amount(request.amount),
            "currency": request.amount.currency.lower(),
            "capture_method": "automatic" if request.capture else "manual",
            "payment_method_types": ["card"],
            "metadata": {**request.metadata, REFERENCE_METADATA_KEY: request.reference},
            "description": request.description,
        }
        if request.payment_method:
            fields.update(payment_method=request.payment_method, confirm=True)
        return self._post("/v1/payment_intents", fields, key, creds)

    def build_capture(self, payment: Payment, amount: int | None, key: str, creds: Credentials) -> VendorRequest:
        fields = {
            "amount_to_capture": stripe_amount(payment.amount.with_amount(amount)) if amount is not None else None
        }
        return self._post(f"/v1/payment_intents/{quote(payment.payment_id, safe='')}/capture", fields, key, creds)

    def build_cancel(self, payment: Payment, key: str, creds: Credentials) -> VendorRequest:
        return self._post(f"/v1/payment_intents/{quote(payment.payment_id, safe='')}/cancel", {}, key, creds)

    def build_refund(
        self, payment: Payment, amount: int | None, reason: str | None, reference: str, key: str, creds: Credentials
    ) -> VendorRequest:
        fields = {
            "payment_intent": payment.payment_id,
            "amount": stripe_amount(payment.amount.with_amount(amount)) if amount is not None else None,
            "reason": reason,
            "metadata": {REFERENCE_METADATA_KEY: reference},
        }
        return self._post("/v1/refunds", fields, key, creds)

    def build_retrieve(self, payment_id: str, creds: Credentials) -> VendorRequest:
        return self._get(f"/v1/payment_intents/{quote(payment_id, safe='')}", {"expand": ["latest_charge"]}, creds)

    # -- answers -------------------------------------------------------------------------
    def parse_payment(self, body: Any, reference: str | None = None) -> Payment:
        currency = str(body["currency"]).upper()
        amount = from_stripe_amount(int(body["amount"]), currency)
        status = _STATUS.get(body.get("status"), PaymentStatus.REQUIRES_ACTION)
        error = body.get("last_payment_error") or {}
        if body.get("status") == "requires_payment_method" and error:
            status = PaymentStatus.FAILED
        charge = body.get("latest_charge")
        refunded = (
            from_stripe_amount(int(charge.get("amount_refunded") or 0), currency) if isinstance(charge, Mapping) else 0
        )
        if status is PaymentStatus.CAPTURED and refunded:
            status = refund_status(from_stripe_amount(int(body.get("amount_received") or 0), currency), refunded)
        return Payment(
            vendor=self.slug,
            payment_id=body["id"],
            status=status,
            amount=Money(amount, currency),
            amount_captured=from_stripe_amount(int(body.get("amount_received") or 0), currency),
            amount_refunded=refunded,
            reference=reference or (body.get("metadata") or {}).get(REFERENCE_METADATA_KEY),
            decline_code=error.get("decline_code") or error.get("code"),
            raw=body,
        )

    def after_refund(self, payment: Payment, body: Any, tenant_id: str | None) -> Payment:
        from dataclasses import replace

        after = self.retrieve(payment.payment_id, reference=payment.reference, tenant_id=tenant_id)
        return replace(after, refund_id=body.get("id"))

    def error_for(self, response: httpx.Response) -> ConnectorError:
        exc = super().error_for(response)
        error = exc.response_data.get("error") if isinstance(exc.response_data, Mapping) else None
        if not isinstance(error, Mapping):
            return exc
        kwargs = {"service": self.slug, "http_status": exc.http_status, "response_data": exc.response_data}
        if error.get("type") == "card_error":
            pi = error.get("payment_intent")
            return PaymentDeclinedError(
                f"{self.slug}: declined: {error.get('message') or 'card declined'}",
                decline_code=error.get("decline_code") or error.get("code"),
                payment_id=pi.get("id") if isinstance(pi, Mapping) else None,
                **kwargs,
            )
        if error.get("type") == "idempotency_error":
            return IdempotencyConflictError(
                f"{self.slug}: {error.get('message') or 'idempotency key conflict'}",
                hint="a reference names one request: use a new reference for different parameters",
                **kwargs,
            )
        return exc

    # -- reconciliation ------------------------------------------------------------------
    def find(self, intent: "Intent", payment: Payment | None) -> Payment | None:
        """By id when we know it, else the PaymentIntents created since the intent, matched on our reference."""
        if intent.operation == "create":
            return self._find_created(intent)
        assert payment is not None, "capture, cancel and refund intents always name a known payment"
        current = self.retrieve(payment.payment_id, reference=payment.reference)
        if intent.operation == "refund":
            body = self.get(
                lambda creds: self._get(
                    "/v1/refunds", {"payment_intent": payment.payment_id, "limit": LIST_PAGE}, creds
                ),
                tenant_id=None,
                operation="reconcile",
            )
            for refund in body.get("data") or ():
                if (refund.get("metadata") or {}).get(REFERENCE_METADATA_KEY) == intent.reference:
                    from dataclasses import replace

                    return replace(current, refund_id=refund.get("id"))
            return None
        if intent.operation == "capture":
            return current if current.status is not PaymentStatus.AUTHORIZED else None
        if intent.operation == "cancel":
            return current if current.status is PaymentStatus.CANCELED else None
        return current

    def _find_created(self, intent: "Intent") -> Payment | None:
        from datetime import datetime

        since = int(datetime.fromisoformat(intent.created_at.replace("Z", "+00:00")).timestamp()) - 300
        after: str | None = None
        while True:
            params = {
                "created": {"gte": since},
                "limit": LIST_PAGE,
                "expand": ["data.latest_charge"],
                "starting_after": after,
            }
            body = self.get(
                functools.partial(self._get, "/v1/payment_intents", params), tenant_id=None, operation="reconcile"
            )
            items = body.get("data") or []
            for item in items:
                if (item.get("metadata") or {}).get(REFERENCE_METADATA_KEY) == intent.reference:
                    return self.parse_payment(item, intent.reference)
            if not body.get("has_more") or not items:
                return None
            after = items[-1]["id"]


VENDOR = Vendor(
    "stripe",
    "Stripe PaymentIntents and Refunds (API v1)",
    {"payment": StripePaymentAdapter},
    StripeOptions,
    auth=(API_KEY,),
)

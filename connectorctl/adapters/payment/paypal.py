"""PayPal Orders v2 and Payments v2 (captures, voids, refunds), translated.

Contract: JSON bodies, ``Authorization: Bearer <access token>`` from the OAuth2
client-credentials grant at ``/v1/oauth2/token`` (the credential store caches
the token and renews it; ``vendors.paypal.token_url`` names the endpoint),
``PayPal-Request-Id`` for idempotency (same id and body: the stored answer;
same id, other body: 422 ``PAYPAL_REQUEST_ID_PREVIOUSLY_USED``),
``Prefer: return=representation``.  Amounts are decimal strings with the
currency's decimals; the payment method is a vault id (``payment_source.card.vault_id``).
An order without one waits for the payer to approve it (``requires_action``).

PayPal keeps no free-form metadata on an order: our reference travels in
``custom_id`` and other metadata is refused as unsupported.  Reconciliation
asks PayPal by sending the same request under the same request id again:
PayPal answers an order it already has, and creates one it never received —
exactly once either way.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import quote

import httpx

from connectorctl.adapters.declaration import OAUTH2, Vendor
from connectorctl.adapters.http import VendorRequest
from connectorctl.adapters.payment.base import IdempotencyConflictError, PaymentAdapter
from connectorctl.domain.money import Money
from connectorctl.domain.payments import Payment, PaymentRequest, PaymentStatus, refund_status
from connectorctl.domain.values import Credentials
from connectorctl.errors import ConnectorError, PaymentDeclinedError, UnsupportedFeatureError
from connectorctl.settings import VendorSettings

if TYPE_CHECKING:
    from connectorctl.store.intents import Intent

DECLINE_ISSUES = frozenset(
    {
        "INSTRUMENT_DECLINED",
        "TRANSACTION_REFUSED",
        "CARD_EXPIRED",
        "PAYER_CANNOT_PAY",
        "PAYER_ACCOUNT_RESTRICTED",
        "PAYER_ACCOUNT_LOCKED_OR_CLOSED",
        "DECLINED_DUE_TO_RELATED_TXN",
        "COMPLIANCE_VIOLATION",
        "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING",
    }
)
DUPLICATE_ISSUES = frozenset({"PAYPAL_REQUEST_ID_PREVIOUSLY_USED", "DUPLICATE_INVOICE_ID", "DUPLICATE_REQUEST_ID"})
MAX_CUSTOM_ID = 127
_WHOLE_UNITS = frozenset({"HUF", "TWD"})  # two decimals in ISO 4217, none at PayPal


class PayPalPaymentAdapter(PaymentAdapter[VendorSettings]):
    default_base_url = "https://api-m.paypal.com"

    # -- requests ------------------------------------------------------------------------
    def _headers(self, creds: Credentials) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {creds.data['access_token']}",
            "Accept": "application/json",
            "Prefer": "return=representation",
        }

    def _post(self, path: str, body: Mapping[str, Any] | None, key: str, creds: Credentials) -> VendorRequest:
        return VendorRequest("POST", path, json=body, headers={**self._headers(creds), "PayPal-Request-Id": key})

    def build_create(self, request: PaymentRequest, key: str, creds: Credentials) -> VendorRequest:
        if request.metadata:
            raise UnsupportedFeatureError(
                f"{self.slug} orders carry no metadata (only the reference, as custom_id)", service=self.slug
            )
        if len(request.reference) > MAX_CUSTOM_ID:
            raise UnsupportedFeatureError(
                f"{self.slug} keeps at most {MAX_CUSTOM_ID} characters of reference", service=self.slug
            )
        unit: dict[str, Any] = {
            "reference_id": "default",
            "custom_id": request.reference,
            "amount": _amount(request.amount),
        }
        if request.description:
            unit["description"] = request.description[:127]
        body: dict[str, Any] = {"intent": "CAPTURE" if request.capture else "AUTHORIZE", "purchase_units": [unit]}
        if request.payment_method:
            body["payment_source"] = {"card": {"vault_id": request.payment_method}}
        return self._post("/v2/checkout/orders", body, key, creds)

    def build_capture(self, payment: Payment, amount: int | None, key: str, creds: Credentials) -> VendorRequest:
        body: dict[str, Any] = {"final_capture": True}
        if amount is not None:
            body["amount"] = _amount(payment.amount.with_amount(amount))
        return self._post(
            f"/v2/payments/authorizations/{_need(payment.authorization_id, payment, 'authorization')}/capture",
            body,
            key,
            creds,
        )

    def build_cancel(self, payment: Payment, key: str, creds: Credentials) -> VendorRequest:
        return self._post(
            f"/v2/payments/authorizations/{_need(payment.authorization_id, payment, 'authorization')}/void",
            None,
            key,
            creds,
        )

    def build_refund(
        self, payment: Payment, amount: int | None, reason: str | None, reference: str, key: str, creds: Credentials
    ) -> VendorRequest:
        body: dict[str, Any] = {}
        if amount is not None:
            body["amount"] = _amount(payment.amount.with_amount(amount))
        if reason:
            body["note_to_payer"] = reason.replace("_", " ")
        return self._post(
            f"/v2/payments/captures/{_need(payment.capture_id, payment, 'capture')}/refund", body, key, creds
        )

    def build_retrieve(self, payment_id: str, creds: Credentials) -> VendorRequest:
        return VendorRequest("GET", f"/v2/checkout/orders/{quote(payment_id, safe='')}", headers=self._headers(creds))

    # -- answers -------------------------------------------------------------------------
    def parse_payment(self, body: Any, reference: str | None = None) -> Payment:
        unit = (body.get("purchase_units") or [{}])[0]
        amount = Money.of(unit["amount"]["value"], unit["amount"]["currency_code"])
        payments = unit.get("payments") or {}
        auth = (payments.get("authorizations") or [None])[0]
        capture = (payments.get("captures") or [None])[0]
        refunded = sum(Money.of(r["amount"]["value"], amount.currency).amount for r in payments.get("refunds") or ())
        captured = (
            Money.of(capture["amount"]["value"], amount.currency).amount
            if capture and capture.get("status") != "DECLINED"
            else 0
        )
        status = PaymentStatus.REQUIRES_ACTION
        if body.get("status") == "VOIDED" or (auth and auth.get("status") == "VOIDED"):
            status = PaymentStatus.CANCELED
        elif capture and capture.get("status") == "DECLINED":
            status = PaymentStatus.FAILED
        elif capture:
            status = refund_status(captured, refunded) if refunded else PaymentStatus.CAPTURED
        elif auth:
            status = PaymentStatus.AUTHORIZED
        return Payment(
            vendor=self.slug,
            payment_id=body["id"],
            status=status,
            amount=amount,
            amount_captured=captured,
            amount_refunded=refunded,
            reference=reference or unit.get("custom_id"),
            authorization_id=auth.get("id") if auth else None,
            capture_id=capture.get("id") if capture else None,
            raw=body,
        )

    def after_capture(self, payment: Payment, body: Any, tenant_id: str | None) -> Payment:
        return self.retrieve(payment.payment_id, reference=payment.reference, tenant_id=tenant_id)

    def after_cancel(self, payment: Payment, body: Any, tenant_id: str | None) -> Payment:
        return self.retrieve(payment.payment_id, reference=payment.reference, tenant_id=tenant_id)

    def after_refund(self, payment: Payment, body: Any, tenant_id: str | None) -> Payment:
        return replace(
            self.retrieve(payment.payment_id, reference=payment.reference, tenant_id=tenant_id),
            refund_id=body.get("id"),
        )

    def error_for(self, response: httpx.Response) -> ConnectorError:
        exc = super().error_for(response)
        body = exc.response_data if isinstance(exc.response_data, Mapping) else {}
        issues = [d.get("issue") for d in body.get("details") or () if isinstance(d, Mapping)]
        kwargs = {"service": self.slug, "http_status": exc.http_status, "response_data": exc.response_data}
        declined = next((i for i in issues if i in DECLINE_ISSUES), None)
        if declined:
            return PaymentDeclinedError(f"{self.slug}: declined ({declined})", decline_code=declined.lower(), **kwargs)
        duplicate = next((i for i in issues if i in DUPLICATE_ISSUES), None)
        if duplicate:
            return IdempotencyConflictError(
                f"{self.slug}: {duplicate}: the request id was already used for another request",
                hint="a reference names one request: use a new reference for different parameters",
                **kwargs,
            )
        return exc

    def error_message(self, response: httpx.Response, body: Any) -> str:
        if isinstance(body, Mapping) and body.get("error_description"):
            return str(body["error_description"])
        issues = (
            [d.get("issue") for d in (body.get("details") or ()) if isinstance(d, Mapping)]
            if isinstance(body, Mapping)
            else []
        )
        return super().error_message(response, body) + (f" ({', '.join(map(str, issues))})" if issues else "")

    # -- reconciliation: the same request under the same request id -----------------------
    def find(self, intent: "Intent", payment: Payment | None) -> Payment | None:
        params = intent.params
        if intent.operation == "create":
            request = PaymentRequest(
                Money(int(params["amount"]), params["currency"]),
                intent.reference,
                bool(params["capture"]),
                params.get("payment_method"),
                params.get("description"),
                params.get("metadata") or {},
            )
            return self.create(request, key=intent.idempotency_key)
        assert payment is not None, "capture, cancel and refund intents always name a known payment"
        amount = params.get("amount")
        if intent.operation == "capture":
            return self.capture(payment, amount, key=intent.idempotency_key)
        if intent.operation == "cancel":
            return self.cancel(payment, key=intent.idempotency_key)
        return self.refund(
            payment, amount, params.get("reason"), reference=intent.reference, key=intent.idempotency_key
        )


def _amount(money: Money) -> dict[str, str]:
    if money.currency in _WHOLE_UNITS:
        if money.amount % 100:
            from connectorctl.errors import InvalidInputError

            raise InvalidInputError(f"PayPal takes {money.currency} in whole units: {money} cannot be charged")
        return {"currency_code": money.currency, "value": str(money.amount // 100)}
    return {"currency_code": money.currency, "value": money.major()}


def _need(value: str | None, payment: Payment, what: str) -> str:
    if not value:
        raise UnsupportedFeatureError(
            f"paypal order {payment.payment_id} has no {what} to act on (status {payment.status.value})",
            service="paypal",
        )
    return quote(value, safe="")


VENDOR = Vendor(
    "paypal", "PayPal Orders v2 and Payments v2 (captures, refunds)", {"payment": PayPalPaymentAdapter}, auth=(OAUTH2,)
)

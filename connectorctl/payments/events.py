"""Verified vendor events as payment status updates.

The webhook receiver hands every accepted Stripe or PayPal event here.  An
event only ever updates a payment we have on record (matched by the vendor's
payment id, capture id or our reference), through
:meth:`PaymentRecords.record`, which never moves a payment backwards: a late
``payment_intent.succeeded`` after ``charge.refunded`` changes nothing, and the
same event delivered twice is harmless.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping

from connectorctl.domain.money import Money
from connectorctl.domain.payments import Payment, PaymentStatus, refund_status
from connectorctl.payments.records import PaymentRecords

if TYPE_CHECKING:
    from connectorctl.gateway import Connector


def apply_event(connector: "Connector", scheme: str, event: Any) -> Payment | None:
    """Update the matching payment from one verified event; None when it concerns no payment of ours."""
    if not isinstance(event, Mapping):
        return None
    records = PaymentRecords(connector.db)
    if scheme == "stripe":
        update = _stripe(connector, records, event)
    elif scheme == "paypal":
        update = _paypal(records, event)
    else:
        return None
    return records.record(update) if update is not None else None


def _stripe(connector: "Connector", records: PaymentRecords, event: Mapping[str, Any]) -> Payment | None:
    obj = (event.get("data") or {}).get("object") or {}
    kind = str(event.get("type", ""))
    if kind.startswith("payment_intent.") and obj.get("object") == "payment_intent":
        known = records.get(str(obj.get("id")), "stripe")
        if known is None:
            return None
        from connectorctl.adapters.payment.base import PaymentAdapter

        parsed = connector.channel_adapter("stripe", PaymentAdapter).parse_payment(obj, known.reference)
        return replace(parsed, amount_refunded=known.amount_refunded)
    if kind.startswith("charge.") and obj.get("object") == "charge":
        known = records.get(str(obj.get("payment_intent")), "stripe")
        if known is None:
            return None
        captured, refunded = int(obj.get("amount_captured") or 0), int(obj.get("amount_refunded") or 0)
        status = known.status
        if kind == "charge.failed":
            status = PaymentStatus.FAILED
        elif refunded:
            status = refund_status(captured or known.amount.amount, refunded)
        elif obj.get("captured"):
            status = PaymentStatus.CAPTURED
        return replace(
            known, status=status, amount_captured=max(captured, known.amount_captured), amount_refunded=refunded
        )
    return None


_PAYPAL_STATUS = {
    "PAYMENT.CAPTURE.COMPLETED": PaymentStatus.CAPTURED,
    "PAYMENT.CAPTURE.DENIED": PaymentStatus.FAILED,
    "PAYMENT.CAPTURE.DECLINED": PaymentStatus.FAILED,
    "PAYMENT.AUTHORIZATION.CREATED": PaymentStatus.AUTHORIZED,
    "PAYMENT.AUTHORIZATION.VOIDED": PaymentStatus.CANCELED,
    "CHECKOUT.ORDER.APPROVED": PaymentStatus.REQUIRES_ACTION,
}


def _paypal(records: PaymentRecords, event: Mapping[str, Any]) -> Payment | None:
    kind = str(event.get("event_type", ""))
    resource = event.get("resource") or {}
    if not isinstance(resource, Mapping):
        return None
    if kind in ("PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"):
        capture_id = next(
            (
                link.get("href", "").rstrip("/").rsplit("/", 1)[-1]
                for link in resource.get("links") or ()
                if isinstance(link, Mapping) and link.get("rel") == "up"
            ),
            None,
        )
        known = records.by_capture("paypal", capture_id) if capture_id else None
        total = ((resource.get("seller_payable_breakdown") or {}).get("total_refunded_amount") or {}).get("value")
        if known is None or total is None:
            return None
        refunded = Money.of(total, known.amount.currency).amount
        return replace(
            known,
            status=refund_status(known.amount_captured or known.amount.amount, refunded),
            amount_refunded=refunded,
        )
    status = _PAYPAL_STATUS.get(kind)
    if status is None:
        return None
    order_id = ((resource.get("supplementary_data") or {}).get("related_ids") or {}).get("order_id") or (
        resource.get("id") if kind.startswith("CHECKOUT.ORDER.") else None
    )
    known = records.get(str(order_id), "paypal") if order_id else None
    if known is None:
        return None
    captured = known.amount_captured
    if status is PaymentStatus.CAPTURED and isinstance(resource.get("amount"), Mapping):
        captured = Money.of(resource["amount"]["value"], known.amount.currency).amount
    return replace(
        known,
        status=status,
        amount_captured=captured,
        capture_id=resource.get("id") if kind.startswith("PAYMENT.CAPTURE.") else known.capture_id,
    )

"""Payments as the ERP sees them: what is asked (a request) and what the vendor holds (a payment).

No card data ever passes through here: a payment method is a vendor token
(``pm_...``, a PayPal vault id), and free text that looks like a card number
(a Luhn-valid run of 13-19 digits) is refused before anything is stored or sent.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

from connectorctl.domain.money import Money
from connectorctl.errors import InvalidInputError
from connectorctl.validation import check_reference

MAX_METADATA_KEYS = 40  # Stripe's limit; PayPal carries less (see its adapter)
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")


class PaymentStatus(str, enum.Enum):
    REQUIRES_ACTION = "requires_action"  # the payer must do something (3-D Secure, approve in PayPal)
    AUTHORIZED = "authorized"  # funds held, not captured yet
    CAPTURED = "captured"
    CANCELED = "canceled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    FAILED = "failed"  # declined or otherwise refused

    @property
    def rank(self) -> int:
        """How far along a payment is; an event never moves a payment to a lower rank."""
        return _RANK[self]


_RANK = {
    PaymentStatus.REQUIRES_ACTION: 0,
    PaymentStatus.FAILED: 1,
    PaymentStatus.AUTHORIZED: 1,
    PaymentStatus.CAPTURED: 2,
    PaymentStatus.CANCELED: 3,
    PaymentStatus.PARTIALLY_REFUNDED: 3,
    PaymentStatus.REFUNDED: 4,
}


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def refuse_card_numbers(what: str, text: str | None) -> None:
    """Raise if ``text`` holds something that looks like a card number (PCI: we never take card data)."""
    if not text:
        return
    for match in _DIGIT_RUN.finditer(text):
        digits = re.sub(r"[ -]", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            raise InvalidInputError(
                f"the {what} looks like it contains a card number; card data is never accepted, use a payment-method "
                "token"
            )


@dataclass(frozen=True)
class PaymentRequest:
    """A charge to create: ``capture=False`` only authorizes (capture later)."""

    amount: Money
    reference: str
    capture: bool = True
    payment_method: str | None = None
    description: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_reference(self.reference)
        if self.amount.amount <= 0:
            raise InvalidInputError("a charge needs an amount above zero")
        if len(self.metadata) > MAX_METADATA_KEYS:
            raise InvalidInputError(f"at most {MAX_METADATA_KEYS} metadata keys")
        refuse_card_numbers("description", self.description)
        refuse_card_numbers("payment method", self.payment_method)
        for key, value in self.metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidInputError("metadata keys and values are strings")
            refuse_card_numbers(f"metadata {key!r}", key + " " + value)
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    def params(self) -> dict[str, Any]:
        """What identifies this request for the same-reference check (vendor-independent)."""
        return {
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "capture": self.capture,
            "payment_method": self.payment_method,
            "description": self.description,
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True)
class Payment:
    """A payment as the vendor holds it, after any operation on it."""

    vendor: str
    payment_id: str
    status: PaymentStatus
    amount: Money
    amount_captured: int = 0
    amount_refunded: int = 0
    reference: str | None = None
    decline_code: str | None = None
    refund_id: str | None = None  # set on the result of a refund
    capture_id: str | None = None  # PayPal: the capture a refund goes to
    authorization_id: str | None = None  # PayPal: the authorization a capture or void goes to
    replayed: bool = False  # an earlier answer for this reference, not a new vendor call
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "payment_id": self.payment_id,
            "reference": self.reference,
            "status": self.status.value,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "amount_display": str(self.amount),
            "amount_captured": self.amount_captured,
            "amount_refunded": self.amount_refunded,
            "decline_code": self.decline_code,
            "refund_id": self.refund_id,
            "capture_id": self.capture_id,
            "authorization_id": self.authorization_id,
            "replayed": self.replayed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Payment":
        return cls(
            vendor=data["vendor"],
            payment_id=data["payment_id"],
            status=PaymentStatus(data["status"]),
            amount=Money(int(data["amount"]), data["currency"]),
            amount_captured=int(data.get("amount_captured") or 0),
            amount_refunded=int(data.get("amount_refunded") or 0),
            reference=data.get("reference"),
            decline_code=data.get("decline_code"),
            refund_id=data.get("refund_id"),
            capture_id=data.get("capture_id"),
            authorization_id=data.get("authorization_id"),
        )

    def replay(self) -> "Payment":
        return replace(self, replayed=True)


def refund_status(amount: int, refunded: int) -> PaymentStatus:
    return PaymentStatus.REFUNDED if refunded >= amount else PaymentStatus.PARTIALLY_REFUNDED

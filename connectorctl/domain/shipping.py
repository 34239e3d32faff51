"""Shipping, independent of any vendor: addresses, parcels with units, rates, labels, tracking.

Weights and lengths keep the unit they were given in (an ERP in kilograms
must not see its parcels rounded to ounces in the audit log); vendor modules
convert with :meth:`Parcel.weight_in` / :meth:`Parcel.dimensions_in`, exactly,
with :class:`~decimal.Decimal`.  Prices are :class:`Money`, never floats.

Tracking statuses are one closed set for every vendor, so an ERP can act on
``delivered`` without knowing whether EasyPost or Shippo said it; each event
still keeps the carrier's own words.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from connectorctl.domain.money import Money
from connectorctl.errors import InvalidInputError


class MassUnit(str, enum.Enum):
    G = "g"
    KG = "kg"
    OZ = "oz"
    LB = "lb"


class DistanceUnit(str, enum.Enum):
    MM = "mm"
    CM = "cm"
    M = "m"
    IN = "in"
    FT = "ft"


_GRAMS = {
    MassUnit.G: Decimal(1),
    MassUnit.KG: Decimal(1000),
    MassUnit.OZ: Decimal("28.349523125"),
    MassUnit.LB: Decimal("453.59237"),
}
_MILLIMETRES = {
    DistanceUnit.MM: Decimal(1),
    DistanceUnit.CM: Decimal(10),
    DistanceUnit.M: Decimal(1000),
    DistanceUnit.IN: Decimal("25.4"),
    DistanceUnit.FT: Decimal("304.8"),
}
MAX_MEASURE = Decimal(100000)  # 100 t or 100 km: anything larger is a typo, not a parcel


def measure(value: Any, what: str) -> Decimal:
    """A positive, finite number from YAML/CLI input (``"2.5"``, ``2.5``, ``3``); never a float's binary noise."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{what}: expected a number, got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInputError(f"{what}: expected a number, got {value!r}") from None
    if not number.is_finite() or number <= 0 or number > MAX_MEASURE:
        raise InvalidInputError(f"{what}: must be a positive number up to {MAX_MEASURE}, got {value!r}")
    return number


def _unit(enum_cls: type[enum.Enum], value: Any, what: str) -> Any:
    try:
        return enum_cls(str(value).strip().lower())
    except ValueError:
        raise InvalidInputError(
            f"{what}: unknown unit {value!r} (known: {', '.join(u.value for u in enum_cls)})"
        ) from None


ADDRESS_FIELDS = ("name", "company", "street1", "street2", "city", "state", "zip", "country", "phone", "email")


@dataclass(frozen=True)
class Address:
    name: str
    street1: str
    city: str
    zip: str
    country: str
    street2: str | None = None
    state: str | None = None
    company: str | None = None
    phone: str | None = None
    email: str | None = None

    def __post_init__(self) -> None:
        for name in ("name", "street1", "city", "zip", "country"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidInputError(f"an address needs a {name}")
        country = self.country.strip().upper()
        if len(country) != 2 or not country.isalpha():
            raise InvalidInputError(
                f"address country must be an ISO 3166 two-letter code such as US or DE, got {self.country!r}"
            )
        object.__setattr__(self, "country", country)

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_vendor(cls, fields: Mapping[str, Any]) -> "Address | None":
        """The address a vendor echoed back (same field names at EasyPost and Shippo), or None when incomplete."""
        values: dict[str, Any] = {
            k: (str(fields[k]) if fields.get(k) not in (None, "") else None) for k in ADDRESS_FIELDS if k in fields
        }
        try:
            return cls(**values)  # the constructor refuses a missing or empty required field
        except (InvalidInputError, TypeError):
            return None


@dataclass(frozen=True)
class Parcel:
    length: Decimal
    width: Decimal
    height: Decimal
    distance_unit: DistanceUnit
    weight: Decimal
    mass_unit: MassUnit

    @classmethod
    def of(cls, *, length: Any, width: Any, height: Any, distance_unit: Any, weight: Any, mass_unit: Any) -> "Parcel":
        return cls(
            measure(length, "parcel length"),
            measure(width, "parcel width"),
            measure(height, "parcel height"),
            _unit(DistanceUnit, distance_unit, "parcel distance_unit"),
            measure(weight, "parcel weight"),
            _unit(MassUnit, mass_unit, "parcel mass_unit"),
        )

    def weight_in(self, unit: MassUnit) -> Decimal:
        return _exact(self.weight * _GRAMS[self.mass_unit] / _GRAMS[unit])

    def dimensions_in(self, unit: DistanceUnit) -> tuple[Decimal, Decimal, Decimal]:
        factor = _MILLIMETRES[self.distance_unit] / _MILLIMETRES[unit]
        return (_exact(self.length * factor), _exact(self.width * factor), _exact(self.height * factor))

    def to_dict(self) -> dict[str, str]:
        return {
            "length": str(self.length),
            "width": str(self.width),
            "height": str(self.height),
            "distance_unit": self.distance_unit.value,
            "weight": str(self.weight),
            "mass_unit": self.mass_unit.value,
        }


def _exact(value: Decimal) -> Decimal:
    """Four decimals are finer than any carrier scale; trailing zeros add nothing."""
    rounded = value.quantize(Decimal("0.0001"))
    return rounded.normalize() if rounded != rounded.to_integral_value() else rounded.to_integral_value()


@dataclass(frozen=True)
class Shipment:
    """What to ship: from, to, parcels.  ``reference`` is the caller's own key (an order number)."""

    from_address: Address
    to_address: Address
    parcels: tuple[Parcel, ...]
    reference: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "parcels", tuple(self.parcels))
        if not self.parcels:
            raise InvalidInputError("a shipment needs at least one parcel")

    def features(self) -> frozenset[str]:
        return frozenset({"multi_parcel"} if len(self.parcels) > 1 else ())

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_address": self.from_address.to_dict(),
            "to_address": self.to_address.to_dict(),
            "parcels": [p.to_dict() for p in self.parcels],
            "reference": self.reference,
        }


@dataclass(frozen=True)
class Rate:
    """One price a carrier quoted for a shipment; ``id`` is what ``buy`` takes."""

    id: str
    vendor: str
    shipment_id: str
    carrier: str
    service: str
    price: Money
    delivery_days: int | None = None
    delivery_date: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "vendor": self.vendor,
            "shipment_id": self.shipment_id,
            "carrier": self.carrier,
            "service": self.service,
            "price": self.price.major(),
            "currency": self.price.currency,
            "delivery_days": self.delivery_days,
            "delivery_date": self.delivery_date,
        }


class LabelFormat(str, enum.Enum):
    PDF = "pdf"
    PNG = "png"
    ZPL = "zpl"


@dataclass(frozen=True)
class Label:
    """A bought label.  ``content`` holds the file's bytes once downloaded; ``path`` where it was saved."""

    vendor: str
    shipment_id: str
    rate_id: str
    tracking_number: str
    carrier: str
    service: str
    price: Money | None
    label_format: LabelFormat
    label_url: str | None
    transaction_id: str | None = None
    content: bytes | None = field(default=None, repr=False)
    path: str | None = None
    replayed: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Label":
        """Back from :meth:`to_dict` (a label remembered by the intent store)."""
        price = Money.of(data["price"], data["currency"]) if data.get("price") is not None else None
        return cls(
            data["vendor"],
            data["shipment_id"],
            data["rate_id"],
            data["tracking_number"],
            data["carrier"],
            data["service"],
            price,
            LabelFormat(data["label_format"]),
            data.get("label_url"),
            data.get("transaction_id"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "shipment_id": self.shipment_id,
            "rate_id": self.rate_id,
            "transaction_id": self.transaction_id,
            "tracking_number": self.tracking_number,
            "carrier": self.carrier,
            "service": self.service,
            "price": self.price.major() if self.price else None,
            "currency": self.price.currency if self.price else None,
            "label_format": self.label_format.value,
            "label_url": self.label_url,
            "label_file": self.path,
            "label_bytes": len(self.content) if self.content is not None else None,
            "replayed": self.replayed,
        }


class TrackingStatus(str, enum.Enum):
    PRE_TRANSIT = "pre_transit"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    RETURN_TO_SENDER = "return_to_sender"
    FAILURE = "failure"
    UNKNOWN = "unknown"

    @property
    def progress(self) -> int:
        """How far along a parcel is; two events at the same instant keep the further one."""
        return _PROGRESS[self]


_PROGRESS = {
    TrackingStatus.UNKNOWN: 0,
    TrackingStatus.PRE_TRANSIT: 1,
    TrackingStatus.IN_TRANSIT: 2,
    TrackingStatus.OUT_FOR_DELIVERY: 3,
    TrackingStatus.AVAILABLE_FOR_PICKUP: 4,
    TrackingStatus.FAILURE: 4,
    TrackingStatus.RETURN_TO_SENDER: 5,
    TrackingStatus.DELIVERED: 6,
}


@dataclass(frozen=True)
class TrackingEvent:
    """One carrier scan: our status, when (ISO 8601 UTC), where, and the carrier's own words."""

    status: TrackingStatus
    occurred_at: str | None
    location: str | None
    message: str | None
    vendor_status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "occurred_at": self.occurred_at,
            "location": self.location,
            "message": self.message,
            "vendor_status": self.vendor_status,
        }


@dataclass(frozen=True)
class Tracking:
    vendor: str
    tracking_number: str
    carrier: str | None
    status: TrackingStatus
    events: tuple[TrackingEvent, ...]
    estimated_delivery: str | None = None
    shipment_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "tracking_number": self.tracking_number,
            "carrier": self.carrier,
            "status": self.status.value,
            "estimated_delivery": self.estimated_delivery,
            "shipment_id": self.shipment_id,
            "events": [e.to_dict() for e in self.events],
        }


def utc_time(value: Any) -> str | None:
    """A vendor timestamp as ISO 8601 UTC (``2026-11-26T03:20:00Z``), which sorts in time order; None if unreadable."""
    from datetime import datetime, timezone

    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:  # the vendors document UTC; a bare time is taken as such
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def place(location: Any) -> str | None:
    """A vendor's scan location (``{city, state, zip, country}`` at both vendors) as one line."""
    if not isinstance(location, Mapping):
        return None
    return ", ".join(str(location[k]) for k in ("city", "state", "zip", "country") if location.get(k)) or None


def later(current: tuple[TrackingStatus, str | None] | None, candidate: tuple[TrackingStatus, str | None]) -> bool:
    """Whether ``candidate`` (status, time) supersedes ``current``: a newer event wins, an older one never does.

    ISO 8601 UTC strings compare in time order.  At the same instant (or when a
    time is missing) the status further along wins, so a replayed or late
    ``in_transit`` never takes a ``delivered`` parcel back.
    """
    if current is None:
        return True
    (status, at), (new_status, new_at) = current, candidate
    if at and new_at and at != new_at:
        return new_at > at
    return new_status.progress > status.progress


@dataclass(frozen=True)
class AddressVerification:
    valid: bool
    address: Address | None
    messages: tuple[str, ...] = ()
    vendor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "vendor": self.vendor,
            "address": self.address.to_dict() if self.address else None,
            "messages": list(self.messages),
        }


@dataclass(frozen=True)
class Refund:
    """The vendor's answer to a refund (void) request: ``submitted``, ``refunded``, ``rejected``..."""

    vendor: str
    shipment_id: str
    status: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"vendor": self.vendor, "shipment_id": self.shipment_id, "status": self.status}

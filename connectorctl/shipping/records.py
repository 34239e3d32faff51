"""What we know about our shipments: quoted rates, bought labels and the latest tracking status.

Rates are kept when quoted so that ``ship buy RATE_ID`` knows the vendor and
shipment a rate belongs to without asking anyone.  A shipment's status only
moves forward in time (:func:`~connectorctl.domain.shipping.later`): webhook
deliveries arrive late, twice and out of order, and none of that may take a
delivered parcel back to ``in_transit``.  The label purchase itself is
guarded by the write-ahead intent store, not here; this table is the readable
result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from connectorctl.domain.money import Money
from connectorctl.domain.shipping import Label, Rate, Tracking, TrackingStatus, later
from connectorctl.store.db import StateDB
from connectorctl.store.logs import iso_utc
from connectorctl.store.migrations import migration
from connectorctl.times import whole_seconds


@migration(60, "shipping")
def _shipping(db: Any) -> None:
    db.execute(
        "CREATE TABLE shipping_rates (vendor TEXT NOT NULL, rate_id TEXT NOT NULL, shipment_id TEXT NOT NULL, carrier "
        "TEXT NOT NULL, "
        "service TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL, delivery_days INTEGER, delivery_date "
        "TEXT, "
        "quoted_at TEXT NOT NULL, PRIMARY KEY (vendor, rate_id))"
    )
    db.execute("CREATE INDEX ix_shipping_rates_id ON shipping_rates(rate_id)")
    db.execute(
        "CREATE TABLE shipments (vendor TEXT NOT NULL, shipment_id TEXT NOT NULL, reference TEXT, request TEXT, "
        "rate_id TEXT, "
        "transaction_id TEXT, carrier TEXT, service TEXT, amount INTEGER, currency TEXT, tracking_number TEXT, "
        "label_format TEXT, "
        "label_url TEXT, label_file TEXT, status TEXT NOT NULL DEFAULT 'unknown', status_at TEXT, status_message TEXT, "
        "refund_status TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (vendor, shipment_id))"
    )
    db.execute("CREATE INDEX ix_shipments_tracking ON shipments(tracking_number) WHERE tracking_number IS NOT NULL")


@dataclass(frozen=True)
class StatusChange:
    """The outcome of applying one tracking update: did it move the shipment, and where is it now."""

    vendor: str
    shipment_id: str
    tracking_number: str
    applied: bool
    status: TrackingStatus
    status_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "shipment_id": self.shipment_id,
            "tracking_number": self.tracking_number,
            "applied": self.applied,
            "status": self.status.value,
            "status_at": self.status_at,
        }


class ShippingRecords:
    def __init__(self, db: StateDB, now: Any) -> None:
        self.db = db
        self.now = now  # () -> epoch seconds

    def save_quote(
        self, shipment_id: str, vendor: str, request: dict[str, Any], reference: str | None, rates: Sequence[Rate]
    ) -> None:
        stamp = iso_utc(self.now())
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO shipments (vendor, shipment_id, reference, request, created_at, updated_at) VALUES (?, "
                "?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (vendor, shipment_id, reference, json.dumps(request, sort_keys=True), stamp, stamp),
            )
            conn.executemany(
                "INSERT INTO shipping_rates (vendor, rate_id, shipment_id, carrier, service, amount, currency, "
                "delivery_days, "
                "delivery_date, quoted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (vendor, rate_id) DO "
                "UPDATE SET "
                "shipment_id = excluded.shipment_id, carrier = excluded.carrier, service = excluded.service, amount "
                "= excluded.amount, "
                "currency = excluded.currency, delivery_days = excluded.delivery_days, delivery_date = "
                "excluded.delivery_date, "
                "quoted_at = excluded.quoted_at",
                [
                    (
                        r.vendor,
                        r.id,
                        r.shipment_id,
                        r.carrier,
                        r.service,
                        r.price.amount,
                        r.price.currency,
                        r.delivery_days,
                        r.delivery_date,
                        stamp,
                    )
                    for r in rates
                ],
            )

    def rate(self, rate_id: str, vendor: str | None = None) -> list[Rate]:
        sql = (
            "SELECT rate_id, vendor, shipment_id, carrier, service, amount, currency, delivery_days, delivery_date "
            "FROM shipping_rates WHERE rate_id = ?"
        )
        args: list[Any] = [rate_id]
        if vendor:
            sql += " AND vendor = ?"
            args.append(vendor)
        rows = self.db.run(lambda c: c.execute(sql, args).fetchall())
        return [Rate(r[0], r[1], r[2], r[3], r[4], Money(r[5], r[6]), r[7], r[8]) for r in rows]

    def record_label(self, label: Label) -> None:
        stamp = iso_utc(self.now())
        price = label.price
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO shipments (vendor, shipment_id, created_at, updated_at) VALUES (?, ?, ?, ?) ON "
                "CONFLICT DO NOTHING",
                (label.vendor, label.shipment_id, stamp, stamp),
            )
            conn.execute(
                "UPDATE shipments SET rate_id = ?, transaction_id = ?, carrier = ?, service = ?, amount = ?, currency "
                "= ?, tracking_number = ?, "
                "label_format = ?, label_url = ?, label_file = COALESCE(?, label_file), "
                "status = CASE WHEN status = 'unknown' THEN 'pre_transit' ELSE status END, updated_at = ? "
                "WHERE vendor = ? AND shipment_id = ?",
                (
                    label.rate_id,
                    label.transaction_id,
                    label.carrier,
                    label.service,
                    price.amount if price else None,
                    price.currency if price else None,
                    label.tracking_number,
                    label.label_format.value,
                    label.label_url,
                    label.path,
                    stamp,
                    label.vendor,
                    label.shipment_id,
                ),
            )

    def record_refund(self, vendor: str, shipment_id: str, status: str) -> None:
        self.db.run(
            lambda c: c.execute(
                "UPDATE shipments SET refund_status = ?, updated_at = ? WHERE vendor = ? AND shipment_id = ?",
                (status, iso_utc(self.now()), vendor, shipment_id),
            )
        )

    def get(self, vendor: str, shipment_id: str) -> dict[str, Any] | None:
        def read(conn: Any) -> dict[str, Any] | None:
            cur = conn.execute("SELECT * FROM shipments WHERE vendor = ? AND shipment_id = ?", (vendor, shipment_id))
            row = cur.fetchone()
            return _shipment([d[0] for d in cur.description], row) if row else None

        return self.db.run(read)

    def find(self, shipment_id: str) -> list[dict[str, Any]]:
        def read(conn: Any) -> list[dict[str, Any]]:
            cur = conn.execute(
                "SELECT * FROM shipments WHERE shipment_id = ? OR transaction_id = ?", (shipment_id, shipment_id)
            )
            names = [d[0] for d in cur.description]
            return [_shipment(names, row) for row in cur.fetchall()]

        return self.db.run(read)

    def apply_tracking(self, tracking: Tracking, conn: Any = None) -> list[StatusChange]:
        """Move every shipment with this tracking number to the newest status, never backwards.

        The tracking's latest event decides (time, then progress); an update
        about a tracking number we never bought is ignored (an empty list).
        ``conn`` joins a transaction the caller already holds.
        """
        if conn is None:
            with self.db.write() as own:
                return self.apply_tracking(tracking, own)
        latest = newest_event(tracking)
        changes = []
        rows = conn.execute(
            "SELECT vendor, shipment_id, status, status_at FROM shipments WHERE tracking_number = ? AND vendor = ?",
            (tracking.tracking_number, tracking.vendor),
        ).fetchall()
        for vendor, shipment_id, status, stored_at in rows:
            status_at = whole_seconds(stored_at)  # vendor times are kept to the second
            current = (TrackingStatus(status), status_at)
            if later(current if status_at or status != "unknown" else None, latest[:2]):
                conn.execute(
                    "UPDATE shipments SET status = ?, status_at = ?, status_message = ?, updated_at = ? WHERE vendor "
                    "= ? AND shipment_id = ?",
                    (latest[0].value, latest[1], latest[2], iso_utc(self.now()), vendor, shipment_id),
                )
                changes.append(StatusChange(vendor, shipment_id, tracking.tracking_number, True, latest[0], latest[1]))
            else:
                changes.append(
                    StatusChange(vendor, shipment_id, tracking.tracking_number, False, current[0], current[1])
                )
        return changes


def _shipment(names: list[str], row: Sequence[Any]) -> dict[str, Any]:
    shipment = dict(zip(names, row, strict=True))
    shipment["status_at"] = whole_seconds(shipment["status_at"])  # vendor times are kept to the second
    return shipment


def newest_event(tracking: Tracking) -> tuple[TrackingStatus, str | None, str | None]:
    """(status, time, carrier text) of the tracking's most recent event, or its overall status when it has none."""
    best: tuple[TrackingStatus, str | None, str | None] | None = None
    for event in tracking.events:
        if best is None or later(best[:2], (event.status, event.occurred_at)):
            best = (event.status, event.occurred_at, event.message)
    return best or (tracking.status, None, None)

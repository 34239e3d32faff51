"""Tracking webhooks (EasyPost ``tracker.updated``, Shippo ``track_updated``) -> shipment status.

Called by the webhook receiver for an endpoint whose scheme is a shipping
vendor, after the delivery's signature passed and inside the transaction
that records it: the event is stored and the shipment moved together, or
neither (the vendor then retries).  Replays and late deliveries are harmless:
a shipment only moves to a newer event.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from connectorctl.adapters.catalog import vendors_for
from connectorctl.shipping.records import ShippingRecords, StatusChange

if TYPE_CHECKING:
    from connectorctl.gateway import Connector


def is_shipping_scheme(scheme: str) -> bool:
    return scheme in vendors_for("shipping")


def apply_tracking_webhook(connector: "Connector", vendor: str, payload: Any, conn: sqlite3.Connection | None = None) -> list[StatusChange]:
    """Apply one verified tracking event; events that are not tracking updates change nothing."""
    if isinstance(payload, (bytes, str)):
        try:
            payload = json.loads(payload)
        except ValueError:
            return []
    from connectorctl.adapters.shipping.base import ShippingAdapter

    tracking = connector.channel_adapter(vendor, ShippingAdapter).tracking_from_webhook(payload)
    if tracking is None:
        return []
    return ShippingRecords(connector.db, connector.clock.time).apply_tracking(tracking, conn)

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


def apply_tracking_webhook(
    connector: "Connector", scheme: str, payload: Any, conn: sqlite3.Connection | None = None
) -> list[StatusChange] | None:
    """Apply one verified tracking event.

    None when ``scheme`` is no shipping vendor's or the event is no tracking update.
    """
    if scheme not in vendors_for("shipping"):
        return None
    if isinstance(payload, (bytes, str)):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    from connectorctl.adapters.shipping.base import ShippingAdapter

    tracking = connector.channel_adapter(scheme, ShippingAdapter).tracking_from_webhook(payload)
    if tracking is None:
        return None
    return ShippingRecords(connector.db, connector.clock.time).apply_tracking(tracking, conn)

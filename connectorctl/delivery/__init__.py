"""Delivery tracking: vendors' reports as one event model, tied to what we sent; the suppression list.

>>> from connectorctl.delivery import timeline
>>> timeline(connector.db, correlation_id_or_vendor_message_id).entries
"""

from __future__ import annotations

from connectorctl.delivery.events import BounceType, DeliveryEvent, EventType
from connectorctl.delivery.queries import MessageFilter, Timeline, delivery_rates, list_messages, timeline

__all__ = [
    "BounceType",
    "DeliveryEvent",
    "EventType",
    "MessageFilter",
    "Timeline",
    "delivery_rates",
    "list_messages",
    "timeline",
]

"""Delivery tracking: vendors' reports as one event model, tied to what we sent; the suppression list.

>>> from connectorctl.delivery import timeline
>>> timeline(connector.db, correlation_id_or_vendor_message_id).entries
"""

from __future__ import annotations

from connectorctl.lazy import lazy_exports

_EVENTS, _QUERIES = "connectorctl.delivery.events", "connectorctl.delivery.queries"
_EXPORTS = {
    "BounceType": _EVENTS,
    "DeliveryEvent": _EVENTS,
    "EventType": _EVENTS,
    "MessageFilter": _QUERIES,
    "Timeline": _QUERIES,
    "delivery_rates": _QUERIES,
    "list_messages": _QUERIES,
    "timeline": _QUERIES,
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

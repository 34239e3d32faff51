"""One module per vendor: a verified webhook body in, normalized :class:`DeliveryEvent` values out.

Each module exposes ``VENDOR`` (the vendor slug our sends are logged under) and
``parse(body, received_at)``.  A payload that is not a delivery report (a
Twilio inbound SMS) gives no events; an event type a module does not know
becomes ``unknown`` and is kept.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectorctl.delivery.events import DeliveryEvent

log = logging.getLogger("connectorctl.delivery")

# webhook scheme -> module; the scheme names the vendor's signing method, the module its vocabulary
BY_SCHEME = {
    "mailgun": "connectorctl.delivery.vendors.mailgun",
    "mandrill": "connectorctl.delivery.vendors.mailchimp",
    "postmark": "connectorctl.delivery.vendors.postmark",
    "sendgrid": "connectorctl.delivery.vendors.sendgrid",
    "twilio": "connectorctl.delivery.vendors.twilio",
    "vonage": "connectorctl.delivery.vendors.vonage",
}


def parser_for(scheme: str) -> ModuleType | None:
    """The vendor module for a webhook scheme, or None when the scheme carries no delivery reports."""
    name = BY_SCHEME.get(scheme)
    return importlib.import_module(name) if name else None


def parse_events(scheme: str, body: bytes, received_at: float) -> "list[DeliveryEvent] | None":
    """The delivery events in a verified body; None when the scheme has no reports or the body
    is not one (the raw delivery is kept either way, unprocessed)."""
    module = parser_for(scheme)
    if module is None:
        return None
    try:
        return list(module.parse(body, received_at))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # verified, yet not the documented shape
        log.warning("%s delivery report not understood (%s: %s); kept unprocessed", scheme, type(exc).__name__, exc)
        return None

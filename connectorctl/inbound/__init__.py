"""Inbound mail: each vendor's inbound webhook turned into one normalized :class:`InboundMessage`.

``connectorctl serve`` accepts ``POST /api/connector/inbound/{service}`` (SendGrid
Inbound Parse, Mailgun routes, Postmark inbound, Mailchimp Transactional inbound
events), verifies it with the webhook layer, stores each message once (its
attachments through the storage role) and calls the hooks registered with
:func:`on_inbound` or in ``inbound.<service>.hooks``.
"""

from __future__ import annotations

from connectorctl.inbound.hooks import on_inbound
from connectorctl.inbound.message import InboundAttachment, InboundMessage

__all__ = ["InboundAttachment", "InboundMessage", "on_inbound"]

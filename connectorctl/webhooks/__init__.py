"""Webhook signature verification: one verifier per vendor scheme over a shared base.

>>> from connectorctl.webhooks import WebhookRequest, get_verifier
>>> verdict = get_verifier("github").verify(WebhookRequest(body, headers), [secret])
"""

from __future__ import annotations

from connectorctl.domain.roles import WebhookVerifier
from connectorctl.webhooks.base import Reason, SignedRequest, Verdict, Verifier, WebhookRejectedError, WebhookRequest
from connectorctl.webhooks.registry import SCHEMES, get_verifier

__all__ = [
    "Reason",
    "SCHEMES",
    "SignedRequest",
    "Verdict",
    "Verifier",
    "WebhookRejectedError",
    "WebhookRequest",
    "WebhookVerifier",
    "get_verifier",
]

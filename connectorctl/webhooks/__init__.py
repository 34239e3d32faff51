"""Webhook signature verification: one verifier per vendor scheme over a shared base.

>>> from connectorctl.webhooks import WebhookRequest, get_verifier
>>> verdict = get_verifier("github").verify(WebhookRequest(body, headers), [secret])
"""

from __future__ import annotations

from connectorctl.lazy import lazy_exports

_BASE = "connectorctl.webhooks.base"
_EXPORTS = {
    "Reason": _BASE,
    "SignedRequest": _BASE,
    "Verdict": _BASE,
    "Verifier": _BASE,
    "WebhookRejectedError": _BASE,
    "WebhookRequest": _BASE,
    "SCHEMES": "connectorctl.webhooks.registry",
    "get_verifier": "connectorctl.webhooks.registry",
    "WebhookVerifier": "connectorctl.domain.roles",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

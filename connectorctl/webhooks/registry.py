"""Scheme name -> verifier class, imported lazily (the CLI's start-up stays light)."""

from __future__ import annotations

import importlib
from typing import Any

from connectorctl.errors import ConfigurationError
from connectorctl.webhooks.base import Verifier

SCHEMES: dict[str, tuple[str, str]] = {
    "easypost": ("connectorctl.webhooks.easypost", "EasyPostVerifier"),
    "generic": ("connectorctl.webhooks.generic", "GenericHmacVerifier"),
    "github": ("connectorctl.webhooks.github", "GitHubVerifier"),
    "mailgun": ("connectorctl.webhooks.mailgun", "MailgunVerifier"),
    "mandrill": ("connectorctl.webhooks.mandrill", "MandrillVerifier"),
    "paypal": ("connectorctl.webhooks.paypal", "PayPalVerifier"),
    "postmark": ("connectorctl.webhooks.postmark", "PostmarkVerifier"),
    "sendgrid": ("connectorctl.webhooks.sendgrid", "SendGridVerifier"),
    "shippo": ("connectorctl.webhooks.shippo", "ShippoVerifier"),
    "standard": ("connectorctl.webhooks.standard", "StandardWebhooksVerifier"),
    "stripe": ("connectorctl.webhooks.stripe", "StripeVerifier"),
    "twilio": ("connectorctl.webhooks.twilio", "TwilioVerifier"),
    "vonage": ("connectorctl.webhooks.vonage", "VonageVerifier"),
}
GENERIC_OPTIONS = ("header", "algorithm", "encoding", "prefix", "signed_content", "timestamp_header", "id_header")


def get_verifier(scheme: str, **options: Any) -> Verifier:
    """A verifier for ``scheme``; options are tolerance_seconds, url, replay_window_seconds (+ generic ones)."""
    if scheme not in SCHEMES:
        raise ConfigurationError(f"unknown webhook scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    module, name = SCHEMES[scheme]
    cls = getattr(importlib.import_module(module), name)
    if scheme != "generic":  # vonage takes `algorithm` too: its accounts choose md5hash or an HMAC
        options = {
            k: v for k, v in options.items() if k not in GENERIC_OPTIONS or (scheme == "vonage" and k == "algorithm")
        }
    return cls(**{k: v for k, v in options.items() if v is not None})

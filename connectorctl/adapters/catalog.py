"""Which vendor slugs exist and which module declares each: a registry read lazily.

Kept import-free so that ``--help`` never pays for importing httpx or any
adapter module: a vendor module (and its :class:`~connectorctl.adapters.declaration.Vendor`
declaration, ``VENDOR``) is imported only when its slug is used.  A test or a
plugin registers a vendor of its own with :func:`register` (or by putting a
module path or a declaration into ``VENDORS``); no product file changes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from connectorctl.adapters.declaration import Vendor

# slug -> "module" whose ``VENDOR`` declares it ("module:NAME" when a module declares several), or a declaration
VENDORS: dict[str, Union[str, "Vendor"]] = {
    "console": "connectorctl.adapters.sinks:CONSOLE",
    "file": "connectorctl.adapters.sinks:FILE",
    "fake": "connectorctl.adapters.fake",
    "twilio": "connectorctl.adapters.sms.twilio",
    "vonage": "connectorctl.adapters.sms.vonage",
    "sendgrid": "connectorctl.adapters.email.sendgrid",
    "mailchimp": "connectorctl.adapters.email.mailchimp",
    "postmark": "connectorctl.adapters.email.postmark",
    "mailgun": "connectorctl.adapters.email.mailgun",
    "smtp": "connectorctl.adapters.email.smtp",
    "easypost": "connectorctl.adapters.shipping.easypost",
    "shippo": "connectorctl.adapters.shipping.shippo",
    "stripe": "connectorctl.adapters.payment.stripe",
    "paypal": "connectorctl.adapters.payment.paypal",
    "local": "connectorctl.adapters.storage.local",
    "s3": "connectorctl.adapters.storage.s3",
    "demo": "connectorctl.adapters.demo",
}

CHANNELS = ("email", "sms", "payment", "shipping", "storage")


def register(vendor: "Vendor") -> None:
    VENDORS[vendor.slug] = vendor


def declaration(slug: str) -> "Vendor | None":
    """The vendor's declaration, importing its module on first use; None for an unknown slug."""
    entry = VENDORS.get(slug)
    if entry is None or not isinstance(entry, str):
        return entry
    module, _, name = entry.partition(":")
    vendor: Vendor = getattr(importlib.import_module(module), name or "VENDOR")
    if vendor.slug != slug:
        raise LookupError(f"{entry}.VENDOR declares {vendor.slug!r}, registered as {slug!r}")
    return vendor


def known_slugs() -> list[str]:
    return sorted(VENDORS)


def vendors_for(channel: str) -> list[str]:
    """Slugs with an adapter for ``channel`` (imports every vendor module: for messages and listings, not hot paths)."""
    found = []
    for slug in known_slugs():
        vendor = declaration(slug)
        if vendor is not None and channel in vendor.channels:
            found.append(slug)
    return found


def owner_of_option(name: str) -> str | None:
    """The first vendor whose options class has the key ``name`` (for a key found in another vendor's section)."""
    from dataclasses import fields

    for slug in known_slugs():
        vendor = declaration(slug)
        if vendor is not None and name in {f.name for f in fields(vendor.options)}:
            return slug
    return None

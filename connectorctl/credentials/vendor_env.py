"""The vendors' own environment variables, the last place a credential (or sender) is looked for.

An application moving from the reference design keeps its ``.env``:
``SENDGRID_API_KEY``, ``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN``,
``MAIL_FROM_ADDRESS``... are used when nothing else is configured for that
vendor.  Anything configured wins: a stored credential (global or the
tenant's), or a ``vendors.<slug>.credentials`` ``env:`` reference.  A disabled
stored credential is configured too: it is never bypassed by the environment.

The names are declared by each vendor module (``env`` and ``sender_env`` of
its ``VENDOR``) and, for a sender every vendor of a channel shares, by
:data:`~connectorctl.adapters.declaration.CHANNEL_SENDER_ENV`.  Reading them
imports the vendor module asked about (a call to that vendor imports it
anyway); only ``creds list`` reads every vendor's.
"""

from __future__ import annotations

import os
from typing import Mapping

from connectorctl.errors import CredentialNotFoundError, CredentialUnreadableError


def credential_env(service: str) -> Mapping[str, str]:
    """Credential field -> environment variable, as the vendor declares them (nothing for an unknown slug)."""
    from connectorctl.adapters.catalog import declaration

    vendor = declaration(service)
    return vendor.env if vendor is not None else {}


def sender_env(scope: str) -> Mapping[str, str]:
    """Sender setting -> environment variable for a channel (``email``: shared by its vendors) or a vendor slug."""
    from connectorctl.adapters.catalog import CHANNELS, declaration
    from connectorctl.adapters.declaration import CHANNEL_SENDER_ENV

    if scope in CHANNELS:
        return CHANNEL_SENDER_ENV.get(scope, {})
    vendor = declaration(scope)
    return vendor.sender_env if vendor is not None else {}


def env_value(var: str, service: str, environ: Mapping[str, str] | None = None) -> str | None:
    """``$var`` as text, or None when unset or empty; undecodable bytes are one clear error."""
    value = (os.environ if environ is None else environ).get(var)
    if not value:
        return None
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes arrive as surrogates and would fail mid-request
            raise CredentialUnreadableError(f"${var} (for {service}) is not UTF-8 text", service=service) from None
    return value


def vendor_env_credentials(service: str, environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], str] | None:
    """The vendor's standard variables as credential fields plus their source (``env:A,env:B``), or None if unset."""
    names = credential_env(service)
    if not names:
        return None
    values = {field: env_value(var, service, environ) for field, var in names.items()}
    present = {field: v for field, v in values.items() if v is not None}
    if not present:
        return None
    if len(present) < len(names):
        missing = [names[f] for f in names if f not in present]
        found = [names[f] for f in present]
        raise CredentialNotFoundError(
            f"${', $'.join(found)} is set for {service} but ${', $'.join(missing)} is not",
            service=service,
            hint=f"export {missing[0]}=... (or store the credential: connectorctl creds set {service})",
        )
    return present, ",".join(f"env:{names[f]}" for f in present)


def sender_default(scope: str, name: str, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """``(value, "env:VAR")`` for a sender setting from the environment, or None."""
    var = sender_env(scope).get(name)
    value = env_value(var, scope, environ) if var else None
    return (value, f"env:{var}") if value is not None and var else None

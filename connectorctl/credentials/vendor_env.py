"""The vendors' own environment variables, the last place a credential (or sender) is looked for.

An application moving from the reference design keeps its ``.env``:
``SENDGRID_API_KEY``, ``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN``,
``MAIL_FROM_ADDRESS``... are used when nothing else is configured for that
vendor.  Anything configured wins: a stored credential (global or the
tenant's), or a ``vendors.<slug>.credentials`` ``env:`` reference.  A disabled
stored credential is configured too: it is never bypassed by the environment.
"""

from __future__ import annotations

import os
from typing import Mapping

from connectorctl.errors import CredentialNotFoundError, CredentialUnreadableError

# vendor slug -> credential field -> environment variable
VENDOR_ENV: dict[str, dict[str, str]] = {
    "sendgrid": {"api_key": "SENDGRID_API_KEY"},
    "mailchimp": {"api_key": "MAILCHIMP_API_KEY"},
    "postmark": {"api_key": "POSTMARK_SERVER_TOKEN"},
    "mailgun": {"api_key": "MAILGUN_API_KEY"},
    "smtp": {"username": "MAIL_USERNAME", "password": "MAIL_PASSWORD"},
    "twilio": {"username": "TWILIO_ACCOUNT_SID", "password": "TWILIO_AUTH_TOKEN"},
    "vonage": {"username": "VONAGE_API_KEY", "password": "VONAGE_API_SECRET"},
}
# sender settings by channel (email) or vendor (sms), used when neither the message nor vendors.<slug> sets them
SENDER_ENV: dict[str, dict[str, str]] = {
    "email": {"from_email": "MAIL_FROM_ADDRESS", "from_name": "MAIL_FROM_NAME"},
    "twilio": {"from_number": "TWILIO_FROM_NUMBER"},
    "vonage": {"from_number": "VONAGE_FROM_NUMBER"},
}


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
    names = VENDOR_ENV.get(service)
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
    var = SENDER_ENV.get(scope, {}).get(name)
    value = env_value(var, scope, environ) if var else None
    return (value, f"env:{var}") if value is not None and var else None

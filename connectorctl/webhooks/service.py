"""From configuration to a decision: which verifier, which secrets, and the replay check.

Secrets are resolved on every delivery (env vars or the credential store), so
rotating one takes effect without a restart; several may be active at once.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from connectorctl.errors import ConfigurationError, InvalidInputError
from connectorctl.webhooks.base import Reason, Verdict, Verifier, WebhookRequest
from connectorctl.webhooks.registry import GENERIC_OPTIONS, get_verifier

if TYPE_CHECKING:
    from connectorctl.config import WebhookSettings
    from connectorctl.gateway import Connector
    from connectorctl.webhooks.replay import ReplayStore

CREDENTIAL_FIELDS = ("secret", "api_key", "token", "password")


def verifier_for(hook: "WebhookSettings", **extra: Any) -> Verifier:
    """The endpoint's verifier; ``extra`` carries options that are not settings (paypal's signing key for ``sign``)."""
    options = {name: getattr(hook, name) for name in GENERIC_OPTIONS} | extra
    if hook.allow_sha1:
        options["allow_sha1"] = True
    return get_verifier(
        hook.scheme,
        tolerance_seconds=hook.tolerance_seconds,
        url=hook.url,
        replay_window_seconds=hook.replay_window_seconds,
        cert_origins=hook.cert_origins,
        **options,
    )


def endpoint_settings(connector: "Connector", service: str) -> "WebhookSettings":
    hook = connector.settings.webhooks.get(service)
    if hook is None:
        raise ConfigurationError(
            f"no webhook endpoint {service!r} is configured", hint=f"add webhooks.{service} to the config file"
        )
    return hook


def env_secrets(names: Sequence[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the named env vars; each must be set (its name, never its value, is reported)."""
    env = os.environ if environ is None else environ
    values = []
    for name in names:
        value = env.get(name, "")
        if not value.strip():
            raise InvalidInputError(f"environment variable {name} is not set or empty")
        if not value.isascii() and not _utf8(value):  # undecodable bytes arrive as surrogates
            raise InvalidInputError(f"environment variable {name} is not UTF-8 text")
        values.append(value.strip())
    return values


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def creds_secret(connector: "Connector", service: str) -> str:
    """The webhook secret stored for ``service``: its secret, api_key, token or password field."""
    creds = connector.credentials.get(service)
    for name in CREDENTIAL_FIELDS:
        value = creds.data.get(name)
        if value:
            return value
    raise InvalidInputError(f"credentials for {service} have none of the fields {', '.join(CREDENTIAL_FIELDS)}")


def resolve_secrets(
    connector: "Connector", hook: "WebhookSettings", environ: Mapping[str, str] | None = None
) -> list[str]:
    env = os.environ if environ is None else environ
    secrets = [env[n].strip() for n in hook.secret_env if env.get(n, "").strip()]
    if hook.secrets_from_creds:
        secrets.append(creds_secret(connector, hook.secrets_from_creds))
    if not secrets:
        raise ConfigurationError(
            f"no webhook secret available (none of {', '.join(hook.secret_env) or 'the env vars'} is set)"
        )
    return secrets


def check_replay(verdict: Verdict, verifier: Verifier, store: "ReplayStore", service: str, now: float) -> Verdict:
    """Turn an accepted verdict into a ``replay`` one when its delivery id was already seen."""
    if not verdict.ok or not verdict.event_id:
        return verdict
    if store.check_and_record(service, verdict.event_id, now=now, expires_at=verifier.replay_expiry(verdict, now)):
        return verdict
    return dataclasses.replace(
        verdict, ok=False, reason=Reason.REPLAY, detail=f"delivery {verdict.event_id} was already accepted"
    )


def verify_delivery(
    verifier: Verifier,
    request: WebhookRequest,
    secrets: Sequence[str],
    *,
    service: str,
    store: "ReplayStore | None",
    now: float,
) -> Verdict:
    """Signature, freshness, then (when a store is given) replay."""
    verdict = verifier.verify(request, secrets, now=now)
    return check_replay(verdict, verifier, store, service, now) if store is not None else verdict

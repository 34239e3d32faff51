"""OAuth2 token grants (RFC 6749 §4.4 client credentials, §6 refresh token) over httpx.

The token call goes through the connector's pipeline like any vendor call, so
it is rate limited, retried when transient and logged, with the client secret,
refresh token and new access token scrubbed.  A refusal from the token endpoint
(400 ``invalid_grant``, 401 ``invalid_client``) is final: it becomes
:class:`CredentialRefreshError` and is not retried.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Mapping

from connectorctl.errors import (
    ConnectionFailedError,
    ConnectorError,
    CredentialRefreshError,
    VendorTimeoutError,
    VendorUnavailableError,
)
from connectorctl.resilience.clock import Clock
from connectorctl.settings import Settings

MAX_TOKEN_LIFETIME_S = 10 * 365 * 86400.0  # longer "expires_in" values are clamped (the expiry must stay storable)

if TYPE_CHECKING:
    import httpx

    from connectorctl.resilience.pipeline import Pipeline


class TokenEndpoint:
    """What renewing a token needs: settings (``token_url``, timeouts), the clock, the pipeline and
    an HTTP client per vendor.  The pipeline is built on first use (reading a stored key needs none)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        pipeline: Callable[[], "Pipeline"],
        http_client: Callable[[str], "httpx.Client"],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._pipeline = pipeline
        self.http_client = http_client

    @cached_property
    def pipeline(self) -> "Pipeline":
        return self._pipeline()


def grant_for(fields: Mapping[str, str]) -> str | None:
    """Which grant can renew these fields (None: no refresh path)."""
    if fields.get("refresh_token"):
        return "refresh_token"
    if fields.get("client_id") and fields.get("client_secret"):
        return "client_credentials"
    return None


def fetch_token(
    endpoint: TokenEndpoint, service: str, tenant_id: str | None, fields: Mapping[str, str]
) -> tuple[dict[str, str], float | None]:
    """Run the grant; returns the updated fields and the new expiry (epoch seconds)."""
    import httpx

    from connectorctl.resilience.pipeline import Call, VendorResponse

    grant = grant_for(fields)
    token_url = endpoint.settings.vendor(service).token_url
    if grant is None:
        raise CredentialRefreshError(
            f"{service}: the OAuth2 credential has no refresh token and no client id/secret to renew it",
            service=service,
            hint=f"connectorctl creds set {service} --auth-method oauth2",
        )
    if not token_url:
        raise CredentialRefreshError(
            f"{service}: vendors.{service}.token_url is not configured, so the access token cannot be renewed",
            service=service,
            hint=f"add vendors.{service}.token_url to the config file",
        )
    form = {"grant_type": grant}
    if grant == "refresh_token":
        form["refresh_token"] = fields["refresh_token"]
    basic = None
    if fields.get("client_id") and fields.get("client_secret"):
        basic = httpx.BasicAuth(fields["client_id"], fields["client_secret"])
    elif fields.get("client_id"):
        form["client_id"] = fields["client_id"]
    secrets = tuple(v for k, v in fields.items() if k != "client_id" and v)
    now = endpoint.clock.time()

    def attempt() -> VendorResponse:
        try:
            with endpoint.http_client(service) as client:
                response = client.post(
                    token_url, data=form, auth=basic or httpx.USE_CLIENT_DEFAULT, headers={"Accept": "application/json"}
                )
        except httpx.TimeoutException:
            raise VendorTimeoutError(f"{service}: token endpoint did not answer in time", service=service) from None
        except httpx.TransportError as exc:
            raise ConnectionFailedError(
                f"{service}: cannot reach the token endpoint ({type(exc).__name__})",
                service=service,
                vendor_processed=False,
            ) from None
        body = _json(response)
        if response.status_code >= 500:
            raise VendorUnavailableError(
                f"{service}: token endpoint answered HTTP {response.status_code}",
                service=service,
                http_status=response.status_code,
            )
        if not response.is_success:
            error = body.get("error") if isinstance(body, dict) else None
            raise CredentialRefreshError(
                f"{service}: token endpoint refused the {grant} grant (HTTP {response.status_code}"
                + (f", {error})" if isinstance(error, str) else ")"),
                service=service,
                http_status=response.status_code,
                hint=f"store fresh credentials: connectorctl creds set {service} --auth-method oauth2",
            )
        return VendorResponse(body, http_status=response.status_code)

    # Another client-credentials token is harmless; a refresh-token grant may rotate the token,
    # so it is retried only when unsent.
    call = Call(
        service,
        "oauth2_token",
        token_url,
        "POST",
        request_data={"grant_type": grant},
        tenant_id=tenant_id,
        secrets=secrets,
        idempotent=grant == "client_credentials",
    )
    try:
        body = endpoint.pipeline.execute(call, attempt).value
    except CredentialRefreshError:
        raise
    except ConnectorError as exc:
        raise CredentialRefreshError(
            f"{service}: could not renew the access token: {exc.message}", service=service
        ) from None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise CredentialRefreshError(f"{service}: token endpoint answered without an access_token", service=service)
    updated = dict(fields)
    updated["access_token"] = token
    if isinstance(body.get("refresh_token"), str) and body["refresh_token"]:
        updated["refresh_token"] = body["refresh_token"]  # the server rotated it
    expires_in = body.get("expires_in")
    expires_at = (
        now + float(expires_in)
        if isinstance(expires_in, (int, float)) or (isinstance(expires_in, str) and expires_in.isdigit())
        else None
    )
    if expires_at is not None:  # nan or an absurd lifetime would fail storing the renewed (maybe rotated) tokens
        expires_at = now + min(max(expires_at - now, 0.0), MAX_TOKEN_LIFETIME_S) if math.isfinite(expires_at) else None
    return updated, expires_at


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None

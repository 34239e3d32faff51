"""Bearer-token gate and the "who may listen where" rule.

Loopback needs no token; any other bind address needs one (``serve`` refuses
to start without it).  The token comes from ``$CONNECTORCTL_API_TOKEN`` or
from the credential store entry ``connectorctl-api`` (field ``token``).  It is
compared in constant time and never logged or echoed.  Webhook and inbound-mail
routes are exempt: vendors authenticate those with their own signatures.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from connectorctl.api.errors import error_response

TOKEN_ENV = "CONNECTORCTL_API_TOKEN"
TOKEN_SERVICE = "connectorctl-api"
EXEMPT_PREFIXES = ("/api/connector/webhooks/", "/api/connector/inbound/")


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(connector: Any) -> tuple[str | None, str]:
    """(token, where it came from).  A missing store or entry is simply "no token"."""
    from connectorctl.errors import ConnectorctlError

    env = os.environ.get(TOKEN_ENV, "")
    if env.strip():
        return env.strip(), f"env:{TOKEN_ENV}"
    try:
        creds = connector.credentials.get(TOKEN_SERVICE)
        token = creds.data.get("token") or creds.data.get("api_key")
    except (ConnectorctlError, ImportError, LookupError):
        return None, "none"
    except Exception as exc:  # noqa: BLE001 - an unreadable store means "no token"; the caller decides
        return None, f"credential store unreadable ({type(exc).__name__})"
    return (str(token), f"credential store ({TOKEN_SERVICE})") if token else (None, "none")


class BearerAuth:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on every request)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                given = value
                break
        if not given:
            response = _denied("missing bearer token: send Authorization: Bearer <token>")
        elif not hmac.compare_digest(given, self._expected):
            response = _denied("invalid bearer token")
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def _denied(message: str) -> Any:
    return error_response(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="connectorctl"'})

"""The monitoring HTTP API behind ``connectorctl serve`` (Starlette + uvicorn)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette


def create_app(connector: Any, **options: Any) -> "Starlette":
    """Build the ASGI app for ``connector``; see :func:`connectorctl.api.app.create_app` for the options."""
    from connectorctl.api.app import create_app as build

    return build(connector, **options)


def from_environment() -> "Starlette":
    """The app for any ASGI server: ``uvicorn --factory connectorctl.api:from_environment``.

    The installation is the one the CLI would use (``$CONNECTORCTL_HOME``,
    ``$CONNECTORCTL_CONFIG``); the bearer token is required exactly when one is
    configured (``$CONNECTORCTL_API_TOKEN`` or the ``connectorctl-api`` credential).
    Unlike ``connectorctl serve``, the server's bind address is not checked here.
    """
    from connectorctl.api.auth import resolve_token
    from connectorctl.gateway import Connector

    connector = Connector()
    token, _ = resolve_token(connector)
    return create_app(connector, token=token, close_connector=True)


__all__ = ["create_app", "from_environment"]

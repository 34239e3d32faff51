"""The monitoring HTTP API behind ``connectorctl serve`` (Starlette + uvicorn)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette


def create_app(connector: Any, **options: Any) -> "Starlette":
    """Build the ASGI app for ``connector``; see :func:`connectorctl.api.app.create_app` for the options."""
    from connectorctl.api.app import create_app as build

    return build(connector, **options)


__all__ = ["create_app"]

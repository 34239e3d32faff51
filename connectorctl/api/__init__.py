"""The monitoring HTTP API behind ``connectorctl serve`` (Starlette + uvicorn)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette


def create_app(connector: Any, *, token: str | None = None, status_fresh_seconds: float = 1.0, db_threads: int | None = None) -> "Starlette":
    """Build the ASGI app for ``connector``; see :func:`connectorctl.api.app.create_app`."""
    from connectorctl.api.app import create_app as build

    return build(connector, token=token, status_fresh_seconds=status_fresh_seconds, db_threads=db_threads)


__all__ = ["create_app"]

"""Every failure the API returns is one small JSON object, never a traceback.

Body: ``{"error": {"code": "...", "message": "..."}}`` (plus ``hint`` when the
error has one).  The ``code`` is the same stable snake_case string the CLI and
the integration log use, so clients can branch on it.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from connectorctl.errors import ConnectorctlError, InvalidInputError, StateStoreError

log = logging.getLogger("connectorctl.api")


class NotFoundError(InvalidInputError):
    """A path or a named thing (a service) that does not exist: HTTP 404."""

    code = "not_found"


class UnauthorizedError(InvalidInputError):
    """Missing or wrong bearer token: HTTP 401."""

    code = "unauthorized"


_HTTP_CODES = {400: "invalid_input", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}


def error_response(
    status: int, code: str, message: str, hint: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if hint:
        body["hint"] = hint
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def status_for(exc: ConnectorctlError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, UnauthorizedError):
        return 401
    if isinstance(exc, StateStoreError):
        return 503
    if isinstance(exc, InvalidInputError):
        return 400
    return 500


async def on_connectorctl_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConnectorctlError)
    status = status_for(exc)
    if status >= 500:
        log.warning("%s %s failed: [%s] %s", request.method, request.url.path, exc.code, exc.message)
    headers = {"WWW-Authenticate": 'Bearer realm="connectorctl"'} if status == 401 else None
    return error_response(status, exc.code, exc.message, exc.hint, headers)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = (
        exc.detail
        if exc.status_code not in (404, 405)
        else (
            f"no such endpoint: {request.url.path}"
            if exc.status_code == 404
            else f"{request.method} is not allowed on {request.url.path}"
        )
    )
    return error_response(exc.status_code, code, str(message), headers=getattr(exc, "headers", None))


async def on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """Last line of defence: log the type server-side, tell the client nothing internal."""
    log.error("%s %s: unexpected %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


EXCEPTION_HANDLERS = {
    ConnectorctlError: on_connectorctl_error,
    HTTPException: on_http_error,
    Exception: on_unexpected_error,
}

"""HTTP endpoints for delivery tracking, mounted by ``connectorctl serve`` beside the monitoring API.

Plain Starlette routes mounted by :func:`connectorctl.api.create_app`; their
reads run in the monitoring API's heavy-read lane (worker threads, never the
event loop), so they cannot crowd out health and status probes.  Same result
objects as the CLI (``messages``, ``metrics``, ``suppressions``).  Bad query
parameters are 400s through the app's error handlers.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Awaitable, Callable

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from connectorctl.gateway import Connector


Reader = Callable[..., Awaitable[Any]]  # the monitoring API's read(fn) running fn(db, settings) off the loop


def delivery_routes(connector: "Connector", read: Reader) -> list["Route"]:
    from starlette.routing import Route

    api = DeliveryApi(connector, read)
    return [
        Route("/api/connector/messages", api.messages, methods=["GET"]),
        Route("/api/connector/messages/{ident}", api.message, methods=["GET"]),
        Route("/api/connector/delivery", api.rates, methods=["GET"]),
        Route("/api/connector/suppressions", api.suppressions, methods=["GET"]),
    ]


class DeliveryApi:
    def __init__(self, connector: "Connector", read: Reader) -> None:
        self.connector = connector
        self._read = read

    async def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(db, *args, **kwargs)`` in a worker thread of the heavy-read lane."""
        return await self._read(lambda db, _settings: fn(db, *args, **kwargs))

    def _filter(self, request: "Request", *, default_from: str = "") -> Any:
        from connectorctl.api import params
        from connectorctl.delivery.queries import MessageFilter

        q = request.query_params
        now = datetime.fromtimestamp(self.connector.clock.time(), timezone.utc)
        start = params.moment(q, "from", default_from, now) if q.get("from") or default_from else None
        end = params.moment(q, "to", "now", now) if q.get("to") or default_from else None
        params.ordered(start, end, ("from", "to"))
        return MessageFilter(
            vendor=params.text(q, "service"),
            tenant_id=params.text(q, "tenant_id"),
            delivery=params.text(q, "delivery"),
            since=start,
            until=end,
        )

    async def messages(self, request: "Request") -> "JSONResponse":
        from starlette.responses import JSONResponse

        from connectorctl.api import params
        from connectorctl.delivery.queries import list_messages

        limit, offset = params.limit_offset(request.query_params)
        rows = await self.read(list_messages, self._filter(request), limit, offset)
        return JSONResponse({"data": rows, "meta": {"limit": limit, "offset": offset, "count": len(rows)}})

    async def message(self, request: "Request") -> "JSONResponse":
        from starlette.responses import JSONResponse

        from connectorctl.api.errors import error_response
        from connectorctl.delivery.queries import timeline

        ident = request.path_params["ident"]
        found = await self.read(timeline, ident)
        if found is None:
            return error_response(404, "not_found", f"no sent message with id {ident!r}")
        return JSONResponse(found.to_dict())

    async def rates(self, request: "Request") -> "JSONResponse":
        from starlette.responses import JSONResponse

        from connectorctl.delivery.queries import delivery_rates
        from connectorctl.store.queries import to_iso

        flt = self._filter(request, default_from="-7days")
        rows = await self.read(delivery_rates, flt)
        return JSONResponse({"period": {"from": to_iso(flt.since), "to": to_iso(flt.until)}, "vendors": rows})

    async def suppressions(self, request: "Request") -> "JSONResponse":
        from starlette.responses import JSONResponse

        from connectorctl.api import params
        from connectorctl.delivery.suppressions import list_suppressions

        q = request.query_params
        limit, _ = params.limit_offset(q)
        rows = await self.read(
            list_suppressions, params.text(q, "tenant_id"), reason=params.text(q, "reason"), limit=limit
        )
        return JSONResponse({"data": [s.to_dict() for s in rows], "meta": {"limit": limit, "count": len(rows)}})


def with_delivery(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document plus these endpoints."""
    from connectorctl.api.openapi import _err, _q
    from connectorctl.api.params import MAX_TEXT
    from connectorctl.delivery.queries import DELIVERY_STATES
    from connectorctl.store.queries import DEFAULT_LIMIT, MAX_LIMIT

    text = {"type": "string", "maxLength": MAX_TEXT}
    ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    common = {
        "400": _err("Bad parameter"),
        "401": _err("Missing or wrong bearer token"),
        "503": _err("The state database is unusable"),
    }
    window = [
        _q("from", {"type": "string"}, "Sent at or after: ISO 8601 or relative (-30days, 7d)."),
        _q("to", {"type": "string"}, "Sent at or before: ISO 8601 or relative."),
    ]
    paths = dict(document["paths"])
    paths["/api/connector/messages"] = {
        "get": {
            "operationId": "listMessages",
            "summary": "Sent messages (one row per recipient) with their furthest delivery state, newest first.",
            "parameters": [
                _q("delivery", {"type": "string", "enum": [*DELIVERY_STATES, "none"]}, "Only this delivery state."),
                _q("service", text, "Vendor slug."),
                _q("tenant_id", text, "Tenant."),
                *window,
                _q(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                    "Page size.",
                ),
                _q("offset", {"type": "integer", "minimum": 0, "default": 0}, "Rows to skip."),
            ],
            "responses": {"200": ok, **common},
        }
    }
    paths["/api/connector/messages/{ident}"] = {
        "get": {
            "operationId": "messageTimeline",
            "summary": "One send's timeline: attempts, acceptance, delivery events in order.",
            "parameters": [
                {
                    "name": "ident",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "Our correlation id or the vendor's message id.",
                }
            ],
            "responses": {"200": ok, "404": _err("No such message"), **common},
        }
    }
    paths["/api/connector/delivery"] = {
        "get": {
            "operationId": "deliveryRates",
            "summary": "Delivery, bounce and complaint rates per vendor (default: the last 7 days).",
            "parameters": [_q("service", text, "Vendor slug."), _q("tenant_id", text, "Tenant."), *window],
            "responses": {"200": ok, **common},
        }
    }
    paths["/api/connector/suppressions"] = {
        "get": {
            "operationId": "listSuppressions",
            "summary": "Suppressed recipients of a tenant, newest first.",
            "parameters": [
                _q("tenant_id", text, "Tenant (default: the default tenant)."),
                _q("reason", text, "Only this reason."),
                _q("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}, "Rows."),
            ],
            "responses": {"200": ok, **common},
        }
    }
    return {**document, "paths": paths}

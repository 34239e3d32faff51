"""The Starlette application: the reference design's monitoring endpoints.

Every SQLite read runs in a worker thread so the event loop never blocks on
the file; each worker thread has its own connection (``StateDB`` is
per-thread).  Heavy reads (logs, metrics, Prometheus) share anyio's default
pool (``db_threads`` wide); health and the status snapshot have their own two
threads so they answer quickly while heavy reads queue.  Queries are the shared
read-side contract in ``store/queries.py`` plus the helpers in ``api/status.py``.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Callable, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connectorctl.api import params, status
from connectorctl.api.errors import EXCEPTION_HANDLERS, NotFoundError
from connectorctl.api.openapi import DOCUMENT, with_webhooks
from connectorctl.api.snapshot import Snapshot
from connectorctl.store import queries
from connectorctl.store.db import StateDB

log = logging.getLogger("connectorctl.api")
_JSON_COLUMNS = ("request_data", "response_data")
T = TypeVar("T")


def log_entry(row: dict[str, Any]) -> dict[str, Any]:
    """A log row as the API shows it: stored JSON payloads become JSON values."""
    for column in _JSON_COLUMNS:
        raw = row.get(column)
        if isinstance(raw, str):
            try:
                row[column] = json.loads(raw)
            except ValueError:
                pass  # stored as plain text: show it as a string
    return row


class Api:
    """Endpoint handlers bound to one :class:`~connectorctl.gateway.Connector`."""

    def __init__(self, connector: Any, *, status_fresh_seconds: float = 1.0) -> None:
        self.connector = connector
        self.settings = connector.settings
        self.document: dict[str, Any] = DOCUMENT
        self._quick_limiter: Any = None
        self._status = Snapshot(self._compute_status, fresh_seconds=status_fresh_seconds, stale_seconds=2 * status_fresh_seconds)
        from connectorctl.api.prom import build_registry

        self.registry = build_registry(self.db, lambda: status.configured_services(self.settings))

    async def quick(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a cheap, bounded read on its own small thread pool.

        Health checks and the status snapshot must not queue behind heavy reads
        (metrics over long periods) on the shared pool: load balancers time out.
        """
        import anyio.to_thread

        if self._quick_limiter is None:
            self._quick_limiter = anyio.CapacityLimiter(2)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=self._quick_limiter)

    def db(self) -> StateDB:
        return self.connector.db  # opening may raise StateStoreError -> 503

    def now(self) -> Any:
        return status.now_utc(self.connector.clock.time)

    def _require_known(self, service: str) -> None:
        if not status.is_known_service(self.db(), self.settings, service):
            raise NotFoundError(f"unknown service {service!r}", hint="use a configured vendor slug, e.g. " + ", ".join(status.configured_services(self.settings)[:3]))

    async def logs(self, request: Request) -> Response:
        q = request.query_params
        limit, offset = params.limit_offset(q)
        date_from, date_to = params.iso_date(q, "date_from"), params.iso_date(q, "date_to")
        params.ordered(date_from, date_to, ("date_from", "date_to"))
        flt = queries.LogFilter(
            service=params.text(q, "service"), status=params.status(q), tenant_id=params.text(q, "tenant_id"),
            since=date_from, until=date_to,
        )

        def read() -> bytes:
            if flt.service is not None:
                self._require_known(flt.service)
            rows = [log_entry(r) for r in queries.list_logs(self.db(), flt, limit, offset)]
            # Serialised here, off the event loop: a page of 500 rows would otherwise stall
            # every other request (health, cached status) while it is encoded.
            return _json_bytes({"data": rows, "meta": {"limit": limit, "offset": offset, "count": len(rows)}})

        return Response(await run_in_threadpool(read), media_type="application/json")

    async def metrics(self, request: Request) -> JSONResponse:
        service = request.path_params["service"]
        q = request.query_params
        now = self.now()
        start = params.moment(q, "from", "-7days", now)
        end = params.moment(q, "to", "now", now)
        params.ordered(start, end, ("from", "to"))

        def read() -> dict[str, Any]:
            self._require_known(service)
            return queries.metrics(self.db(), service, start, end)

        numbers = await run_in_threadpool(read)
        return JSONResponse({
            "service": service,
            "period": {"from": status.period_text(start), "to": status.period_text(end)},
            "metrics": numbers,
        })

    async def health(self, request: Request) -> JSONResponse:
        ok, reason = await self.quick(status.database_check, self.db)
        body: dict[str, Any] = {
            "status": "healthy" if ok else "unhealthy",
            "timestamp": status.timestamp(self.now()),
            "services": {"database": "connected" if ok else "disconnected", "connector": "operational"},
        }
        if reason:
            body["error"] = reason
        return JSONResponse(body, status_code=200 if ok else 503)

    async def _compute_status(self) -> bytes:
        def compute() -> bytes:
            return _json_bytes(status.service_status(self.db(), self.settings, self.now()))

        return await self.quick(compute)

    async def status(self, request: Request) -> Response:
        """Shared snapshot (see api/snapshot.py): pollers never queue behind each other or the database."""
        return Response(await self._status.get(), media_type="application/json")

    async def prometheus(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        from connectorctl.api.prom import exposition

        body = await run_in_threadpool(exposition, self.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> JSONResponse:
        return JSONResponse(self.document)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/connector/logs", self.logs, methods=["GET"]),
            Route("/api/connector/metrics/{service}", self.metrics, methods=["GET"]),
            Route("/api/connector/health", self.health, methods=["GET"]),
            Route("/api/connector/status", self.status, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]


def _lifespan(db_threads: int | None) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        if db_threads:
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = db_threads
        yield

    return lifespan


def webhook_routes(connector: Any) -> list[BaseRoute]:
    """``POST /api/connector/webhooks/{service}`` when the webhooks package is installed."""
    try:
        from connectorctl.webhooks.receiver import webhook_routes as build
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("connectorctl.webhooks"):
            return []
        raise
    return list(build(connector))


def create_app(connector: Any, *, token: str | None = None, status_fresh_seconds: float = 1.0, db_threads: int | None = None) -> Starlette:
    """The ASGI app.  With ``token`` every non-webhook request needs ``Authorization: Bearer <token>``.

    ``status_fresh_seconds``: how old a shared ``/api/connector/status`` snapshot may be before it is recomputed.
    ``db_threads``: worker threads for database reads (anyio's default is 40).  Fewer threads
    compete less with the event loop for the GIL, which keeps cheap requests fast under load.
    """
    middleware = []
    if token:
        from connectorctl.api.auth import BearerAuth

        middleware.append(Middleware(BearerAuth, token=token))
    api = Api(connector, status_fresh_seconds=status_fresh_seconds)
    hooks = webhook_routes(connector)
    if hooks:
        api.document = with_webhooks(DOCUMENT)
    app = Starlette(routes=[*api.routes(), *hooks], middleware=middleware, exception_handlers=EXCEPTION_HANDLERS,
                    lifespan=_lifespan(db_threads))
    app.state.api = api
    return app


__all__ = ["Api", "create_app"]


def _json_bytes(body: Any) -> bytes:
    """The same bytes Starlette's JSONResponse would send."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")

"""The Starlette application: the reference design's monitoring endpoints.

Blocking SQLite reads run in worker threads (anyio's, which Starlette uses),
each thread on its own SQLite connection (``StateDB`` keeps one per thread; WAL
lets them read while other processes write).  The event loop only routes and
copies bytes.  Two capacity limits keep what probes wait for apart from heavy
reads:

* quick: the status snapshot and the health check, so a load balancer's probe
  never queues behind a slow metrics query;
* heavy: logs, metrics, Prometheus.  Few threads: their Python half
  (row conversion, JSON) holds the GIL, and every extra thread holding it makes
  the event loop wait longer for its turn.

``/api/connector/status``, which pollers hit most, is answered from a shared
snapshot (``api/snapshot.py``) computed at start-up and refreshed in the
background.  The read functions are in ``api/reads.py``, built on the shared
read-side contract in ``store/queries.py``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connectorctl.api import params, prom, reads, status
from connectorctl.api.errors import EXCEPTION_HANDLERS
from connectorctl.api.openapi import DOCUMENT, with_webhooks
from connectorctl.api.snapshot import Snapshot
from connectorctl.errors import StateStoreError
from connectorctl.store import queries

T = TypeVar("T")
HEAVY_THREADS = 4
QUICK_THREADS = 2
STATUS_STALE_SECONDS = 30.0  # past this a status request waits for a fresh snapshot rather than show an old one
log = logging.getLogger("connectorctl.api")


class Api:
    """Endpoint handlers bound to one :class:`~connectorctl.gateway.Connector`."""

    def __init__(self, connector: Any, *, status_fresh_seconds: float = 1.0) -> None:
        self.connector = connector
        self.settings = connector.settings
        self.document: dict[str, Any] = DOCUMENT
        self._status = Snapshot(
            self._compute_status,
            fresh_seconds=status_fresh_seconds,
            stale_seconds=max(STATUS_STALE_SECONDS, 2 * status_fresh_seconds) if status_fresh_seconds else 0,
        )
        self._keepers: list[asyncio.Future[None]] = []
        self._lanes: dict[str, CapacityLimiter] = {}

    async def read(self, fn: Callable[..., T], *args: Any, lane: str = "heavy") -> T:
        """``fn(db, settings, *args)`` in a worker thread (opening the database may raise StateStoreError -> 503)."""
        if not self._lanes:  # limiters belong to the running event loop
            self._lanes = {"heavy": CapacityLimiter(HEAVY_THREADS), "quick": CapacityLimiter(QUICK_THREADS)}
        return await anyio.to_thread.run_sync(
            lambda: fn(self.connector.db, self.settings, *args), limiter=self._lanes[lane]
        )

    def now(self) -> Any:
        return status.now_utc(self.connector.clock.time)

    async def logs(self, request: Request) -> Response:
        q = request.query_params
        limit, offset = params.limit_offset(q)
        date_from, date_to = params.iso_date(q, "date_from"), params.iso_date(q, "date_to")
        params.ordered(date_from, date_to, ("date_from", "date_to"))
        flt = queries.LogFilter(
            service=params.text(q, "service"),
            status=params.status(q),
            tenant_id=params.text(q, "tenant_id"),
            since=date_from,
            until=date_to,
        )
        return Response(await self.read(reads.logs_page, flt, limit, offset), media_type="application/json")

    async def metrics(self, request: Request) -> JSONResponse:
        service = request.path_params["service"]
        q = request.query_params
        now = self.now()
        start = params.moment(q, "from", "-7days", now)
        end = params.moment(q, "to", "now", now)
        params.ordered(start, end, ("from", "to"))

        numbers = await self.read(reads.service_metrics, service, start, end)
        return JSONResponse(
            {
                "service": service,
                "period": {"from": status.timestamp(start), "to": status.timestamp(end)},
                "metrics": numbers,
            }
        )

    async def health(self, request: Request) -> JSONResponse:
        try:
            ok, reason = await self.read(reads.database_check, lane="quick")
        except StateStoreError as exc:  # the file would not open: unusable
            ok, reason = False, exc.message
        body: dict[str, Any] = {
            "status": "healthy" if ok else "unhealthy",
            "timestamp": status.timestamp(self.now()),
            "services": {"database": "connected" if ok else "disconnected", "connector": "operational"},
        }
        if reason:
            body["error"] = reason
        return JSONResponse(body, status_code=200 if ok else 503)

    async def outbox(self, request: Request) -> JSONResponse:
        return JSONResponse(await self.read(reads.outbox_depth, self.now(), lane="quick"))

    async def _compute_status(self) -> bytes:
        return await self.read(reads.status_body, self.now(), lane="quick")

    async def status(self, request: Request) -> Response:
        """Shared snapshot (see api/snapshot.py): pollers never queue behind each other or the database."""
        return Response(await self._status.get(), media_type="application/json")

    async def prometheus(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(await self.read(prom.scrape), media_type=CONTENT_TYPE_LATEST)

    async def start(self) -> None:
        """Compute the status snapshot now and keep it current in the background: a poller never waits for it."""
        if self._status.fresh_seconds > 0:
            self._keepers = [
                asyncio.ensure_future(self._keep(self._status, self._status.fresh_seconds, "status snapshot"))
            ]

    def stop(self) -> None:
        for keeper in self._keepers:
            keeper.cancel()

    @staticmethod
    async def _keep(snapshot: Snapshot[Any], every: float, what: str) -> None:
        while True:
            try:
                await snapshot.get()
            except Exception as exc:  # noqa: BLE001 - the next request or round tries again
                log.warning("background %s failed (%s); retrying in %g s", what, exc, every)
            await asyncio.sleep(every)

    async def openapi(self, request: Request) -> JSONResponse:
        return JSONResponse(self.document)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/connector/logs", self.logs, methods=["GET"]),
            Route("/api/connector/metrics/{service}", self.metrics, methods=["GET"]),
            Route("/api/connector/health", self.health, methods=["GET"]),
            Route("/api/connector/status", self.status, methods=["GET"]),
            Route("/api/connector/outbox", self.outbox, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]


def _lifespan(api: Api, close_connector: bool) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        await api.start()
        try:
            yield
        finally:
            api.stop()  # after uvicorn let in-flight requests finish
            if close_connector:
                api.connector.close()

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


def create_app(
    connector: Any, *, token: str | None = None, status_fresh_seconds: float = 1.0, close_connector: bool = False
) -> Starlette:
    """The ASGI app.  With ``token`` every non-webhook request needs ``Authorization: Bearer <token>``.

    ``status_fresh_seconds``: how old a shared ``/api/connector/status`` snapshot may be before it is recomputed.
    ``close_connector``: close ``connector`` when the server shuts down (the app owns it).
    """
    middleware = []
    if token:
        from connectorctl.api.auth import BearerAuth

        middleware.append(Middleware(BearerAuth, token=token))
    api = Api(connector, status_fresh_seconds=status_fresh_seconds)
    hooks = webhook_routes(connector)
    if hooks:
        api.document = with_webhooks(DOCUMENT)
    from connectorctl.delivery.api import delivery_routes, with_delivery
    from connectorctl.inbound.receiver import inbound_routes, with_inbound

    api.document = with_inbound(with_delivery(api.document))

    app = Starlette(
        routes=[*api.routes(), *hooks, *inbound_routes(connector), *delivery_routes(connector, api.read)],
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=_lifespan(api, close_connector),
    )
    app.state.api = api
    return app


__all__ = ["Api", "create_app"]

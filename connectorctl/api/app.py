"""The Starlette application: the reference design's monitoring endpoints.

No SQLite read runs on the event loop.  Logs, metrics, the Prometheus fold,
the status snapshot and the health check go to a
:class:`~connectorctl.api.pool.ReadPool` (worker processes under ``serve``,
threads when embedded); the last two in its quick lane, so a load balancer's
probe never queues behind heavy reads and still really touches the file.  The
read functions are in ``api/reads.py``, built on the shared read-side contract
in ``store/queries.py``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connectorctl.api import params, prom, reads, status
from connectorctl.api.errors import EXCEPTION_HANDLERS
from connectorctl.api.openapi import DOCUMENT, with_webhooks
from connectorctl.api.pool import ReadPool
from connectorctl.api.snapshot import Snapshot
from connectorctl.errors import StateStoreError
from connectorctl.store import queries
from connectorctl.store.db import StateDB

log = logging.getLogger("connectorctl.api")
FOLD_EVERY_SECONDS = 60


class Api:
    """Endpoint handlers bound to one :class:`~connectorctl.gateway.Connector`."""

    def __init__(self, connector: Any, *, status_fresh_seconds: float = 1.0, read_processes: int = 0,
                 read_priority: str = "idle") -> None:
        self.connector = connector
        self.settings = connector.settings
        self.document: dict[str, Any] = DOCUMENT
        self.reads = ReadPool(self.db, self.settings, read_processes, read_priority)
        self._status = Snapshot(self._compute_status, fresh_seconds=status_fresh_seconds, stale_seconds=2 * status_fresh_seconds)
        self._totals = prom.LogTotals()
        self._scrape: Snapshot[bytes] = Snapshot(self._fold, fresh_seconds=0, stale_seconds=0)
        self._keeper: asyncio.Future[None] | None = None

    def db(self) -> StateDB:
        return self.connector.db  # opening may raise StateStoreError -> 503

    def now(self) -> Any:
        return status.now_utc(self.connector.clock.time)

    async def logs(self, request: Request) -> Response:
        q = request.query_params
        limit, offset = params.limit_offset(q)
        date_from, date_to = params.iso_date(q, "date_from"), params.iso_date(q, "date_to")
        params.ordered(date_from, date_to, ("date_from", "date_to"))
        flt = queries.LogFilter(
            service=params.text(q, "service"), status=params.status(q), tenant_id=params.text(q, "tenant_id"),
            since=date_from, until=date_to,
        )
        return Response(await self.reads(reads.logs_page, flt, limit, offset), media_type="application/json")

    async def metrics(self, request: Request) -> JSONResponse:
        service = request.path_params["service"]
        q = request.query_params
        now = self.now()
        start = params.moment(q, "from", "-7days", now)
        end = params.moment(q, "to", "now", now)
        params.ordered(start, end, ("from", "to"))

        numbers = await self.reads(reads.service_metrics, service, start, end)
        return JSONResponse({
            "service": service,
            "period": {"from": status.timestamp(start), "to": status.timestamp(end)},
            "metrics": numbers,
        })

    async def health(self, request: Request) -> JSONResponse:
        try:
            ok, reason = await self.reads(reads.database_check, lane="quick")
        except StateStoreError as exc:  # the file would not open, or the worker died: unusable either way
            ok, reason = False, exc.message
        body: dict[str, Any] = {
            "status": "healthy" if ok else "unhealthy",
            "timestamp": status.timestamp(self.now()),
            "services": {"database": "connected" if ok else "disconnected", "connector": "operational"},
        }
        if reason:
            body["error"] = reason
        return JSONResponse(body, status_code=200 if ok else 503)

    async def _compute_status(self) -> bytes:
        return await self.reads(reads.status_body, self.now(), lane="quick")

    async def status(self, request: Request) -> Response:
        """Shared snapshot (see api/snapshot.py): pollers never queue behind each other or the database."""
        return Response(await self._status.get(), media_type="application/json")

    async def prometheus(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(await self._scrape.get(), media_type=CONTENT_TYPE_LATEST)

    async def start(self) -> None:
        """Start the read workers, then keep the Prometheus fold current in the background.

        Each server process keeps its own totals.  They agree with each other and
        across restarts because every row is counted either live or, once purged,
        from the purged totals (``store/totals.py``); folding every minute makes
        sure a running server has counted a row long before a purge (of rows a day
        old or more) can delete it.  The first fold also spares the first scrape
        the long initial pass.
        """
        await self.reads.start()
        self._keeper = asyncio.ensure_future(self._keep_folding())

    def stop(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
        self.reads.close()

    async def _keep_folding(self) -> None:
        while True:
            try:
                await self._scrape.get()
            except Exception as exc:  # noqa: BLE001 - the next scrape or round tries again
                log.warning("background Prometheus fold failed (%s); retrying in %d s", exc, FOLD_EVERY_SECONDS)
            await asyncio.sleep(FOLD_EVERY_SECONDS)

    async def _fold(self) -> bytes:
        """Scrapes that overlap share one fold (see Snapshot): folding the same rows twice would count them twice."""
        self._totals, body = await self.reads(prom.scrape, self._totals)
        return body

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


def _lifespan(api: Api) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        await api.start()
        try:
            yield
        finally:
            api.stop()  # after uvicorn let in-flight requests finish

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


def create_app(connector: Any, *, token: str | None = None, status_fresh_seconds: float = 1.0, read_processes: int = 0,
               read_priority: str = "idle") -> Starlette:
    """The ASGI app.  With ``token`` every non-webhook request needs ``Authorization: Bearer <token>``.

    ``status_fresh_seconds``: how old a shared ``/api/connector/status`` snapshot may be before it is recomputed.
    ``read_processes``, ``read_priority``: worker processes for database reads (0: threads of this
    process) and their CPU priority; see ``api/pool.py``.
    """
    middleware = []
    if token:
        from connectorctl.api.auth import BearerAuth

        middleware.append(Middleware(BearerAuth, token=token))
    api = Api(connector, status_fresh_seconds=status_fresh_seconds, read_processes=read_processes, read_priority=read_priority)
    hooks = webhook_routes(connector)
    if hooks:
        api.document = with_webhooks(DOCUMENT)
    app = Starlette(routes=[*api.routes(), *hooks], middleware=middleware, exception_handlers=EXCEPTION_HANDLERS,
                    lifespan=_lifespan(api))
    app.state.api = api
    return app


__all__ = ["Api", "create_app"]

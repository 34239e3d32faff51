"""The API's database reads, as functions ``fn(db, settings, *args)`` run in a worker thread.

Each takes the database and settings first and plain arguments after (the
clock's "now" included, read on the event loop).  Large bodies come back
already encoded, so the event loop only copies bytes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from connectorctl.api import status
from connectorctl.api.errors import NotFoundError
from connectorctl.store import queries
from connectorctl.store.db import StateDB


def json_bytes(body: Any) -> bytes:
    """The same bytes Starlette's JSONResponse would send."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")


def require_known(db: StateDB, settings: Any, service: str) -> None:
    if not status.is_known_service(db, settings, service):
        raise NotFoundError(
            f"unknown service {service!r}",
            hint="use a configured vendor slug, e.g. " + ", ".join(status.configured_services(settings)[:3]),
        )


def logs_page(db: StateDB, settings: Any, flt: queries.LogFilter, limit: int, offset: int) -> bytes:
    if flt.service is not None:
        require_known(db, settings, flt.service)
    rows = [queries.log_entry(r) for r in queries.list_logs(db, flt, limit, offset)]
    return json_bytes({"data": rows, "meta": {"limit": limit, "offset": offset, "count": len(rows)}})


def service_metrics(db: StateDB, settings: Any, service: str, start: datetime, end: datetime) -> dict[str, Any]:
    require_known(db, settings, service)
    return queries.metrics(db, service, start, end)


def database_check(db: StateDB, settings: Any) -> tuple[bool, str | None]:
    """A real round trip: read the schema and the newest log row.  ``(ok, why not)``."""
    from connectorctl.errors import ConnectorctlError

    try:
        db.run(lambda c: c.execute("SELECT count(*) FROM schema_migrations").fetchone())
        db.run(lambda c: c.execute("SELECT seq FROM integration_logs ORDER BY seq DESC LIMIT 1").fetchone())
    except ConnectorctlError as exc:
        return False, exc.message
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"; the reason is reported
        return False, type(exc).__name__
    return True, None


def outbox_depth(db: StateDB, settings: Any, now: datetime) -> dict[str, Any]:
    from connectorctl.outbox.store import depth

    return {**depth(db, now.timestamp()), "timestamp": status.timestamp(now)}


def status_body(db: StateDB, settings: Any, now: datetime) -> bytes:
    return json_bytes(status.service_status(db, settings, now))

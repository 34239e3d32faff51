"""The integration log as one object: the :class:`~connectorctl.domain.roles.IntegrationLogger` role.

The pipeline writes its rows through a hook (:mod:`connectorctl.store.logs`);
this is the same table for a library user: record an entry (an inbound call the
application handled itself, say), read rows, compute a service's metrics and
purge old rows, with the queries the CLI and the API use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping

from connectorctl.domain.values import IntegrationLog
from connectorctl.errors import InvalidInputError
from connectorctl.store.db import StateDB
from connectorctl.store.logs import INSERT_LOG
from connectorctl.store.queries import LOG_COLUMNS, LogFilter, list_logs, metrics
from connectorctl.times import parse_time

# ``get_logs`` filters: the reference design's column names (and the CLI's short ones) -> LogFilter fields
FILTERS = {
    "service_name": "service",
    "service": "service",
    "status": "status",
    "tenant_id": "tenant_id",
    "operation": "operation",
    "correlation_id": "correlation_id",
    "direction": "direction",
    "since": "since",
    "until": "until",
}


class SqliteIntegrationLog:
    """Implements :class:`~connectorctl.domain.roles.IntegrationLogger` over the state file.

    ``before_read`` commits rows the pipeline's background writer still holds
    (``Connector.flush``), so a read sees every call that already returned.
    """

    def __init__(self, db: StateDB, *, before_read: Callable[[], None] | None = None) -> None:
        self.db = db
        self.before_read = before_read or (lambda: None)

    def log(self, entry: IntegrationLog) -> None:
        row = entry.as_row()
        values = tuple(row[column] for column in LOG_COLUMNS)
        with self.db.write() as conn:
            conn.execute(INSERT_LOG, values)

    def get_logs(
        self, filters: Mapping[str, Any] | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Newest first; ``filters`` by column (``service_name``, ``status``, ...) and ``since``/``until``
        (a datetime, or text such as ``7d`` or an ISO 8601 time)."""
        self.before_read()
        return list_logs(self.db, _log_filter(filters or {}), limit, offset)

    def get_metrics(self, service_name: str, start: datetime, end: datetime) -> Mapping[str, Any]:
        self.before_read()
        return metrics(self.db, service_name, start, end)

    def purge_old_logs(self, retention_days: int) -> int:
        """Delete rows older than ``retention_days``; returns how many (what ``logs purge`` does, without pauses)."""
        from connectorctl.store.retention import purge

        if retention_days < 1:
            raise InvalidInputError(f"retention_days must be at least 1, got {retention_days}")
        self.before_read()
        return int(purge(self.db, retention_days, pause=0)["deleted"])


def _log_filter(filters: Mapping[str, Any]) -> LogFilter:
    unknown = sorted(set(filters) - set(FILTERS))
    if unknown:
        raise InvalidInputError(f"unknown log filter {', '.join(unknown)} (known: {', '.join(sorted(FILTERS))})")
    fields: dict[str, Any] = {}
    for name, value in filters.items():
        if name in ("since", "until") and isinstance(value, str):
            value = parse_time(value, name=name)
        fields[FILTERS[name]] = value
    return LogFilter(**fields)

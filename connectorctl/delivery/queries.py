"""The read side: one message's timeline, message lists by delivery state, delivery rates per vendor.

Shared by ``connectorctl messages``/``metrics`` and the HTTP API, so both print
the same numbers from the same result objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectorctl.delivery.events import REACHED, EventType, label
from connectorctl.delivery.store import message_key, tenant_key
from connectorctl.errors import InvalidInputError
from connectorctl.store.db import StateDB
from connectorctl.store.queries import check_limit, to_iso

MESSAGE_COLUMNS = (
    "correlation_id",
    "tenant_id",
    "channel",
    "vendor",
    "vendor_message_id",
    "recipient",
    "accepted_status",
    "accepted_reason",
    "created_at",
    "delivery",
    "delivery_at",
    "delivery_reason",
)
EVENT_COLUMNS = (
    "vendor",
    "event_type",
    "bounce_type",
    "vendor_event",
    "vendor_message_id",
    "recipient",
    "occurred_at",
    "received_at",
    "reason",
    "rank",
)
DELIVERY_STATES = tuple(t.value for t in EventType)
OK_STATUSES = ("accepted", "queued", "scheduled")


@dataclass(frozen=True)
class Timeline:
    """What happened to one logical send, in time order.

    Its attempts, acceptance per recipient, then the vendors' reports.
    """

    correlation_id: str
    messages: list[dict[str, Any]]
    entries: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"correlation_id": self.correlation_id, "messages": self.messages, "timeline": self.entries}


def find_correlation_id(db: StateDB, ident: str) -> str | None:
    """Our correlation id, or the vendor's message id (as the send returned it or as a report quotes it)."""

    def read(c: Any) -> str | None:
        for sql, value in (
            ("SELECT correlation_id FROM messages WHERE correlation_id = ? LIMIT 1", ident),
            ("SELECT correlation_id FROM messages WHERE vendor_message_id = ? LIMIT 1", message_key(ident)),
            (
                "SELECT correlation_id FROM integration_logs WHERE correlation_id = ? AND direction = 'outbound' "
                "LIMIT 1",
                ident,
            ),
        ):
            row = c.execute(sql, (value,)).fetchone()
            if row:
                return str(row[0])
        return None

    return db.run(read)


def timeline(db: StateDB, ident: str) -> Timeline | None:
    correlation_id = find_correlation_id(db, ident)
    if correlation_id is None:
        return None

    def read(c: Any) -> tuple[list[Any], list[Any], list[Any]]:
        attempts = c.execute(
            "SELECT created_at, service_name, operation, status, http_status_code, attempt_number, error_code, "
            "error_message "
            "FROM integration_logs WHERE correlation_id = ? AND direction = 'outbound' ORDER BY created_at, seq",
            (correlation_id,),
        ).fetchall()
        messages = c.execute(
            f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM messages WHERE correlation_id = ? ORDER BY id", (correlation_id,)
        ).fetchall()
        columns = ", ".join("e." + col for col in EVENT_COLUMNS)
        events = c.execute(
            f"SELECT {columns}, e.id FROM delivery_events e JOIN messages m ON e.vendor = m.vendor AND "
            "e.vendor_message_id = m.vendor_message_id "
            "AND (e.recipient IS NULL OR e.recipient = m.recipient) WHERE m.correlation_id = ? "
            f"UNION SELECT {columns}, e.id FROM delivery_events e JOIN (SELECT DISTINCT vendor FROM messages WHERE "
            "correlation_id = ?) m "
            "ON e.vendor = m.vendor WHERE e.correlation_id = ? ORDER BY 7, 10, 11",
            (correlation_id, correlation_id, correlation_id),
        ).fetchall()
        return attempts, messages, events

    attempts, messages, events = db.run(read)
    entries: list[dict[str, Any]] = []
    for at, service, operation, status, http, attempt, code, error in attempts:
        detail = f"HTTP {http}" if http else ""
        entries.append(
            {
                "at": at,
                "kind": "attempt",
                "vendor": service,
                "recipient": None,
                "what": f"{operation} attempt {attempt}: {status}",
                "detail": " ".join(part for part in (detail, code or "", error or "") if part) or None,
            }
        )
    rows = [_message(dict(zip(MESSAGE_COLUMNS, r, strict=False))) for r in messages]
    for m in rows:
        entries.append(
            {
                "at": m["created_at"],
                "kind": "accepted",
                "vendor": m["vendor"],
                "recipient": m["recipient"],
                "what": m["accepted_status"],
                "detail": " ".join(p for p in (m["vendor_message_id"] or "", m["accepted_reason"] or "") if p) or None,
            }
        )
    for r in events:
        e = dict(zip(EVENT_COLUMNS, r, strict=False))
        entries.append(
            {
                "at": e["occurred_at"],
                "kind": "event",
                "vendor": e["vendor"],
                "recipient": e["recipient"],
                "what": label(e["event_type"], e["bounce_type"]),
                "detail": " ".join(p for p in (f"[{e['vendor_event']}]", e["reason"] or "") if p),
                "received_at": e["received_at"],
            }
        )
    return Timeline(correlation_id, rows, entries)


def _message(row: dict[str, Any]) -> dict[str, Any]:
    row["tenant_id"] = row["tenant_id"] or None
    return row


@dataclass(frozen=True)
class MessageFilter:
    vendor: str | None = None
    tenant_id: str | None = None
    delivery: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.delivery is not None:
            if self.delivery == "none":
                clauses.append("delivery IS NULL")
            elif self.delivery not in DELIVERY_STATES:
                raise InvalidInputError(
                    f"unknown delivery state {self.delivery!r} (use one of: {', '.join(DELIVERY_STATES)}, none)"
                )
            else:
                clauses.append("delivery = ?")
                params.append(self.delivery)
        for column, value in (
            ("vendor", self.vendor),
            ("tenant_id", None if self.tenant_id is None else tenant_key(self.tenant_id)),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.since is not None:
            clauses.append("created_at >= ?")
            params.append(to_iso(self.since))
        if self.until is not None:
            clauses.append("created_at <= ?")
            params.append(to_iso(self.until))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def list_messages(db: StateDB, flt: MessageFilter, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Newest first."""
    check_limit(limit, offset)
    where, params = flt.where()
    sql = f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM messages{where} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
    return [
        _message(dict(zip(MESSAGE_COLUMNS, r, strict=False)))
        for r in db.run(lambda c: c.execute(sql, [*params, limit, offset]).fetchall())
    ]


def delivery_rates(db: StateDB, flt: MessageFilter) -> list[dict[str, Any]]:
    """Per vendor, over the messages sent in the window: how many were accepted, how many a report
    reached, and delivery / bounce / complaint rates in percent of the accepted ones (2 places)."""
    where, params = flt.where()
    reached = ", ".join(f"'{state}'" for state in REACHED)
    ok = ", ".join(f"'{status}'" for status in OK_STATUSES)
    sql = (
        f"SELECT vendor, count(*) FILTER (WHERE accepted_status IN ({ok})), count(*) FILTER (WHERE delivery IS NOT "
        "NULL), "
        f"count(*) FILTER (WHERE delivery IN ({reached})), count(*) FILTER (WHERE delivery = 'bounced'), "
        "count(*) FILTER (WHERE delivery = 'complained') "
        f"FROM messages{where} GROUP BY vendor ORDER BY vendor"
    )
    out = []
    for vendor, accepted, tracked, delivered, bounced, complained in db.run(
        lambda c: c.execute(sql, params).fetchall()
    ):
        out.append(
            {
                "vendor": vendor,
                "accepted": accepted,
                "tracked": tracked,
                "delivered": delivered,
                "bounced": bounced,
                "complained": complained,
                "delivery_rate": _rate(delivered, accepted),
                "bounce_rate": _rate(bounced, accepted),
                "complaint_rate": _rate(complained, accepted),
            }
        )
    return out


def _rate(part: int, whole: int) -> float:
    return round(part / whole * 100, 2) if whole else 0.0

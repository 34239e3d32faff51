"""Query-string parsing: each bad value becomes an InvalidInputError naming the parameter.

Kept apart from the endpoints so the rules (limit 1..500, offset >= 0, ISO
dates, known statuses) are in one place and match the CLI's.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Mapping

from connectorctl.domain.values import IntegrationStatus
from connectorctl.errors import InvalidInputError
from connectorctl.store.queries import DEFAULT_LIMIT, MAX_LIMIT
from connectorctl.times import parse_time

STATUSES = tuple(s.value for s in IntegrationStatus)
MAX_TEXT = 200  # longer filter values cannot match anything stored; refuse them early
# "...T01:20:00 05:00": an unencoded "+" in a query string arrives as a space.
_SPACED_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def _offset_plus(raw: str) -> str:
    return _SPACED_OFFSET.sub(r"\1+\2", raw.strip())


def integer(params: Mapping[str, str], name: str, default: int, *, low: int, high: int | None = None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 12:
        raise InvalidInputError(f"{name} must be an integer, got {_show(raw)}")
    value = int(text)
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"{low} or more"
        raise InvalidInputError(f"{name} must be {bounds}, got {value}")
    return value


def limit_offset(params: Mapping[str, str]) -> tuple[int, int]:
    return integer(params, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT), integer(params, "offset", 0, low=0)


def text(params: Mapping[str, str], name: str) -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_TEXT or any(ord(ch) < 32 for ch in raw):
        raise InvalidInputError(f"{name} is not a valid value: {_show(raw)}")
    return raw


def status(params: Mapping[str, str]) -> str | None:
    value = text(params, "status")
    if value is not None and value not in STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}, got {_show(value)}")
    return value


def iso_date(params: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 date or date-time (naive means UTC); relative forms are not accepted here."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(_offset_plus(raw).replace("Z", "+00:00"))
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        value.timestamp()
    except (ValueError, OverflowError):
        raise InvalidInputError(
            f"{name} must be an ISO 8601 date such as 2025-11-18 or 2025-11-18T01:20:00Z, got {_show(raw)}"
        ) from None
    return value


def moment(params: Mapping[str, str], name: str, default: str, now: datetime) -> datetime:
    """ISO 8601 or a relative form (``-30days``, ``7d``, ``now``) for the metrics period."""
    raw = params.get(name)
    if raw is None or raw == "":
        raw = default
    if len(raw) > 64:
        raise InvalidInputError(f"{name} is too long to be a date")
    try:
        return parse_time(_offset_plus(raw), now, name=name)
    except (OverflowError, ValueError):
        raise InvalidInputError(f"{name} is out of range: {_show(raw)}") from None


def ordered(start: datetime | None, end: datetime | None, names: tuple[str, str]) -> None:
    if start is not None and end is not None and start > end:
        raise InvalidInputError(f"{names[0]} must not be after {names[1]}")


def _show(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "...")

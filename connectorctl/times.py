"""Times as people type them on the command line and in API queries, and as the log stores them.

``parse_time`` reads ``7d``, ``-30days``, ``90m``, ``now`` or ISO 8601 (naive
means UTC); ``parse_duration`` reads ``30s``/``10m``/``2h``/``1d``; ``to_iso``
writes the log's sortable UTC form (``2026-11-26T03:20:00.123Z``).  Bad input
is one :class:`InvalidInputError` naming the option, never a traceback.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from connectorctl.errors import InvalidInputError

_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")
_MILLIS = [f"{ms:03d}" for ms in range(1000)]


def iso_utc(epoch: float) -> str:
    """Sortable UTC timestamp with milliseconds, e.g. ``2026-11-26T03:20:00.123Z``.

    Every vendor call stamps several rows (its log row, a bulk journal row, a sent message), so the
    date and time of the current second are formatted once and reused: a new ``datetime`` and a
    ``strftime`` per stamp were a measurable share of a call's CPU.
    """
    global _last_second
    second = int(epoch)  # rounded to the microsecond exactly as ``datetime.fromtimestamp`` does
    micro = round((epoch - second) * 1_000_000)  # the exact fractional part, as ``math.modf`` gives it
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    elif micro < 0:
        second, micro = second - 1, micro + 1_000_000
    cached = _last_second
    if cached[0] != second:
        cached = _last_second = (second, datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{cached[1]}.{_MILLIS[micro // 1000]}Z"


def whole_seconds(stored: str | None) -> str | None:
    """A stored time written to the second (``...:05Z``) as it was written: PostgreSQL's
    ``timestamptz`` reads back with milliseconds (``...:05.000Z``) like every other time."""
    return stored[:19] + "Z" if stored else stored


def to_iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return iso_utc(value.timestamp())


_RELATIVE = re.compile(
    r"^\s*-?\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hour|hours|d|day|days|w|week|weeks)\s*$",
    re.I,
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION_S = 36500 * 86400


def parse_time(text: str, now: datetime | None = None, *, name: str = "time") -> datetime:
    """``7d``, ``-30days``, ``90m``, ``now`` or ISO 8601 (naive means UTC) -> aware UTC datetime."""
    now = now or datetime.now(timezone.utc)
    raw = text.strip()
    if raw.lower() == "now":
        return now
    match = _RELATIVE.match(raw)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        key = "m" if unit.startswith("mi") or unit == "m" else unit[0]
        try:
            return now - timedelta(seconds=amount * _UNITS[key])
        except OverflowError:  # "99999999999d": before year 1
            raise InvalidInputError(f"{name} is out of range: {text!r}") from None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"invalid {name} {text!r}: use a duration like 7d, -30days, 1h or an ISO 8601 date"
        ) from None
    try:  # 9999-12-31T23:59:59-23:59 is past year 9999 in UTC; 0001-01-01T00:00+23:59 before year 1
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        value.timestamp()
    except (OverflowError, ValueError):
        raise InvalidInputError(f"{name} is out of range: {text!r}") from None
    return value


def parse_duration(text: str, *, name: str = "duration") -> float:
    """``10m``, ``90s``, ``2h``, ``1d`` -> seconds (strictly positive)."""
    match = _RELATIVE.match(text or "")
    if not match or text.strip().startswith("-"):
        raise InvalidInputError(f"invalid {name} {text!r}: use a duration like 30s, 10m, 2h or 1d")
    amount, unit = float(match.group(1)), match.group(2).lower()
    key = "m" if unit.startswith("mi") or unit == "m" else unit[0]
    seconds = amount * _UNITS[key]
    if seconds <= 0:
        raise InvalidInputError(f"invalid {name} {text!r}: must be longer than zero")
    if seconds > MAX_DURATION_S:  # an expiry must stay a representable date, or reading it back fails forever
        raise InvalidInputError(f"invalid {name} {text!r}: at most {MAX_DURATION_S // 86400}d")
    return seconds

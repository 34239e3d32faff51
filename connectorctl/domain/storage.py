"""What object storage hands back, independent of the store behind it.

Keys are ``/``-separated paths inside one bucket (or the local store's
folder); :func:`check_key` refuses the ones no store can hold the same way
(empty segments, ``.``/``..``, control characters), so a key that works on the
local store works on S3 too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import urlsplit

from connectorctl.errors import InvalidInputError

MAX_KEY_BYTES = 1024  # S3's limit; the local store keeps the same one so keys stay portable


@dataclass(frozen=True)
class StoredObject:
    """One object's description: what ``stat``, ``ls`` and a finished ``put`` return."""

    key: str
    size: int
    last_modified: datetime | None = None
    etag: str | None = None
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "size": self.size,
            "last_modified": _iso(self.last_modified),
            "etag": self.etag,
            "content_type": self.content_type,
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True)
class ObjectPage:
    """One page of a listing; pass ``next_token`` back as ``after`` for the next page."""

    objects: tuple[StoredObject, ...]
    next_token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"objects": [o.to_dict() for o in self.objects], "next_token": self.next_token}


@dataclass(frozen=True)
class PresignedUrl:
    """A time-limited link; its ``repr`` hides the signature so it never lands in a log or traceback."""

    url: str = field(repr=False)
    method: str
    key: str
    expires_at: datetime

    def __repr__(self) -> str:
        return (
            f"PresignedUrl(method={self.method!r}, key={self.key!r}, "
            f"expires_at={_iso(self.expires_at)!r}, url={redacted_url(self.url)!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "method": self.method, "key": self.key, "expires_at": _iso(self.expires_at)}


def redacted_url(url: str) -> str:
    """The URL without its query string (where presigned URLs carry their signature)."""
    parts = urlsplit(url)
    return parts._replace(query="***" if parts.query else "").geturl()


def check_key(key: str, what: str = "key") -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"the {what} is empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidInputError(f"the {what} is longer than {MAX_KEY_BYTES} bytes")
    if any(ord(ch) < 32 or ord(ch) == 127 or 0xD800 <= ord(ch) <= 0xDFFF for ch in key):
        raise InvalidInputError(f"the {what} {ascii(key)[:80]} contains a control character")
    if key.startswith("/") or key.endswith("/"):
        raise InvalidInputError(f"the {what} {key!r} must not start or end with '/'")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidInputError(f"the {what} {key!r} has an empty, '.' or '..' segment")
    return key


def check_prefix(prefix: str | None) -> str:
    """A listing prefix: any string a key could start with, '' for everything."""
    if not prefix:
        return ""
    stem = prefix.rstrip("/")
    if stem:
        check_key(stem, "prefix")
    return prefix


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

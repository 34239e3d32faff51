"""The object-store edge: obstore's exceptions in, our hierarchy out, in one place.

obstore raises a handful of classes (``FileNotFoundError`` for a 404, its own
``PermissionDeniedError``/``UnauthenticatedError``/``GenericError`` ...) whose
text carries the HTTP status and the vendor's XML error body.  The class
decides where it can; otherwise the status and the S3 error ``Code`` do.  The
long "Debug source" dump obstore appends is cut: one line reaches the caller.
"""

from __future__ import annotations

import re
from typing import Any

from connectorctl.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionFailedError,
    ConnectorctlError,
    InvalidInputError,
    RateLimitedError,
    RemoteFileNotFoundError,
    UnsupportedFeatureError,
    ValidationError,
    VendorRejectedError,
    VendorTimeoutError,
    VendorUnavailableError,
)

_STATUS = re.compile(r"status code: (\d{3})")
_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_MESSAGE = re.compile(r"<Message>([^<]{1,300})</Message>")
_BUCKET_MISSING = ("NoSuchBucket", "ContainerNotFound", "bucket does not exist")
_AUTH_CODES = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "AuthenticationFailed",
)
_SLOW_DOWN = ("SlowDown", "ServerBusy", "RequestLimitExceeded")


def translate(exc: BaseException, *, service: str, key: str | None, bucket: str | None = None) -> ConnectorctlError:
    """Our error for ``exc`` raised by obstore while working on ``key``."""
    import obstore.exceptions as oe

    text = str(exc)
    status = _int(_STATUS.search(text))
    code = _group(_CODE.search(text))
    detail = _detail(text, status, code)
    where = f" ({key})" if key else ""
    kwargs: dict[str, Any] = {"service": service, "http_status": status}
    if any(marker in text for marker in _BUCKET_MISSING):
        name = f" {bucket!r}" if bucket else ""
        return ConfigurationError(
            f"{service}: the bucket{name} does not exist",
            hint=f"create it, or fix vendors.{service}.bucket in the config",
        )
    if isinstance(exc, PermissionError):  # the local store's folder: an installation problem, not the vendor's
        return ConfigurationError(
            f"{service}: permission denied{where}", hint="check the owner and mode of the store's folder"
        )
    if isinstance(exc, (FileNotFoundError, oe.NotFoundError)) or status == 404:
        return RemoteFileNotFoundError(f"{service}: no object at {key!r}" if key else f"{service}: not found", **kwargs)
    if (
        isinstance(exc, (oe.PermissionDeniedError, oe.UnauthenticatedError))
        or status in (401, 403)
        or code in _AUTH_CODES
    ):
        return AuthenticationError(
            f"{service}: {detail}{where}", hint=f"check the credentials: connectorctl creds show {service}", **kwargs
        )
    if isinstance(exc, oe.InvalidPathError):
        return InvalidInputError(f"{service}: invalid key{where}")
    if isinstance(exc, (oe.NotSupportedError, NotImplementedError)):
        return UnsupportedFeatureError(f"{service}: {detail}", service=service)
    if status == 429 or code in _SLOW_DOWN:
        cls = RateLimitedError if status == 429 else VendorUnavailableError
        return cls(f"{service}: {detail}{where}", vendor_processed=False, **kwargs)
    if status is not None and status >= 500:
        # 503 means the store refused the request before acting on it
        return VendorUnavailableError(
            f"{service}: {detail}{where}", vendor_processed=False if status == 503 else None, **kwargs
        )
    if status in (400, 411, 413, 422):
        return ValidationError(f"{service}: {detail}{where}", **kwargs)
    if status is not None:
        return VendorRejectedError(f"{service}: {detail}{where}", **kwargs)
    lowered = text.lower()
    if "timed out" in lowered or "timeout" in lowered:
        return VendorTimeoutError(f"{service}: no answer in time{where}", service=service)
    if "connect" in lowered and ("refused" in lowered or "error" in lowered):
        return ConnectionFailedError(
            f"{service}: cannot connect{where}: {detail}", service=service, vendor_processed=False
        )
    return ConnectionFailedError(f"{service}: {detail}{where}", service=service)


def _detail(text: str, status: int | None, code: str | None) -> str:
    if status is not None:
        message = _group(_MESSAGE.search(text))
        return " ".join(part for part in (f"HTTP {status}", code, message and f"- {message}") if part)
    first = text.split("\n\nDebug source:", 1)[0].strip().splitlines()
    return (first[0] if first else type(text).__name__)[:300]


def _group(match: re.Match[str] | None) -> str | None:
    return match.group(1) if match else None


def _int(match: re.Match[str] | None) -> int | None:
    return int(match.group(1)) if match else None

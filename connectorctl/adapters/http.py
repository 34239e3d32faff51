"""The HTTP edge shared by every vendor adapter: httpx in, our errors out.

This is the one place where transport exceptions and vendor status codes are
translated into the exception hierarchy (401/403 auth, 400/422 validation,
429 rate limited with Retry-After or the vendor's reset header, 5xx and
timeouts transient).  Vendor modules supply ``error_message`` to read their
error body and ``rate_limit_reset`` for vendor-specific reset headers.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping

import httpx

from connectorctl.adapters.base import Adapter
from connectorctl.errors import (
    AuthenticationError,
    ConnectionFailedError,
    ConnectorError,
    RateLimitedError,
    ValidationError,
    VendorRejectedError,
    VendorTimeoutError,
    VendorUnavailableError,
)
from connectorctl.resilience.pipeline import Call, VendorResponse
from connectorctl.resilience.retry import retry_after_from_header


class HttpAdapterMixin:
    """Mixed into an Email/Sms adapter; gives it a pooled client and :meth:`http`."""

    default_base_url = ""
    slug: str
    config: Any
    connector: Any

    _client_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return (self.config.base_url or self.default_base_url).rstrip("/")

    def client(self) -> httpx.Client:
        """One client per adapter, shared by every thread (httpx's pool is thread-safe); see adapters/client.py."""
        client = self.__dict__.get("_http_client")
        if client is None:
            with self._client_lock:
                client = self.__dict__.get("_http_client")
                if client is None:
                    from connectorctl.adapters.client import vendor_client

                    client = self.__dict__["_http_client"] = vendor_client(self.slug, self.config, self.connector.http_transport(self.slug))
        return client

    def close(self) -> None:
        with self._client_lock:
            client = self.__dict__.pop("_http_client", None)
        if client is not None:
            client.close()

    def build_request(self, message: Any, credentials: Any) -> httpx.Request:
        """The vendor request for ``message``, built but not sent (vendor modules implement it)."""
        raise NotImplementedError

    def http_preview(self, message: Any, *, tenant_id: str | None = None) -> dict[str, Any]:
        """``send --dry-run``: build the real request and show it with every secret masked.

        Uses ``build_request`` or, for adapters that describe requests as data,
        ``build_send``.  Missing credentials do not stop a preview: placeholders
        stand in for them.
        """
        from connectorctl.adapters.preview import describe_request, placeholder_credentials, request_from_description

        try:
            creds = self.connector.credentials.get(self.slug, tenant_id)
            note = None
        except Exception as exc:  # noqa: BLE001 - a preview shows placeholders rather than fail on a credential store problem
            code = getattr(exc, "code", type(exc).__name__)
            creds, note = placeholder_credentials(self.slug), f"credentials unavailable ({code}); placeholders shown"
        try:
            request = self.build_request(message, creds)
        except NotImplementedError:
            build_send = getattr(self, "build_send", None)
            if build_send is None:
                return {"vendor": self.slug, "kind": "http", "action": f"send via the {self.slug} HTTP API (no request preview)"}
            request = request_from_description(build_send(message, creds), self.base_url)
        secrets = tuple(v for v in creds.data.values() if v)
        shown = describe_request(request, secrets, self.connector.settings.logging.redact_fields)
        return {"vendor": self.slug, "kind": "http", **shown, **({"note": note} if note else {})}

    def http(
        self,
        call: Call,
        request: Callable[[httpx.Client], httpx.Response],
        parse: Callable[[httpx.Response], Any],
    ) -> VendorResponse:
        """Run ``request`` through the pipeline; map failures once; parse a 2xx."""

        def attempt() -> VendorResponse:
            try:
                response = request(self.client())
            except httpx.TimeoutException as exc:
                processed = False if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)) else None
                cls = ConnectionFailedError if processed is False else VendorTimeoutError
                raise cls(f"{self.slug}: {type(exc).__name__} after {self.config.timeout_seconds:g} s", service=self.slug, vendor_processed=processed) from None
            except httpx.ConnectError as exc:
                raise ConnectionFailedError(f"{self.slug}: cannot connect ({_short(exc)})", service=self.slug, vendor_processed=False) from None
            except httpx.TransportError as exc:
                raise ConnectionFailedError(f"{self.slug}: transport error ({type(exc).__name__})", service=self.slug) from None
            if response.is_success:
                return VendorResponse(parse(response), http_status=response.status_code, response_data=_body(response))
            raise self.error_for(response)

        return Adapter.run(self, call, attempt)  # type: ignore[arg-type]

    # -- hooks for vendor modules -----------------------------------------------
    def error_message(self, response: httpx.Response, body: Any) -> str:
        if isinstance(body, Mapping):
            for key in ("message", "Message", "error", "detail"):
                value = body.get(key)
                if isinstance(value, str):
                    return value
                if isinstance(value, Mapping) and isinstance(value.get("message"), str):
                    return value["message"]
            errors = body.get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
                return "; ".join(str(e.get("message")) for e in errors if e.get("message"))
        return response.reason_phrase or "error"

    def rate_limit_reset(self, response: httpx.Response) -> float | None:
        """Seconds until the vendor's quota resets, from a vendor-specific header."""
        reset = response.headers.get("X-RateLimit-Reset")
        if reset:
            try:
                value = float(reset)
            except ValueError:
                return None
            now = self.connector.clock.time()
            return max(0.0, value - now) if value > 1e9 else value
        return None

    def error_class(self, response: httpx.Response, body: Any) -> type[ConnectorError] | None:
        """A vendor whose error body says more than its status code (Mandrill's ``name``,
        Postmark's ``ErrorCode``) returns the class here; None keeps the status mapping."""
        return None

    def error_for(self, response: httpx.Response) -> ConnectorError:
        body = _body(response)
        status = response.status_code
        detail = f"{self.slug}: HTTP {status}: {self.error_message(response, body)}"
        kwargs: dict[str, Any] = {"service": self.slug, "http_status": status, "response_data": body}
        cls = self.error_class(response, body)
        if cls is not None and issubclass(cls, RateLimitedError):
            retry_after = retry_after_from_header(response.headers.get("Retry-After"), self.connector.clock.time())
            return cls(detail, retry_after_seconds=retry_after if retry_after is not None else self.rate_limit_reset(response), **kwargs)
        if cls is not None:
            if issubclass(cls, AuthenticationError):
                kwargs["hint"] = f"check the credentials: connectorctl creds show {self.slug}"
            return cls(detail, **kwargs)
        if status in (401, 403):
            return AuthenticationError(detail, hint=f"check the credentials: connectorctl creds show {self.slug}", **kwargs)
        retry_after = retry_after_from_header(response.headers.get("Retry-After"), self.connector.clock.time())
        if status == 429:
            if retry_after is None:
                retry_after = self.rate_limit_reset(response)
            return RateLimitedError(detail, retry_after_seconds=retry_after, **kwargs)
        if status in (400, 422):
            return ValidationError(detail, **kwargs)
        if status >= 500:
            # 503 means the vendor refused to take the request on, so even a
            # non-idempotent call may be retried; 500/502/504 leave it unknown.
            return VendorUnavailableError(detail, vendor_processed=False if status == 503 else None, retry_after_seconds=retry_after, **kwargs)
        return VendorRejectedError(detail, **kwargs)


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (ValueError, RecursionError):  # not JSON, or nested too deep to decode: keep the start as text
        return {"text": response.text[:2000]}


def _short(exc: Exception) -> str:
    text = str(exc)
    return text[:200] if text else type(exc).__name__

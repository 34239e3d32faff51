"""The HTTP edge shared by every vendor adapter: httpx in, our errors out.

This is the one place where transport exceptions and vendor status codes are
translated into the exception hierarchy (401/403 auth, 400/422 validation,
429 rate limited with Retry-After or the vendor's reset header, 5xx and
timeouts transient).  A vendor module describes each request as a
:class:`VendorRequest` and reads the answer; it overrides ``error_message``,
``error_class`` or ``rate_limit_reset`` when its error body says more than the
status code.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar, Generic, Iterator, Mapping, TypeVar

import httpx

from connectorctl.adapters.base import Adapter, OptionsT, SentMatch
from connectorctl.domain.messages import SendResult
from connectorctl.domain.values import Credentials
from connectorctl.errors import (
    AuthenticationError,
    ConnectionFailedError,
    ConnectorError,
    RateLimitedError,
    UnsupportedFeatureError,
    ValidationError,
    VendorRejectedError,
    VendorTimeoutError,
    VendorUnavailableError,
)
from connectorctl.resilience.pipeline import Call, VendorResponse, new_id
from connectorctl.resilience.retry import retry_after_from_header

MessageT = TypeVar("MessageT")
T = TypeVar("T")


@dataclass(frozen=True)
class VendorRequest:
    """One HTTP request as a vendor module describes it; ``log`` is what the integration log keeps
    (default: the JSON or form body).  ``path`` is joined to the base URL unless it is absolute;
    ``content`` is a raw body (a signed payload, an upload) instead of ``json``/``data``."""

    method: str
    path: str
    json: Any = None
    data: Any = None
    content: bytes | None = None
    files: Any = None
    params: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    log: Any = None


class HttpAdapter(Adapter[OptionsT]):
    """Base of every HTTP vendor on any channel: credentials -> request -> pipeline -> answer or our error."""

    default_base_url: ClassVar[str] = ""
    _client_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return (self.config.base_url or self.default_base_url).rstrip("/")

    @contextmanager
    def client(self) -> Iterator[httpx.Client]:
        """An idle client of this adapter for one request, or a new one (see adapters/client.py).

        A client per concurrent request rather than one shared by every thread: httpcore's pool
        scans all its connections under one lock on each request and again when the response is
        closed, so many sending threads on one pool spend much of their CPU waiting on each other.
        A request uses one connection anyway; the most recently returned client is handed out
        first, so its connection is still warm.
        """
        with self._client_lock:
            idle = self.__dict__.setdefault("_idle_clients", [])
            client = idle.pop() if idle else None
        if client is None:
            client = self.context.http_client()
        try:
            yield client
        finally:
            with self._client_lock:
                self.__dict__.setdefault("_idle_clients", []).append(client)

    def close(self) -> None:
        with self._client_lock:
            clients = self.__dict__.pop("_idle_clients", [])
        for client in clients:
            client.close()

    def url(self, request: VendorRequest) -> str:
        return request.path if request.path.startswith(("http://", "https://")) else self.base_url + request.path

    # -- the flow -------------------------------------------------------------------
    def execute(
        self,
        operation: str,
        build: Callable[[Credentials], VendorRequest],
        parse: Callable[[httpx.Response], Any],
        *,
        tenant_id: str | None = None,
        correlation_id: str | None = None,
        idempotent: bool = False,
        idempotency_key: str | None = None,
    ) -> VendorResponse:
        """One vendor operation: credentials, the request ``build`` describes, the pipeline, ``parse`` of a 2xx.

        For an oauth2 vendor a 401 renews the access token once and builds the
        request again with it (see :meth:`Adapter.with_credentials`).
        """

        def once(creds: Credentials) -> VendorResponse:
            request = build(creds)
            url = self.url(request)
            logged = (
                request.log if request.log is not None else (request.json if request.json is not None else request.data)
            )
            call = Call(
                self.slug,
                operation,
                url,
                request.method,
                request_data=with_credential_source(logged, creds),
                idempotent=idempotent,
                idempotency_key=idempotency_key,
                tenant_id=tenant_id,
                correlation_id=correlation_id,
                secrets=secret_values(creds),
            )
            return self.run(call, lambda: self.attempt(request, url, operation, parse))

        return self.with_credentials(tenant_id, once)

    def attempt(
        self, request: VendorRequest, url: str, operation: str, parse: Callable[[httpx.Response], Any]
    ) -> VendorResponse:
        """One try on the wire; every httpx failure and non-2xx mapped here, once."""
        try:
            with self.client() as client:
                built = client.build_request(
                    request.method,
                    url,
                    json=request.json,
                    data=request.data,
                    content=request.content,
                    files=request.files,
                    params=request.params,
                    headers=dict(request.headers),
                )
                response = client.send(built, auth=request.auth)
        except httpx.TimeoutException as exc:
            processed = False if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)) else None
            cls = ConnectionFailedError if processed is False else VendorTimeoutError
            raise cls(
                f"{self.slug}: {type(exc).__name__} after {self.config.timeout_seconds:g} s",
                service=self.slug,
                vendor_processed=processed,
            ) from None
        except httpx.ConnectError as exc:
            raise ConnectionFailedError(
                f"{self.slug}: cannot connect ({_short(exc)})", service=self.slug, vendor_processed=False
            ) from None
        except httpx.TransportError as exc:
            raise ConnectionFailedError(
                f"{self.slug}: transport error ({type(exc).__name__})", service=self.slug
            ) from None
        if not response.is_success:
            raise self.error_for(response)
        try:
            value = parse(response)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # a 2xx we cannot read: the vendor may well have acted, so this must not fail over
            raise ConnectorError(
                f"{self.slug}: unreadable answer to {operation} (HTTP {response.status_code}, {type(exc).__name__}); "
                "the vendor may have accepted it",
                service=self.slug,
                http_status=response.status_code,
                response_data={"text": response.text[:500]},
            ) from None
        return VendorResponse(value, http_status=response.status_code, response_data=_body(response))

    def describe(self, build: Callable[[Credentials], VendorRequest], tenant_id: str | None) -> dict[str, Any]:
        """``--dry-run``: build the real request and show it with every secret masked.

        Missing credentials do not stop a preview: placeholders stand in for them.
        """
        from connectorctl.adapters.preview import describe_request, placeholder_credentials, request_from_description

        try:
            creds = self.context.credentials.get(self.slug, tenant_id)
            note = None
        except Exception as exc:  # noqa: BLE001 - a preview shows placeholders rather than fail on a credential store problem
            code = exc.code if isinstance(exc, ConnectorError) else type(exc).__name__
            creds, note = placeholder_credentials(self.slug), f"credentials unavailable ({code}); placeholders shown"
        described = build(creds)
        request = request_from_description(described, self.url(described))
        shown = describe_request(request, secret_values(creds), self.context.settings.logging.redact_fields)
        return {"vendor": self.slug, "kind": "http", **shown, **({"note": note} if note else {})}

    # -- what vendor modules may implement ---------------------------------------------
    def build_verify(self, creds: Credentials) -> VendorRequest:
        """One harmless authenticated read (``creds test``); a vendor without one keeps this refusal."""
        raise UnsupportedFeatureError(f"{self.slug} has no credential check", service=self.slug)

    def parse_verify(self, response: httpx.Response) -> Any:
        return _json_or_none(response)

    def verify_credentials(self, tenant_id: str | None = None) -> VendorResponse:
        return self.execute(
            "verify_credentials", self.build_verify, self.parse_verify, tenant_id=tenant_id, idempotent=True
        )

    # -- vendor error body -> our error ------------------------------------------------
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
            now = self.context.clock.time()
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
            retry_after = retry_after_from_header(response.headers.get("Retry-After"), self.context.clock.time())
            return cls(
                detail,
                retry_after_seconds=retry_after if retry_after is not None else self.rate_limit_reset(response),
                **kwargs,
            )
        if cls is not None:
            if issubclass(cls, AuthenticationError):
                kwargs["hint"] = f"check the credentials: connectorctl creds show {self.slug}"
            return cls(detail, **kwargs)
        if status in (401, 403):
            return AuthenticationError(
                detail, hint=f"check the credentials: connectorctl creds show {self.slug}", **kwargs
            )
        retry_after = retry_after_from_header(response.headers.get("Retry-After"), self.context.clock.time())
        if status == 429:
            if retry_after is None:
                retry_after = self.rate_limit_reset(response)
            return RateLimitedError(detail, retry_after_seconds=retry_after, **kwargs)
        if status in (400, 422):
            return ValidationError(detail, **kwargs)
        if status >= 500:
            # 503 means the vendor refused to take the request on, so even a
            # non-idempotent call may be retried; 500/502/504 leave it unknown.
            return VendorUnavailableError(
                detail, vendor_processed=False if status == 503 else None, retry_after_seconds=retry_after, **kwargs
            )
        return VendorRejectedError(detail, **kwargs)


class HttpMessageAdapter(HttpAdapter[OptionsT], Generic[OptionsT, MessageT]):
    """The send flow of a message channel over HTTP; the vendor module only translates.

    It implements ``build_send`` (our message -> one :class:`VendorRequest`)
    and ``parse_send`` (the 2xx answer -> a truthful :class:`SendResult`);
    ``precheck`` refuses what must not reach the vendor, ``rejection_result``
    turns an error that is really a per-recipient refusal into a result.
    """

    @abstractmethod
    def build_send(self, message: MessageT, creds: Credentials, correlation_id: str | None) -> VendorRequest: ...

    @abstractmethod
    def parse_send(self, response: httpx.Response, message: MessageT) -> SendResult: ...

    def precheck(self, message: MessageT) -> None:
        """What must hold before credentials are read or a request is made."""

    def rejection_result(self, exc: ConnectorError, message: MessageT) -> SendResult | None:
        return None

    def idempotency_key(self, message: MessageT) -> str | None:
        return None

    def send(self, message: MessageT, *, tenant_id: str | None = None, correlation_id: str | None = None) -> SendResult:
        correlation_id = correlation_id or new_id()
        self.precheck(message)
        try:
            response = self.execute(
                f"send_{self.channel}",
                lambda creds: self.build_send(message, creds, correlation_id),
                lambda r: self.parse_send(r, message),
                tenant_id=tenant_id,
                correlation_id=correlation_id,
                idempotency_key=self.idempotency_key(message),
            )
        except ConnectorError as exc:
            result = self.rejection_result(exc, message)
            if result is None:
                raise
            return replace(result, correlation_id=correlation_id)
        return replace(response.value, correlation_id=correlation_id)

    def preview(self, message: MessageT, *, tenant_id: str | None = None) -> dict[str, Any]:
        return self.describe(lambda creds: self.build_send(message, creds, None), tenant_id)

    # -- asking the vendor about an earlier send (vendors with a search API) ---------------
    def build_lookup(self, message: MessageT, key: str, since: float, creds: Credentials) -> VendorRequest:
        raise NotImplementedError

    def parse_lookup(self, response: httpx.Response, message: MessageT, key: str, since: float) -> SentMatch | None:
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.askable = cls.build_lookup is not HttpMessageAdapter.build_lookup

    def find_sent(self, message: MessageT, *, key: str, since: float, tenant_id: str | None = None) -> SentMatch | None:
        if not self.askable:
            return super().find_sent(message, key=key, since=since, tenant_id=tenant_id)
        return self.execute(
            "find_sent",
            lambda creds: self.build_lookup(message, key, since, creds),
            lambda r: self.parse_lookup(r, message, key, since),
            tenant_id=tenant_id,
            idempotent=True,
        ).value


def with_credential_source(logged: Any, creds: Credentials) -> dict[str, Any]:
    """What the log keeps of a request, plus where its credential came from (``env:SENDGRID_API_KEY``,
    ``store``, ``store:tenant``): an operator can trace which key a call used without the key itself."""
    if logged is None:
        return {"credential_source": creds.source}
    if isinstance(logged, Mapping):
        return {**logged, "credential_source": creds.source}
    return {"requests": logged, "credential_source": creds.source}  # a batch: one entry per message


def secret_values(creds: Credentials) -> tuple[str, ...]:
    return tuple(v for v in creds.data.values() if isinstance(v, str) and v)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


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

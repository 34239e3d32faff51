"""One exception hierarchy for everything the gateway can fail with.

Each error carries a stable snake_case ``code``: the same string lands in the
integration log's ``error_code`` column, in ``--json`` output and selects the
CLI exit code, so scripts never have to parse messages.  Messages must never
contain a secret: adapters pass already-redacted vendor bodies.

Configuration and usage errors live outside :class:`ConnectorError` on purpose
(as in django-anymail): nothing in the resilience pipeline may retry or swallow
a broken installation.
"""

from __future__ import annotations

from typing import Any


class ExitCode:
    """Process exit codes, documented in the README and docs/operations.md."""

    OK = 0
    FAILED = 1
    USAGE = 2
    CIRCUIT_OPEN = 3
    RATE_LIMITED = 4
    CREDENTIALS = 5
    STATE_UNAVAILABLE = 6
    SERVICE_DOWN = 7
    DECLINED = 8
    UNCERTAIN = 9


class ConnectorctlError(Exception):
    """Root of every error this package raises on purpose."""

    code = "error"
    exit_code = ExitCode.FAILED
    hint: str | None = None
    correlation_id: str | None = None  # set by the pipeline on an error from a vendor call
    attempts: int | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            data["hint"] = self.hint
        return data


class ConfigurationError(ConnectorctlError):
    """The installation is wrong (config file, unknown vendor, master key setup)."""

    code = "config_error"
    exit_code = ExitCode.USAGE


class InvalidInputError(ConnectorctlError):
    """The caller's input is wrong before any vendor was contacted."""

    code = "invalid_input"
    exit_code = ExitCode.USAGE


class StateStoreError(ConnectorctlError):
    """The SQLite state file cannot be used (locked too long, read-only, corrupt)."""

    code = "state_unavailable"
    exit_code = ExitCode.STATE_UNAVAILABLE


class ConnectorError(ConnectorctlError):
    """A vendor call failed.

    ``transient`` failures may be retried and fail over to the next vendor;
    ``counts_against_circuit`` says whether the circuit breaker should count it
    (a caller's 4xx must never open a circuit).  ``vendor_processed`` is False
    only when the failure proves the vendor never acted on the request, which is
    what makes retrying a non-idempotent call safe.
    """

    code = "vendor_error"
    transient = False
    counts_against_circuit = False

    def __init__(
        self,
        message: str,
        *,
        service: str | None = None,
        http_status: int | None = None,
        response_data: Any = None,
        vendor_processed: bool | None = None,
        retry_after_seconds: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_seconds = retry_after_seconds
        self.service = service
        self.http_status = http_status
        self.response_data = response_data
        self.vendor_processed = vendor_processed

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.service:
            data["service"] = self.service
        if self.http_status is not None:
            data["http_status"] = self.http_status
        if self.retry_after_seconds is not None:
            data["retry_after_seconds"] = self.retry_after_seconds
        return data


class ConnectionFailedError(ConnectorError):
    """Transport failure or vendor 5xx: worth retrying and failing over."""

    code = "connection_failed"
    transient = True
    counts_against_circuit = True


class VendorUnavailableError(ConnectionFailedError):
    """The vendor answered with a 5xx."""

    code = "vendor_unavailable"


class VendorTimeoutError(ConnectionFailedError):
    """No answer within the configured timeout; the vendor may have acted."""

    code = "timeout"


class RateLimitedError(ConnectorError):
    """Our own quota or the vendor's 429; never processed by the vendor."""

    code = "rate_limited"
    exit_code = ExitCode.RATE_LIMITED
    transient = True
    counts_against_circuit = True

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("vendor_processed", False)
        super().__init__(message, **kwargs)


class LocalRateLimitedError(RateLimitedError):
    """Our own configured quota refused the call: the vendor is healthy."""

    counts_against_circuit = False


class AuthenticationError(ConnectorError):
    """The vendor rejected our credentials (401/403)."""

    code = "auth_failed"
    exit_code = ExitCode.CREDENTIALS


class CircuitOpenError(ConnectorError):
    code = "circuit_open"
    exit_code = ExitCode.CIRCUIT_OPEN

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("vendor_processed", False)
        super().__init__(message, **kwargs)


class CredentialNotFoundError(ConnectorError):
    code = "credential_not_found"
    exit_code = ExitCode.CREDENTIALS


class CredentialRefreshError(ConnectorError):
    code = "credential_refresh_failed"
    exit_code = ExitCode.CREDENTIALS


class CredentialUnreadableError(ConnectorError):
    """A stored credential cannot be decrypted (wrong master key, corrupted row)."""

    code = "credential_unreadable"
    exit_code = ExitCode.CREDENTIALS


class ValidationError(ConnectorError):
    """The vendor refused the request as invalid (400/422): do not retry."""

    code = "validation_failed"


class VendorRejectedError(ConnectorError):
    """A permanent refusal that is not about the request's shape (e.g. 402, 404)."""

    code = "vendor_rejected"


class PaymentDeclinedError(ConnectorError):
    """The payer's bank or the vendor declined: final, so never retried and never counted against the circuit."""

    code = "payment_declined"
    exit_code = ExitCode.DECLINED

    def __init__(
        self, message: str, *, decline_code: str | None = None, payment_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.decline_code = decline_code
        self.payment_id = payment_id

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update({k: v for k, v in (("decline_code", self.decline_code), ("payment_id", self.payment_id)) if v})
        return data


class OutcomeUncertainError(ConnectorError):
    """The vendor may have acted but its answer was lost; the intent stays ``uncertain`` until reconciled."""

    code = "outcome_uncertain"
    exit_code = ExitCode.UNCERTAIN


class RemoteFileNotFoundError(ConnectorError):
    code = "file_not_found"


class UnsupportedFeatureError(ConnectorError):
    """The vendor cannot do what the message needs; never silently dropped."""

    code = "unsupported_feature"


class SuppressedError(ConnectorctlError):
    """A recipient is on the suppression list (hard bounce, complaint, unsubscribe): refused before any vendor call."""

    code = "suppressed"

    def __init__(self, message: str, *, address: str, reason: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.address = address
        self.reason = reason


ERROR_CODES: dict[str, type[ConnectorctlError]] = {
    cls.code: cls
    for cls in (
        ConfigurationError,
        InvalidInputError,
        StateStoreError,
        ConnectorError,
        ConnectionFailedError,
        VendorUnavailableError,
        VendorTimeoutError,
        RateLimitedError,
        AuthenticationError,
        CircuitOpenError,
        CredentialNotFoundError,
        CredentialRefreshError,
        CredentialUnreadableError,
        ValidationError,
        VendorRejectedError,
        PaymentDeclinedError,
        OutcomeUncertainError,
        RemoteFileNotFoundError,
        UnsupportedFeatureError,
        SuppressedError,
    )
}

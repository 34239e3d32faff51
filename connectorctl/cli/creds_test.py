"""The logic behind ``creds test``: classify one harmless authenticated call.

``ok`` - the vendor accepted the credential; ``rejected`` - it answered 401/403
(or the OAuth2 token could not be renewed); ``unreachable`` - transport error,
timeout, 5xx or open circuit.  The detail is scrubbed of the credential's own
values in case a vendor echoes them back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectorctl.gateway import Connector


def verify(connector: "Connector", service: str, tenant_id: str | None) -> tuple[dict[str, Any], int]:
    from connectorctl.adapters.catalog import declaration, known_slugs
    from connectorctl.errors import (
        AuthenticationError,
        CircuitOpenError,
        ConfigurationError,
        ConnectionFailedError,
        ConnectorError,
        CredentialNotFoundError,
        CredentialRefreshError,
        CredentialUnreadableError,
        ExitCode,
        UnsupportedFeatureError,
    )
    from connectorctl.redaction import Redactor

    vendor = declaration(service)
    if vendor is None:
        raise ConfigurationError(f"unknown vendor {service!r} (known: {', '.join(known_slugs())})")
    adapter = connector.adapter(service, sorted(vendor.channels)[0])
    result: dict[str, Any] = {
        "service": service,
        "tenant": tenant_id,
        "result": "ok",
        "http_status": None,
        "detail": None,
    }
    code = ExitCode.OK
    try:
        response = adapter.verify_credentials(tenant_id)
        result["http_status"] = response.http_status
    except (CredentialNotFoundError, CredentialUnreadableError):
        raise
    except (AuthenticationError, CredentialRefreshError) as exc:
        result.update(result="rejected", http_status=exc.http_status, detail=exc.message)
        code = ExitCode.CREDENTIALS
    except (ConnectionFailedError, CircuitOpenError) as exc:
        result.update(result="unreachable", http_status=exc.http_status, detail=exc.message)
        code = ExitCode.SERVICE_DOWN
    except UnsupportedFeatureError as exc:
        result.update(result="unsupported", detail=exc.message)
        code = ExitCode.FAILED
    except ConnectorError as exc:
        result.update(result="failed", http_status=exc.http_status, detail=exc.message)
        code = ExitCode.FAILED
    if result["detail"]:
        secrets: tuple[str, ...] = ()
        try:
            secrets = tuple(connector.credentials.get(service, tenant_id).data.values())
        except ConnectorError:
            pass
        result["detail"] = Redactor((), secrets).text(result["detail"])
    return result, code

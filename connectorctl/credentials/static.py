"""An in-memory credential provider for tests and embedding applications."""

from __future__ import annotations

from typing import Mapping

from connectorctl.credentials.provider import infer_auth_method
from connectorctl.domain.values import Credentials
from connectorctl.errors import CredentialNotFoundError


class StaticCredentialProvider:
    def __init__(self, entries: Mapping[str, Credentials | Mapping[str, str]]) -> None:
        self._entries: dict[tuple[str, str | None], Credentials] = {}
        for key, value in entries.items():
            service, _, tenant = key.partition("@")
            creds = (
                value
                if isinstance(value, Credentials)
                else Credentials(service, infer_auth_method(value), dict(value), source="static")
            )
            self._entries[(service, tenant or None)] = creds

    def get(self, service_name: str, tenant_id: str | None = None) -> Credentials:
        for key in ((service_name, tenant_id), (service_name, None)):
            if key in self._entries:
                return self._entries[key]
        raise CredentialNotFoundError(
            f"no credentials for {service_name}" + (f" (tenant {tenant_id})" if tenant_id else ""),
            service=service_name,
            hint=f"connectorctl creds set {service_name}",
        )

    def has(self, service_name: str, tenant_id: str | None = None) -> bool:
        return (service_name, tenant_id) in self._entries or (service_name, None) in self._entries

    def refresh(self, service_name: str, tenant_id: str | None = None) -> Credentials:
        return self.get(service_name, tenant_id)

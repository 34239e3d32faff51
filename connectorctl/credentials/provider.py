"""``StoreCredentialProvider``: what adapters call to get ready-to-use credentials.

Resolution order for ``get(service, tenant)``:

1. the tenant's own stored credential (when a tenant is given and it is active);
2. ``env:VAR`` references in ``vendors.<slug>.credentials`` (twelve-factor);
3. the global stored credential (tenant NULL);
4. when nothing is stored for the service at all, the vendor's own environment
   variables (``SENDGRID_API_KEY``, ``TWILIO_ACCOUNT_SID``... see
   :mod:`connectorctl.credentials.vendor_env`).

OAuth2 access tokens are renewed ``REFRESH_SKEW`` seconds before they expire
and, through :func:`call_with_credentials` (which every adapter's base uses),
once after a vendor 401; a second refusal is a :class:`CredentialRefreshError`.  Only the source of a credential
is ever logged (``env:SENDGRID_API_KEY``, ``store``, ``store:tenant``).
"""

from __future__ import annotations

import logging
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, TypeVar

from connectorctl.domain.roles import CredentialProvider
from connectorctl.domain.values import AuthMethod, Credentials
from connectorctl.errors import (
    AuthenticationError,
    ConfigurationError,
    CredentialNotFoundError,
    CredentialRefreshError,
    CredentialUnreadableError,
)
from connectorctl.resilience.clock import Clock
from connectorctl.settings import Settings
from connectorctl.store.db import StateDB

if TYPE_CHECKING:
    import sqlite3

    from connectorctl.credentials.oauth2 import TokenEndpoint
    from connectorctl.credentials.store import CredentialStore, StoredRow

log = logging.getLogger("connectorctl.credentials")
T = TypeVar("T")
REFRESH_SKEW = 60.0
TOUCH_EVERY = 60.0


def infer_auth_method(fields: Mapping[str, str]) -> AuthMethod:
    names = set(fields)
    if {"username", "password"} <= names:
        return AuthMethod.BASIC_AUTH
    if names & {"access_token", "client_secret", "refresh_token"}:
        return AuthMethod.OAUTH2
    if {"key_id", "secret"} <= names or {"access_key_id", "secret_access_key"} <= names:  # generic, or S3's own names
        return AuthMethod.HMAC
    if "token" in names:
        return AuthMethod.BEARER_TOKEN
    return AuthMethod.API_KEY


def set_command(service: str, tenant_id: str | None) -> str:
    return f"connectorctl creds set {service}" + (f" --tenant {tenant_id}" if tenant_id else "")


class StoreCredentialProvider:
    """Implements :class:`~connectorctl.domain.roles.CredentialProvider` over the encrypted store."""

    def __init__(self, settings: Settings, db: Callable[[], StateDB], clock: Clock, tokens: "TokenEndpoint") -> None:
        """``db`` is opened on first use: a dry-run or a vendor without credentials never opens the state file."""
        self.settings = settings
        self._db = db
        self.clock = clock
        self.tokens = tokens
        self._locks: dict[tuple[str, str | None], threading.Lock] = {}
        self._guard = threading.Lock()
        self._touched: dict[str, float] = {}
        self._env_tokens: dict[tuple[str, str | None], Credentials] = {}
        self._opened: dict[
            str, tuple[str, str | None, dict[str, str]]
        ] = {}  # row id -> (sealed data, sealed refresh, fields)

    @cached_property
    def db(self) -> StateDB:
        return self._db()

    @cached_property
    def store(self) -> "CredentialStore":
        from connectorctl.credentials.masterkey import MasterKeys, select_source
        from connectorctl.credentials.store import CredentialStore

        source = select_source(self.settings.master_key_file, self.installation_id)
        return CredentialStore(self.db, MasterKeys(source))

    def installation_id(self) -> str:
        """Names this installation's keyring entry; created once, kept in the state file."""
        db = self.db
        row = db.run(lambda c: c.execute("SELECT value FROM credential_meta WHERE name = 'installation_id'").fetchone())
        if row:
            return row[0]
        from connectorctl.resilience.pipeline import new_id

        def create(conn: sqlite3.Connection) -> str:
            conn.execute(
                "INSERT INTO credential_meta (name, value) VALUES ('installation_id', ?) ON CONFLICT (name) DO NOTHING",
                (new_id().lower(),),
            )
            return conn.execute("SELECT value FROM credential_meta WHERE name = 'installation_id'").fetchone()[0]

        if db.in_transaction():  # first key lookup happens inside a credential write
            return db.run(create)
        with db.write() as conn:
            return create(conn)

    # -- the CredentialProvider role ------------------------------------------
    def get(self, service_name: str, tenant_id: str | None = None) -> Credentials:
        row = self._tenant_row(service_name, tenant_id)
        if row is None:
            env = self._from_env(service_name, tenant_id)
            if env is not None:
                return env
            standard = self._from_vendor_env(service_name, tenant_id)
            if standard is not None:
                return standard
            row = self._global_row(service_name, tenant_id)
        return self._from_row(row)

    def has(self, service_name: str, tenant_id: str | None = None) -> bool:
        refs = self.settings.vendor(service_name).credentials
        if refs and all(isinstance(r, str) and r.startswith("env:") and os.environ.get(r[4:]) for r in refs.values()):
            return True
        if self._find_active(service_name, tenant_id) is not None or self._find_active(service_name, None) is not None:
            return True
        try:
            return self._from_vendor_env(service_name, tenant_id) is not None
        except (CredentialNotFoundError, CredentialUnreadableError):
            return False

    def source_of(self, service: str) -> tuple[list[str], str]:
        """``(field names, where from)`` for the global credential ``get(service)`` would use; nothing is decrypted."""
        from connectorctl.credentials.vendor_env import vendor_env_credentials

        refs = self.settings.vendor(service).credentials
        if refs:  # only env:VAR references are shown; anything else is a literal secret (refused when used)
            return sorted(refs), ",".join(
                r if isinstance(r, str) and r.startswith("env:") else "*** (a literal: refused)" for r in refs.values()
            )
        row = self.store.find(service, None) if _exists(self.settings.database) else None
        if row is not None:
            return list(row.field_names), "store" if row.is_active else "store (disabled)"
        try:
            found = vendor_env_credentials(service)
        except (CredentialNotFoundError, CredentialUnreadableError) as exc:
            return [], f"incomplete: {exc.message}"
        return (sorted(found[0]), found[1]) if found else ([], "not configured")

    def env_sources(self) -> list[Credentials]:
        """Credentials that come from the environment rather than the store, for ``creds list``.

        The values stay in memory.
        """
        from connectorctl.adapters.catalog import VENDORS

        found = []
        for service in sorted(VENDORS):
            try:
                creds = (
                    self._from_env(service, None)
                    if self.settings.vendor(service).credentials
                    else self._from_vendor_env(service, None)
                )
            except (CredentialNotFoundError, CredentialUnreadableError, ConfigurationError, CredentialRefreshError):
                continue
            if creds is not None:
                found.append(creds)
        return found

    def refresh(self, service_name: str, tenant_id: str | None = None) -> Credentials:
        """Renew an OAuth2 access token now; other methods are re-read from their source."""
        row = self._tenant_row(service_name, tenant_id)
        if row is None and self.settings.vendor(service_name).credentials:
            creds = self._from_env(service_name, tenant_id, force_refresh=True)
            assert creds is not None
            return creds
        if row is None:
            row = self._global_row(service_name, tenant_id)
        if row.auth_method == AuthMethod.OAUTH2.value:
            return self._refresh_row(row, force=True)
        return self.get(service_name, tenant_id)

    # -- internals --------------------------------------------------------------
    def _find_active(self, service: str, tenant_id: str | None) -> "StoredRow | None":
        row = self.store.find(service, tenant_id)
        return row if row is not None and row.is_active else None

    def _tenant_row(self, service: str, tenant_id: str | None) -> "StoredRow | None":
        return self._find_active(service, tenant_id) if tenant_id else None

    def _global_row(self, service: str, tenant_id: str | None) -> "StoredRow":
        """The global fallback; raises when there is none (``tenant_id`` only shapes the message)."""
        row = self._find_active(service, None)
        if row is None:
            disabled = [
                r
                for r in (self.store.find(service, tenant_id), self.store.find(service, None))
                if r is not None and not r.is_active
            ]
            where = f" for tenant {tenant_id} or globally" if tenant_id else ""
            if disabled:
                raise CredentialNotFoundError(
                    f"the credential for {disabled[0].label} is disabled",
                    service=service,
                    hint=f"connectorctl creds enable {service}"
                    + (f" --tenant {disabled[0].tenant_id}" if disabled[0].tenant_id else ""),
                )
            raise CredentialNotFoundError(
                f"no credentials stored for {service}{where}", service=service, hint=set_command(service, tenant_id)
            )
        return row

    def _from_row(self, row: "StoredRow") -> Credentials:
        from connectorctl.credentials.store import epoch

        fields = self._decrypt(row)
        expires = epoch(row.expires_at)
        now = self.clock.time()
        if row.auth_method == AuthMethod.OAUTH2.value and (
            not fields.get("access_token") or (expires is not None and expires - REFRESH_SKEW <= now)
        ):
            return self._refresh_row(row)
        if expires is not None and expires <= now:
            raise CredentialRefreshError(
                f"the credential for {row.label} expired at {row.expires_at} and has no refresh path",
                service=row.service_name,
                hint=set_command(row.service_name, row.tenant_id),
            )
        self._touch(row.id, now)
        return self._credentials(row, fields, expires)

    def _decrypt(self, row: "StoredRow") -> dict[str, str]:
        """Open a row once per process: the same ciphertext always opens to the same fields."""
        hit = self._opened.get(row.id)
        if hit is not None and hit[0] == row.credential_data and hit[1] == row.refresh_token:
            return dict(hit[2])
        fields = self.store.decrypt(row)
        self._opened[row.id] = (row.credential_data, row.refresh_token, dict(fields))
        return fields

    def _credentials(self, row: "StoredRow", fields: Mapping[str, str], expires: float | None) -> Credentials:
        from datetime import datetime, timezone

        source = "store:tenant" if row.tenant_id else "store"
        log.debug("credentials for %s from %s", row.label, source)
        return Credentials(
            row.service_name,
            AuthMethod(row.auth_method),
            fields,
            tenant_id=row.tenant_id,
            expires_at=datetime.fromtimestamp(expires, timezone.utc) if expires is not None else None,
            source=source,
        )

    def _lock(self, key: tuple[str, str | None]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _refresh_row(self, row: "StoredRow", *, force: bool = False) -> Credentials:
        """One refresh at a time per credential; a waiter reuses the token the first one got."""
        from connectorctl.credentials.oauth2 import fetch_token
        from connectorctl.credentials.store import epoch

        with self._lock((row.service_name, row.tenant_id)):
            latest = self.store.find(row.service_name, row.tenant_id) or row
            fields = self.store.decrypt(latest)
            expires = epoch(latest.expires_at)
            now = self.clock.time()
            renewed_meanwhile = latest.credential_data != row.credential_data  # a fresh nonce makes every write differ
            fresh = fields.get("access_token") and (expires is None or expires - REFRESH_SKEW > now)
            if fresh and (not force or renewed_meanwhile):
                return self._credentials(latest, fields, expires)
            try:
                updated, new_expiry = fetch_token(self.tokens, row.service_name, row.tenant_id, fields)
            except CredentialRefreshError:
                # Another process may have renewed (and rotated the refresh token) first: use its token.
                other = self.store.find(row.service_name, row.tenant_id)
                if other is not None and other.credential_data != latest.credential_data:
                    other_fields, other_expiry = self.store.decrypt(other), epoch(other.expires_at)
                    if other_fields.get("access_token") and (other_expiry is None or other_expiry - REFRESH_SKEW > now):
                        return self._credentials(other, other_fields, other_expiry)
                raise
            self.store.update_secrets(latest, updated, new_expiry, now)
            log.info("renewed the OAuth2 access token for %s", latest.label)
            self._touch(latest.id, now)
            return self._credentials(latest, updated, new_expiry)

    def _touch(self, row_id: str, now: float) -> None:
        """Record last use at most once a minute per process: a write per call would cost more than the call."""
        last = self._touched.get(row_id)
        if last is not None and now - last < TOUCH_EVERY:
            return
        self._touched[row_id] = now
        try:
            self.store.touch(row_id, now)
        except Exception:  # noqa: BLE001 - bookkeeping must never fail a send (e.g. read-only database)
            log.debug("could not record last use of credential %s", row_id)

    def _from_env(self, service: str, tenant_id: str | None, *, force_refresh: bool = False) -> Credentials | None:
        config = self.settings.vendor(service)
        if not config.credentials:
            return None
        fields: dict[str, str] = {}
        sources: list[str] = []
        for name, ref in config.credentials.items():
            if not isinstance(ref, str) or not ref.startswith("env:") or len(ref) <= 4:
                raise ConfigurationError(
                    f"vendors.{service}.credentials.{name} must be an env:VAR reference (secrets never go in the "
                    "config file)"
                )
            var = ref[4:]
            value = os.environ.get(var)
            if not value:
                raise CredentialNotFoundError(
                    f"vendors.{service}.credentials.{name} refers to ${var}, which is not set",
                    service=service,
                    hint=f"export {var}=... (or remove the reference and run `connectorctl creds set {service}`)",
                )
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:  # undecodable bytes arrive as surrogates and would fail mid-request
                    raise CredentialUnreadableError(
                        f"vendors.{service}.credentials.{name}: ${var} is not UTF-8 text", service=service
                    ) from None
            fields[name], sources = value, [*sources, ref]
        method = AuthMethod(config.auth_method) if config.auth_method else infer_auth_method(fields)
        source = ",".join(sources)
        log.info("credentials for %s from %s", service, source)
        if method is AuthMethod.OAUTH2:
            return self._env_oauth2(service, tenant_id, fields, source, force_refresh)
        return Credentials(service, method, fields, tenant_id=None, source=source)

    def _from_vendor_env(self, service: str, tenant_id: str | None) -> Credentials | None:
        """The vendor's standard variables, only when nothing at all is stored for the service."""
        from connectorctl.credentials.vendor_env import credential_env, vendor_env_credentials

        if (
            not credential_env(service)
            or self.store.find(service, None) is not None
            or (tenant_id and self.store.find(service, tenant_id))
        ):
            return None
        found = vendor_env_credentials(service)
        if found is None:
            return None
        fields, source = found
        log.info("credentials for %s from %s", service, source)
        return Credentials(service, infer_auth_method(fields), fields, tenant_id=None, source=source)

    def _env_oauth2(
        self, service: str, tenant_id: str | None, fields: dict[str, str], source: str, force: bool
    ) -> Credentials:
        """Tokens obtained for env-configured clients live only in this process's memory."""
        from datetime import datetime, timezone

        from connectorctl.credentials.oauth2 import fetch_token

        key = (service, None)
        with self._lock(key):
            cached = self._env_tokens.get(key)
            now = self.clock.time()
            if (
                cached is not None
                and not force
                and (cached.expires_at is None or cached.expires_at.timestamp() - REFRESH_SKEW > now)
            ):
                return cached
            if fields.get("access_token") and not force and cached is None:
                return Credentials(service, AuthMethod.OAUTH2, fields, source=source)
            base = dict(cached.data) if cached is not None else fields
            updated, expiry = fetch_token(self.tokens, service, tenant_id, base)
            creds = Credentials(
                service,
                AuthMethod.OAUTH2,
                updated,
                source=source,
                expires_at=datetime.fromtimestamp(expiry, timezone.utc) if expiry is not None else None,
            )
            self._env_tokens[key] = creds
            return creds


def call_with_credentials(
    provider: CredentialProvider,
    service: str,
    tenant_id: str | None,
    fn: Callable[[Credentials], T],
    *,
    get: Callable[[], Credentials] | None = None,
) -> T:
    """Call ``fn`` with fresh credentials (from ``get``, else the provider).

    After a 401 an OAuth2 token is renewed once and the call tried again.
    """
    creds = get() if get is not None else provider.get(service, tenant_id)
    try:
        return fn(creds)
    except AuthenticationError as exc:
        if creds.auth_method is not AuthMethod.OAUTH2:
            raise
        first = exc
    creds = provider.refresh(service, tenant_id)
    try:
        return fn(creds)
    except AuthenticationError as exc:
        raise CredentialRefreshError(
            f"{service}: the vendor still refuses the renewed access token (HTTP "
            f"{exc.http_status or first.http_status})",
            service=service,
            http_status=exc.http_status,
            hint=f"connectorctl creds test {service}",
        ) from None


def _exists(database: Path | str) -> bool:
    """A SQLite file may not exist yet (reading must not create it); a PostgreSQL database always does."""
    return isinstance(database, str) or database.exists()


def store_provider(provider: CredentialProvider) -> StoreCredentialProvider:
    """The encrypted-store provider behind ``provider``: the commands that manage stored credentials need it.

    An application may pass its own provider to ``Connector``; the store commands then have nothing to manage.
    """
    if not isinstance(provider, StoreCredentialProvider):
        raise ConfigurationError("this installation's credentials do not come from the encrypted store")
    return provider

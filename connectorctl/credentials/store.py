"""The encrypted ``connector_credentials`` table: seal on write, open per row on read.

Every read opens only the row it needs, so one corrupted row fails alone with
:class:`CredentialUnreadableError` while the others keep working.  Writes pick
the master key inside their ``BEGIN IMMEDIATE`` transaction and compare it with
the key id recorded in ``credential_meta``: a process that cached a key from
before a ``rotate-key`` reloads it instead of writing under the old one, and a
wrong key (say, another machine's keyring) is refused before it mixes keys.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from connectorctl.credentials.crypto import MasterKey, SealError, associated_data, open_sealed, seal, sealed_key_id
from connectorctl.credentials.masterkey import MasterKeys
from connectorctl.errors import CredentialUnreadableError
from connectorctl.store.db import StateDB
from connectorctl.times import whole_seconds

PRIMARY_FIELDS = ("api_key", "token", "access_token", "password", "secret", "client_secret")
COLUMNS = (
    "id",
    "tenant_id",
    "service_name",
    "auth_method",
    "credential_data",
    "refresh_token",
    "key_id",
    "field_names",
    "hint",
    "expires_at",
    "is_active",
    "created_at",
    "updated_at",
    "last_used_at",
)


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (
        TypeError,
        ValueError,
    ):  # a damaged row counts as expired: refreshed if it can be, else "expired at ..." + hint
        return 0.0


def mask(secret: str) -> str:
    """A hint that identifies a secret without revealing it, e.g. ``SG.…f3a9``."""
    if len(secret) >= 20:
        return f"{secret[:3]}…{secret[-4:]}"
    if len(secret) >= 12:
        return f"…{secret[-4:]}"
    return "…"


def hint_for(fields: Mapping[str, str]) -> str:
    for name in PRIMARY_FIELDS:
        if fields.get(name):
            return mask(fields[name])
    return mask(next(iter(fields.values()), ""))


@dataclass(frozen=True)
class StoredRow:
    """One row as stored: metadata in clear, secrets still sealed."""

    id: str
    tenant_id: str | None
    service_name: str
    auth_method: str
    credential_data: str
    refresh_token: str | None
    key_id: str
    field_names: tuple[str, ...]
    hint: str | None
    expires_at: str | None
    is_active: bool
    created_at: str
    updated_at: str
    last_used_at: str | None

    @classmethod
    def from_db(cls, row: tuple[Any, ...]) -> "StoredRow":
        data = dict(zip(COLUMNS, row, strict=True))
        try:
            data["field_names"] = tuple(str(f) for f in json.loads(data["field_names"]))
        except (
            TypeError,
            ValueError,
        ):  # display metadata only (the sealed data holds the fields): keep the row usable and fixable
            data["field_names"] = ()
        data["is_active"] = bool(data["is_active"])
        for name in ("expires_at", "created_at", "updated_at", "last_used_at"):
            data[name] = whole_seconds(data[name])
        return cls(**data)

    @property
    def label(self) -> str:
        return self.service_name + (f" (tenant {self.tenant_id})" if self.tenant_id else "")

    def summary(self) -> dict[str, Any]:
        """Everything ``list``/``show`` may print: never a secret."""
        return {
            "service": self.service_name,
            "tenant": self.tenant_id,
            "auth_method": self.auth_method,
            "hint": self.hint,
            "fields": list(self.field_names),
            "expires_at": self.expires_at,
            "last_used_at": self.last_used_at,
            "active": self.is_active,
            "key_id": self.key_id,
            "updated_at": self.updated_at,
        }


class CredentialStore:
    def __init__(self, db: StateDB, keys: MasterKeys) -> None:
        self.db = db
        self.keys = keys

    # -- reading ------------------------------------------------------------
    def find(self, service: str, tenant_id: str | None) -> StoredRow | None:
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM connector_credentials WHERE service_name = ? AND coalesce(tenant_id, "
            "'') = ?"
        )
        row = self.db.run(lambda c: c.execute(sql, (service, tenant_id or "")).fetchone())
        return StoredRow.from_db(row) if row else None

    def rows(self, tenant_id: str | None = None, service: str | None = None) -> list[StoredRow]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM connector_credentials WHERE 1=1"
        args: list[Any] = []
        if tenant_id is not None:
            sql, args = sql + " AND tenant_id = ?", [*args, tenant_id]
        if service is not None:
            sql, args = sql + " AND service_name = ?", [*args, service]
        sql += " ORDER BY service_name, coalesce(tenant_id, '')"
        return [StoredRow.from_db(r) for r in self.db.run(lambda c: c.execute(sql, args).fetchall())]

    def decrypt(self, row: StoredRow) -> dict[str, str]:
        """All secret fields of one row (``refresh_token`` included)."""
        fields = json.loads(self._open(row, row.credential_data, "credential_data"))
        if row.refresh_token:
            fields["refresh_token"] = self._open(row, row.refresh_token, "refresh_token")
        return fields

    def _open(self, row: StoredRow, token: str, column: str) -> str:
        try:
            kid = sealed_key_id(token)
            key = self.keys.for_id(kid)
            if key is None and self.keys.load("current") is None:
                raise CredentialUnreadableError(
                    f"credential {row.label} was sealed with master key {kid}, but {self.keys.source.name} holds no "
                    "master key",
                    service=row.service_name,
                    hint="restore the master key this database was written with (docs/credentials.md)",
                )
            if key is None:
                raise CredentialUnreadableError(
                    f"credential {row.label} was sealed with master key {kid}, which is not the configured one "
                    f"({self.keys.source.name}): wrong master key",
                    service=row.service_name,
                    hint="point connectorctl at the master key this database was written with (docs/credentials.md)",
                )
            return open_sealed(key, token, associated_data(row.service_name, row.tenant_id, column)).decode("utf-8")
        except SealError as exc:
            raise CredentialUnreadableError(
                f"credential {row.label} cannot be decrypted: {exc.reason}",
                service=row.service_name,
                hint=f"connectorctl creds set {row.service_name}"
                + (f" --tenant {row.tenant_id}" if row.tenant_id else ""),
            ) from None

    # -- writing ------------------------------------------------------------
    def key_for_write(self, conn: sqlite3.Connection) -> MasterKey:
        """The key new ciphertext must use; called inside the write transaction."""
        recorded = conn.execute("SELECT value FROM credential_meta WHERE name = 'current_key_id'").fetchone()
        key = self.keys.load("current")
        if key is None and recorded is not None:
            raise CredentialUnreadableError(
                f"no master key in {self.keys.source.name}, but this database was written with key {recorded[0]}",
                hint="restore that master key (see docs/credentials.md); a new one would not decrypt the stored "
                "credentials",
            )
        key = key or self.keys.current(create=True)
        if recorded is None or recorded[0] == key.key_id:
            if recorded is None:
                conn.execute("INSERT INTO credential_meta (name, value) VALUES ('current_key_id', ?)", (key.key_id,))
            return key
        fresh = self.keys.load("current", fresh=True)
        if fresh is not None and fresh.key_id == recorded[0]:
            return fresh
        previous = self.keys.load("previous", fresh=True)
        if fresh is not None and previous is not None and previous.key_id == recorded[0]:
            return fresh  # a rotation is under way; rotate-key will finish it
        raise CredentialUnreadableError(
            f"the master key in {self.keys.source.name} (id {key.key_id}) is not the one this database uses (id "
            f"{recorded[0]}): wrong master key",
            hint="point connectorctl at the right key, or run `connectorctl creds rotate-key` after exporting "
            "the old one as CONNECTORCTL_MASTER_KEY_PREVIOUS",
        )

    def seal_row(
        self, key: MasterKey, service: str, tenant_id: str | None, fields: Mapping[str, str]
    ) -> tuple[str, str | None]:
        secret = {k: v for k, v in fields.items() if k != "refresh_token"}
        data = seal(
            key,
            json.dumps(secret, separators=(",", ":")).encode("utf-8"),
            associated_data(service, tenant_id, "credential_data"),
        )
        refresh = fields.get("refresh_token")
        sealed_refresh = (
            seal(key, refresh.encode("utf-8"), associated_data(service, tenant_id, "refresh_token"))
            if refresh
            else None
        )
        return data, sealed_refresh

    def put(
        self,
        service: str,
        tenant_id: str | None,
        auth_method: str,
        fields: Mapping[str, str],
        expires_at: float | None,
        now: float,
    ) -> StoredRow:
        from connectorctl.resilience.pipeline import new_id

        stamp = iso(now)
        with self.db.write() as conn:
            key = self.key_for_write(conn)
            data, refresh = self.seal_row(key, service, tenant_id, fields)
            existing = conn.execute(
                "SELECT id FROM connector_credentials WHERE service_name = ? AND coalesce(tenant_id, '') = ?",
                (service, tenant_id or ""),
            ).fetchone()
            values = (
                auth_method,
                data,
                refresh,
                key.key_id,
                json.dumps(sorted(fields)),
                hint_for(fields),
                iso(expires_at),
                stamp,
            )
            if existing:
                conn.execute(
                    "UPDATE connector_credentials SET auth_method=?, credential_data=?, refresh_token=?, key_id=?, "
                    "field_names=?, hint=?, "
                    "expires_at=?, updated_at=?, is_active=1 WHERE id=?",
                    (*values, existing[0]),
                )
            else:
                conn.execute(
                    "INSERT INTO connector_credentials (auth_method, credential_data, refresh_token, key_id, "
                    "field_names, hint, expires_at, "
                    "updated_at, id, service_name, tenant_id, created_at, is_active) VALUES "
                    "(?,?,?,?,?,?,?,?,?,?,?,?,1)",
                    (*values, new_id(), service, tenant_id, stamp),
                )
        row = self.find(service, tenant_id)
        assert row is not None
        return row

    def update_secrets(self, row: StoredRow, fields: Mapping[str, str], expires_at: float | None, now: float) -> None:
        """Replace the secrets of an existing row (after an OAuth2 refresh), keeping its metadata."""
        with self.db.write() as conn:
            key = self.key_for_write(conn)
            data, refresh = self.seal_row(key, row.service_name, row.tenant_id, fields)
            conn.execute(
                "UPDATE connector_credentials SET credential_data=?, refresh_token=?, key_id=?, hint=?, expires_at=?, "
                "updated_at=? WHERE id=?",
                (data, refresh, key.key_id, hint_for(fields), iso(expires_at), iso(now), row.id),
            )

    def delete(self, row: StoredRow) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM connector_credentials WHERE id = ?", (row.id,))

    def set_active(self, row: StoredRow, active: bool, now: float) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE connector_credentials SET is_active = ?, updated_at = ? WHERE id = ?",
                (int(active), iso(now), row.id),
            )

    def touch(self, row_id: str, now: float) -> None:
        self.db.run(
            lambda c: c.execute("UPDATE connector_credentials SET last_used_at = ? WHERE id = ?", (iso(now), row_id))
        )

"""Schema of the credentials area (migrations 10-19).

``connector_credentials`` follows the reference design: one row per service and
tenant (NULL tenant = the global credential), secrets only as AES-GCM sealed
text.  SQLite treats NULLs as distinct in a UNIQUE constraint, so uniqueness is
an expression index over ``coalesce(tenant_id, '')``.  ``key_id`` repeats the
master-key id found inside the sealed values so ``rotate-key`` can find rows
still under the previous key with an index instead of decrypting everything.
``credential_meta`` holds the installation id that names the keyring entry.
"""

from __future__ import annotations

from typing import Any

from connectorctl.store.migrations import migration


@migration(10, "connector_credentials")
def _connector_credentials(db: Any) -> None:
    db.execute(
        """
        CREATE TABLE connector_credentials (
            id TEXT PRIMARY KEY,
            tenant_id TEXT,
            service_name TEXT NOT NULL,
            auth_method TEXT NOT NULL,
            credential_data TEXT NOT NULL,
            refresh_token TEXT,
            key_id TEXT NOT NULL,
            field_names TEXT NOT NULL,
            hint TEXT,
            expires_at TEXT,
            is_active INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_used_at TEXT
        )
        """
    )
    db.execute(
        "CREATE UNIQUE INDEX ux_credentials_service_tenant ON connector_credentials(service_name, coalesce(tenant_id, "
        "''))"
    )
    db.execute("CREATE INDEX ix_credentials_key_id ON connector_credentials(key_id)")
    db.execute("CREATE TABLE credential_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")

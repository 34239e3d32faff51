"""``rotate-key``: re-encrypt every credential under a new master key, crash-safely.

Steps (keyring or key file):

0. check that every row decrypts, and finish an interrupted rotation (rows still
   under the previous key are resealed under the current one) - nothing changes
   if any row is unreadable;
1. park the current key in the ``previous`` slot;
2. store a freshly generated key in the ``current`` slot;
3. reseal every row under the new key in ONE ``BEGIN IMMEDIATE`` transaction,
   recording the new key id in ``credential_meta``;
4. clear the ``previous`` slot.

A crash before 3 commits leaves rows under the old key, which is still in
``current`` or ``previous``; after it commits every row is under the new key.
Readers pick the key by the id inside each ciphertext, so either way every
credential stays readable.  With ``$CONNECTORCTL_MASTER_KEY`` the operator
supplies both keys (old one as ``..._PREVIOUS``) and only step 3 runs.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from connectorctl.credentials.crypto import MasterKey
from connectorctl.credentials.store import CredentialStore, StoredRow, iso


@dataclass(frozen=True)
class RotationResult:
    source: str
    old_key_id: str | None
    new_key_id: str
    reencrypted: int
    finished_interrupted: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rotate_key(store: CredentialStore, now: float) -> RotationResult:
    keys = store.keys
    for row in store.rows():
        store.decrypt(row)  # step 0: refuse before changing anything if one row is unreadable
    if not keys.source.writable:
        current = keys.current()
        previous = keys.load("previous")
        count = reseal_all(store, current, now)
        return RotationResult(keys.source.name, previous.key_id if previous else None, current.key_id, count)
    current = keys.current(create=True)
    finished = reseal_all(store, current, now)
    keys.store("previous", current)
    new = MasterKey.generate()
    keys.store("current", new)
    count = reseal_all(store, new, now)
    keys.clear("previous")
    return RotationResult(keys.source.name, current.key_id, new.key_id, count, finished)


def reseal_all(store: CredentialStore, target: MasterKey, now: float) -> int:
    """Reseal every row not yet under ``target`` in one transaction; returns how many."""
    count = 0
    with store.db.write() as conn:
        rows = [r for r in store.rows() if r.key_id != target.key_id]
        for row in rows:
            reseal_row(conn, store, row, target, now)
            count += 1
        conn.execute(
            "INSERT INTO credential_meta (name, value) VALUES ('current_key_id', ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (target.key_id,),
        )
    return count


def reseal_row(conn: sqlite3.Connection, store: CredentialStore, row: StoredRow, target: MasterKey, now: float) -> None:
    fields = store.decrypt(row)
    data, refresh = store.seal_row(target, row.service_name, row.tenant_id, fields)
    conn.execute(
        "UPDATE connector_credentials SET credential_data = ?, refresh_token = ?, key_id = ?, updated_at = ? WHERE id "
        "= ?",
        (data, refresh, target.key_id, iso(now), row.id),
    )

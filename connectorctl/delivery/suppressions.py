"""The suppression list: addresses a tenant must not send to, and why.

Vendors keep their own lists and silently drop (SendGrid ``dropped``) or
refuse later sends to a bounced address; refusing here, before any vendor
call, keeps a bad address from costing money or reputation at the next vendor
in a failover chain too.  ``force`` is the explicit override.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from connectorctl.delivery.store import suppress, tenant_key
from connectorctl.errors import InvalidInputError, SuppressedError
from connectorctl.store.db import StateDB

COLUMNS = ("tenant_id", "address", "reason", "vendor", "detail", "created_at")


@dataclass(frozen=True)
class Suppression:
    tenant_id: str
    address: str
    reason: str
    vendor: str | None
    detail: str | None
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id or None,
            "address": self.address,
            "reason": self.reason,
            "vendor": self.vendor,
            "detail": self.detail,
            "created_at": self.created_at,
        }

    def describe(self) -> str:
        via = f" via {self.vendor}" if self.vendor else ""
        return f"{self.reason} at {self.created_at}{via}"


def normalize_address(address: str) -> str:
    """An email address lowercased, or a phone number in E.164: the forms sends and reports are stored in."""
    from connectorctl.validation import normalize_email, normalize_phone

    value = address.strip()
    if not value:
        raise InvalidInputError("the address is empty")
    return normalize_email(value).lower() if "@" in value else normalize_phone(value)


def check(db: StateDB, tenant_id: str | None, recipients: Iterable[str]) -> None:
    """Raise :class:`SuppressedError` for the first suppressed recipient."""
    addresses = sorted({r.lower() if "@" in r else r for r in recipients})
    if not addresses:
        return
    marks = ", ".join("?" * len(addresses))
    row = db.run(
        lambda c: c.execute(
            f"SELECT {', '.join(COLUMNS)} FROM suppressions WHERE tenant_id = ? AND address IN ({marks}) ORDER BY "
            "address LIMIT 1",
            (tenant_key(tenant_id), *addresses),
        ).fetchone()
    )
    if row is not None:
        found = Suppression(*row)
        raise SuppressedError(
            f"suppressed: {found.describe()} ({found.address})",
            address=found.address,
            reason=found.reason,
            hint=f"send with --force to override, or lift it: connectorctl suppressions rm {found.address}",
        )


def find(db: StateDB, tenant_id: str | None, address: str) -> Suppression | None:
    """The list's entry for ``address`` (normalized first), or None."""
    row = db.run(
        lambda c: c.execute(
            f"SELECT {', '.join(COLUMNS)} FROM suppressions WHERE tenant_id = ? AND address = ?",
            (tenant_key(tenant_id), normalize_address(address)),
        ).fetchone()
    )
    return Suppression(*row) if row is not None else None


def list_suppressions(
    db: StateDB, tenant_id: str | None = None, *, reason: str | None = None, limit: int = 100
) -> list[Suppression]:
    clauses, params = ["tenant_id = ?"], [tenant_key(tenant_id)]
    if reason:
        clauses.append("reason = ?")
        params.append(reason)
    sql = (
        f"SELECT {', '.join(COLUMNS)} FROM suppressions WHERE {' AND '.join(clauses)} ORDER BY created_at DESC, "
        "address LIMIT ?"
    )
    return [Suppression(*r) for r in db.run(lambda c: c.execute(sql, (*params, limit)).fetchall())]


def add(
    db: StateDB, tenant_id: str | None, address: str, *, reason: str = "manual", detail: str | None = None, now: float
) -> bool:
    normalized = normalize_address(address)
    with db.write() as conn:
        return suppress(conn, tenant_key(tenant_id), normalized, reason, vendor=None, detail=detail, at=now)


def remove(db: StateDB, tenant_id: str | None, address: str) -> bool:
    normalized = normalize_address(address)
    with db.write() as conn:
        return bool(
            conn.execute(
                "DELETE FROM suppressions WHERE tenant_id = ? AND address = ?", (tenant_key(tenant_id), normalized)
            ).rowcount
        )

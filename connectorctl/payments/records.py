"""The payments table (migration 51): the last known state of each vendor payment.

Answers to our own calls, reconciliation and webhook events all land here
through :meth:`PaymentRecords.record`, which only moves a payment forward
(``captured`` never becomes ``authorized`` again because an old event arrived
late) and never lowers a captured or refunded amount.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from connectorctl.domain.money import Money
from connectorctl.domain.payments import Payment, PaymentStatus
from connectorctl.store.db import StateDB
from connectorctl.store.migrations import migration


@migration(51, "payments")
def _payments(db: Any) -> None:
    db.execute(
        "CREATE TABLE payments (vendor TEXT NOT NULL, payment_id TEXT NOT NULL, reference TEXT, status TEXT NOT NULL, "
        "amount INTEGER NOT NULL, currency TEXT NOT NULL, amount_captured INTEGER NOT NULL DEFAULT 0, "
        "amount_refunded INTEGER NOT NULL DEFAULT 0, decline_code TEXT, authorization_id TEXT, capture_id TEXT, "
        "created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (vendor, payment_id))"
    )
    db.execute("CREATE INDEX ix_payments_reference ON payments(reference)")
    db.execute("CREATE INDEX ix_payments_time ON payments(created_at)")
    db.execute("CREATE INDEX ix_payments_capture ON payments(vendor, capture_id) WHERE capture_id IS NOT NULL")


_COLUMNS = (
    "vendor, payment_id, reference, status, amount, currency, amount_captured, amount_refunded, decline_code, "
    "authorization_id, capture_id, created_at, updated_at"
)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _payment(row: Sequence[Any]) -> Payment:
    return Payment(
        vendor=row[0],
        payment_id=row[1],
        reference=row[2],
        status=PaymentStatus(row[3]),
        amount=Money(row[4], row[5]),
        amount_captured=row[6],
        amount_refunded=row[7],
        decline_code=row[8],
        authorization_id=row[9],
        capture_id=row[10],
    )


class PaymentRecords:
    def __init__(self, db: StateDB) -> None:
        self.db = db

    def record(self, payment: Payment) -> Payment:
        """Store what the vendor says, never moving the payment backwards; returns the stored state."""
        with self.db.write() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM payments WHERE vendor = ? AND payment_id = ?",
                (payment.vendor, payment.payment_id),
            ).fetchone()
            now = _now()
            if row is None:
                conn.execute(
                    f"INSERT INTO payments ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        payment.vendor,
                        payment.payment_id,
                        payment.reference,
                        payment.status.value,
                        payment.amount.amount,
                        payment.amount.currency,
                        payment.amount_captured,
                        payment.amount_refunded,
                        payment.decline_code,
                        payment.authorization_id,
                        payment.capture_id,
                        now,
                        now,
                    ),
                )
            else:
                old = _payment(row)
                status = payment.status if payment.status.rank >= old.status.rank else old.status
                conn.execute(
                    "UPDATE payments SET status = ?, reference = COALESCE(reference, ?), amount_captured = ?, "
                    "amount_refunded = ?, decline_code = COALESCE(?, decline_code), "
                    "authorization_id = COALESCE(authorization_id, ?), capture_id = COALESCE(capture_id, ?), "
                    "updated_at = ? "
                    "WHERE vendor = ? AND payment_id = ?",
                    (
                        status.value,
                        payment.reference,
                        max(old.amount_captured, payment.amount_captured),
                        max(old.amount_refunded, payment.amount_refunded),
                        payment.decline_code,
                        payment.authorization_id,
                        payment.capture_id,
                        now,
                        payment.vendor,
                        payment.payment_id,
                    ),
                )
            stored = conn.execute(
                f"SELECT {_COLUMNS} FROM payments WHERE vendor = ? AND payment_id = ?",
                (payment.vendor, payment.payment_id),
            ).fetchone()
        return _payment(stored)

    def get(self, payment_id: str, vendor: str | None = None) -> Payment | None:
        sql, args = f"SELECT {_COLUMNS} FROM payments WHERE payment_id = ?", [payment_id]
        if vendor:
            sql += " AND vendor = ?"
            args.append(vendor)
        row = self.db.run(lambda c: c.execute(sql + " ORDER BY updated_at DESC LIMIT 1", args).fetchone())
        return _payment(row) if row else None

    def by_reference(self, reference: str) -> Payment | None:
        row = self.db.run(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM payments WHERE reference = ? ORDER BY created_at DESC LIMIT 1", (reference,)
            ).fetchone()
        )
        return _payment(row) if row else None

    def by_capture(self, vendor: str, capture_id: str) -> Payment | None:
        row = self.db.run(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM payments WHERE vendor = ? AND capture_id = ?", (vendor, capture_id)
            ).fetchone()
        )
        return _payment(row) if row else None

    def list(
        self,
        *,
        status: PaymentStatus | None = None,
        since: str | None = None,
        reference_prefix: str | None = None,
        limit: int = 1000,
    ) -> list[tuple[Payment, str]]:
        """(payment, created_at) newest first; ``reference_prefix`` ``order:123`` finds ``order:123:charge``."""
        sql = f"SELECT {_COLUMNS} FROM payments WHERE 1 = 1"
        args: list[Any] = []
        if reference_prefix:
            sql += " AND reference >= ? AND reference < ?"
            args += [reference_prefix, reference_prefix + "\U0010ffff"]
        if status is not None:
            sql += " AND status = ?"
            args.append(status.value)
        if since:
            sql += " AND created_at >= ?"
            args.append(since)
        sql += " ORDER BY created_at DESC LIMIT ?"
        args.append(limit)
        rows = self.db.run(lambda c: c.execute(sql, args).fetchall())
        return [(_payment(r), r[11]) for r in rows]

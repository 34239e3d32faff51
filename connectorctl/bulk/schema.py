"""Migration of the bulk area (numbers 40-49): the batch journal.

``bulk_items`` holds one row per (batch, recipient).  A row turns ``pending``
just before its vendor call, carrying the correlation id that call will use,
and ``accepted`` / ``failed`` after it, so a re-run can tell what the vendor
already has, and can recover from the integration log what a killed run never
got to write down.
"""

from __future__ import annotations

from typing import Any

from connectorctl.store.migrations import migration


@migration(40, "bulk_journal")
def _bulk_journal(db: Any) -> None:
    db["bulk_batches"].create(
        {
            "batch_id": str,
            "channel": str,
            "source": str,
            "total": int,
            "created_at": str,
            "updated_at": str,
            "runs": int,
        },
        pk="batch_id",
        not_null={"channel", "created_at"},
        defaults={"runs": 0},
    )
    db["bulk_items"].create(
        {
            "batch_id": str,
            "recipient": str,
            "row_number": int,
            "state": str,
            "vendor": str,
            "message_id": str,
            "correlation_id": str,
            "error_code": str,
            "error_message": str,
            "attempts": int,
            "updated_at": str,
        },
        pk=("batch_id", "recipient"),
        not_null={"state"},
        defaults={"attempts": 0},
    )
    db["bulk_items"].create_index(["batch_id", "state"], index_name="ix_bulk_items_state")

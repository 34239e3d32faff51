"""Retention: deleting old integration-log rows without stalling the writers.

One big ``DELETE`` holds the write lock for seconds and every process that
wants to log a call waits that long (or fails past ``busy_timeout``).  So we
delete in batches of ``seq`` values picked through ``ix_logs_time``, each in its
own short ``BEGIN IMMEDIATE`` transaction, and pause between batches (as long
as the batch held the lock, 20-100 ms) so a waiting writer gets the lock.
A batch that held the lock over 200 ms halves the next one (the machine is
busy); quick ones let it grow back to ``--batch-size``.  Two purges at once just take turns: each
batch re-selects rows that still exist, and the counts add up.

The newest row is never deleted: ``seq`` is a plain rowid, which SQLite would
restart from 1 in an empty table, and ``logs tail -f`` follows ``seq``.

Space: deleted pages go to the free list and are reused by new rows; the WAL
is truncated afterwards.  With ``auto_vacuum=INCREMENTAL`` the free pages are
returned to the OS; a full ``VACUUM`` (rewrites the file, blocks writers) runs
only when asked for.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

from connectorctl.errors import InvalidInputError
from connectorctl.store.db import StateDB
from connectorctl.store.logs import iso_utc

PAUSE_SECONDS = 0.02  # shortest pause between batches
SLOW_BATCH_SECONDS = 0.2  # a batch holding the write lock longer than this halves the next one
MIN_BATCH = 250
MAX_PAUSE_SECONDS = (
    0.1  # SQLite's busy handler re-polls at least every 100 ms: a gap this long always lets a waiting writer in
)


def cutoff_for(days: int, now: datetime | None = None) -> str:
    if days < 1:
        raise InvalidInputError(f"--days must be at least 1, got {days}")
    now = now or datetime.now(timezone.utc)
    try:
        return iso_utc((now - timedelta(days=days)).timestamp())
    except (OverflowError, ValueError, OSError):  # keep more days than the calendar has: nothing is old enough
        return "0001-01-01T00:00:00.000Z"


def purge(
    db: StateDB,
    days: int,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = 5000,
    vacuum: bool = False,
    pause: float = PAUSE_SECONDS,
) -> dict[str, Any]:
    if batch_size < 1:
        raise InvalidInputError(f"batch size must be at least 1, got {batch_size}")
    now = now or datetime.now(timezone.utc)
    cutoff = cutoff_for(days, now)
    started = time.perf_counter()
    anchor = db.run(lambda c: c.execute("SELECT coalesce(max(seq), 0) FROM integration_logs").fetchone()[0])
    result: dict[str, Any] = {"days": days, "cutoff": cutoff, "dry_run": dry_run}
    if dry_run:
        result["would_delete"] = db.run(
            lambda c: c.execute(
                "SELECT count(*) FROM integration_logs WHERE created_at < ? AND seq < ?", (cutoff, anchor)
            ).fetchone()[0]
        )
        result["seconds"] = round(time.perf_counter() - started, 3)
        return result
    deleted = batches = 0
    worst_batch = 0.0
    pick = (
        "DELETE FROM integration_logs WHERE seq IN "
        "(SELECT seq FROM integration_logs WHERE created_at < ? AND seq < ? LIMIT ?)"
    )
    size = batch_size
    while True:
        t0 = time.perf_counter()
        with db.write() as c:
            n = c.execute(pick, (cutoff, anchor, size)).rowcount
        held = time.perf_counter() - t0
        worst_batch = max(worst_batch, held)
        deleted += n
        batches += 1
        if n < size:
            break
        # A loaded machine (or a slow disk) makes batches slow: shrink them so that a writer never
        # waits long behind one; grow back towards --batch-size when they are quick again.
        if held > SLOW_BATCH_SECONDS:
            size = max(MIN_BATCH, size // 2)
        elif held < SLOW_BATCH_SECONDS / 4 and size < batch_size:
            size = min(batch_size, size * 2)
        if pause:
            # Leave the lock free about as long as we held it (capped), so writers that queued
            # behind a slow batch get in before the next one instead of waiting several batches.
            time.sleep(min(MAX_PAUSE_SECONDS, max(pause, held)))
    result.update(deleted=deleted, batches=batches, worst_batch_ms=round(worst_batch * 1000, 1))
    result["replay_pruned"] = _prune_webhook_replays(db, now)
    result["delivery_purged"] = _purge_delivery(db, cutoff, batch_size)
    result.update(_reclaim(db, vacuum))
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def _prune_webhook_replays(db: StateDB, now: datetime) -> int | None:
    """The webhooks area keeps a replay store with its own expiry; purge is its daily chance to shrink."""
    try:
        from connectorctl.webhooks.replay import prune_replay_store
    except ModuleNotFoundError:
        return None
    pruned = prune_replay_store(db, now.timestamp())  # epoch seconds, like every clock in the package
    return pruned if isinstance(pruned, int) else None


def _purge_delivery(db: StateDB, cutoff: str, batch_size: int) -> int | None:
    """Sent-message records and delivery reports age out with the log rows they belong to."""
    try:
        from connectorctl.delivery.store import purge_before
    except ModuleNotFoundError:
        return None
    return purge_before(db, cutoff, batch_size)


def _reclaim(db: StateDB, vacuum: bool) -> dict[str, Any]:
    if db.engine == "postgresql":  # autovacuum reuses the space; --vacuum asks for it now (no exclusive lock)
        if vacuum:
            db.run(lambda c: c.execute("VACUUM (ANALYZE) integration_logs"))
        return {"vacuumed": True} if vacuum else {}

    def run(c: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        auto_vacuum = c.execute("PRAGMA auto_vacuum").fetchone()[0]
        if vacuum:
            c.execute("VACUUM")
            out["vacuumed"] = True
        elif auto_vacuum == 2:  # incremental: hand free pages back without rewriting the file
            _incremental_vacuum(c)
        busy, _, _ = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        out["wal_truncated"] = not busy  # a long reader can keep the WAL; it is reused, not lost
        out["free_pages"] = c.execute("PRAGMA freelist_count").fetchone()[0]
        return out

    return db.run(run)


def _incremental_vacuum(c: Any, chunk_pages: int = 2000) -> None:
    """Free pages in chunks (~8 MB), each its own short write, so writers are never held up long.

    Python's ``execute`` steps a PRAGMA only once (freeing one page); ``executescript`` runs it to the end.
    """
    free = c.execute("PRAGMA freelist_count").fetchone()[0]
    while free:
        c.executescript(f"PRAGMA incremental_vacuum({chunk_pages});")
        now_free = c.execute("PRAGMA freelist_count").fetchone()[0]
        if now_free >= free:
            break
        free = now_free
        time.sleep(PAUSE_SECONDS)

"""The write-ahead intent store on a real SQLite file, including several processes at once."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Iterator

import pytest

from connectorctl.resilience.clock import FakeClock
from connectorctl.store.db import StateDB
from connectorctl.store.intents import (
    IntentInProgressError, IntentState, IntentStore, ReferenceConflictError, idempotency_key,
)
from connectorctl.errors import InvalidInputError

PARAMS = {"amount": 1999, "currency": "eur", "capture": True}


@pytest.fixture
def store(state_target: Path | str) -> Iterator[IntentStore]:
    with closing(StateDB(state_target)) as db:
        yield IntentStore(db, FakeClock())


def test_intent_is_committed_before_the_call_and_visible_to_another_connection(store: IntentStore, state_target: Path | str) -> None:
    intent = store.begin("payment", "order:1:charge", "create", "stripe", PARAMS, lease_seconds=60)
    assert intent.new
    with closing(StateDB(state_target)) as other:
        seen = IntentStore(other).get("payment", "order:1:charge")
    assert seen is not None and seen.state is IntentState.INTENT
    assert seen.idempotency_key == intent.idempotency_key == idempotency_key("payment", "order:1:charge")
    assert dict(seen.params) == PARAMS


def test_the_key_depends_on_the_reference_only(store: IntentStore) -> None:
    a = store.begin("payment", "order:1:charge", "create", "stripe", PARAMS, lease_seconds=60)
    assert a.idempotency_key == idempotency_key("payment", "order:1:charge")
    assert idempotency_key("payment", "order:2:charge") != a.idempotency_key
    assert idempotency_key("shipping", "order:1:charge") != a.idempotency_key
    assert len(a.idempotency_key) <= 108  # PayPal-Request-Id limit


def test_same_reference_other_parameters_is_refused(store: IntentStore) -> None:
    store.begin("payment", "order:1:charge", "create", "stripe", PARAMS, lease_seconds=60)
    with pytest.raises(ReferenceConflictError) as info:
        store.begin("payment", "order:1:charge", "create", "stripe", {**PARAMS, "amount": 2000}, lease_seconds=60)
    assert info.value.code == "reference_conflict" and info.value.exit_code == 2


def test_a_live_owner_blocks_a_second_sender_until_it_settles(store: IntentStore) -> None:
    intent = store.begin("payment", "r", "create", "stripe", PARAMS, lease_seconds=60)
    with pytest.raises(IntentInProgressError):
        store.begin("payment", "r", "create", "stripe", PARAMS, lease_seconds=60)
    store.settle(intent, IntentState.SUCCEEDED, outcome={"id": "pi_1"}, vendor_id="pi_1")
    again = store.begin("payment", "r", "create", "stripe", PARAMS, lease_seconds=60)
    assert not again.new and again.state is IntentState.SUCCEEDED and again.outcome == {"id": "pi_1"} and again.vendor_id == "pi_1"


def test_an_expired_lease_makes_the_row_unresolved(store: IntentStore) -> None:
    store.begin("payment", "r", "create", "stripe", PARAMS, lease_seconds=60)
    assert store.unresolved("payment") == []
    store.clock.advance(61)  # type: ignore[attr-defined]
    [stale] = store.unresolved("payment")
    assert stale.reference == "r"
    claimed = store.claim(stale, vendor="paypal", lease_seconds=60)
    assert claimed.vendor == "paypal" and claimed.attempts == 2 and claimed.idempotency_key == stale.idempotency_key
    with pytest.raises(IntentInProgressError):
        store.claim(stale, lease_seconds=60)  # somebody else already took it


def test_a_killed_owner_makes_the_row_unresolved_at_once(state_target: Path | str) -> None:
    db_path = state_target
    StateDB(db_path).close()
    code = (
        "import os, sys\n"
        "from connectorctl.store.db import StateDB\n"
        "from connectorctl.store.intents import IntentStore\n"
        f"IntentStore(StateDB({str(db_path)!r})).begin('payment', 'killed', 'create', 'stripe', {{'amount': 1}}, lease_seconds=3600)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    with closing(StateDB(db_path)) as db:
        [row] = IntentStore(db).unresolved("payment")
    assert row.reference == "killed" and row.state is IntentState.INTENT


def test_uncertain_and_failed_rows(store: IntentStore) -> None:
    a = store.begin("payment", "a", "create", "stripe", PARAMS, lease_seconds=60)
    b = store.begin("payment", "b", "create", "stripe", PARAMS, lease_seconds=60)
    store.settle(a, IntentState.UNCERTAIN, error_code="timeout", error_message="no answer")
    store.settle(b, IntentState.FAILED, error_code="payment_declined", error_message="card_declined")
    assert [i.reference for i in store.unresolved("payment")] == ["a"]
    assert [i.reference for i in store.list("payment", states=[IntentState.FAILED])] == ["b"]
    assert store.unresolved("shipping") == []


@pytest.mark.parametrize("reference", ["", "   ", "x" * 201, "a\nb"])
def test_bad_references_are_refused(store: IntentStore, reference: str) -> None:
    with pytest.raises(InvalidInputError):
        store.begin("payment", reference, "create", "stripe", PARAMS, lease_seconds=60)


def _race(db_path: str, reference: str, out: "multiprocessing.Queue[str]") -> None:
    store = IntentStore(StateDB(db_path))
    try:
        intent = store.begin("payment", reference, "create", "stripe", {"amount": 5}, lease_seconds=60)
        out.put("fresh" if intent.new else "other")
    except IntentInProgressError:
        out.put("in_progress")
    except Exception as exc:  # noqa: BLE001 - reported to the test instead of dying silently
        out.put(f"{type(exc).__name__}: {exc}")


def test_only_one_of_several_processes_gets_a_reference(state_target: Path | str) -> None:
    db_path = str(state_target)
    StateDB(db_path).close()
    ctx = multiprocessing.get_context("spawn")
    out: "multiprocessing.Queue[str]" = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(db_path, "order:9:charge", out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = sorted(out.get(timeout=180) for _ in procs)
    for p in procs:
        p.join(30)
    assert results == ["fresh", "in_progress", "in_progress", "in_progress"]

"""The outbox in one process: enqueue, workers' outcomes (sent, backoff, dead, waiting on a circuit),
uncertain sends settled by asking the vendor, and the operator commands."""

from __future__ import annotations

import json
from dataclasses import replace
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from fake_postmark import TOKEN, FakePostmark
from fake_sms_vendors import VONAGE_KEY, VONAGE_SECRET, FakeVonage

from connectorctl.config import CircuitBreakerSettings, RetrySettings, Settings, VendorSettings
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import EmailMessage, SmsMessage
from connectorctl.errors import InvalidInputError
from connectorctl.gateway import Connector
from connectorctl.outbox.store import OutboxStatus, OutboxStore, depth
from connectorctl.outbox.worker import OutboxWorker
from connectorctl.resilience.clock import FakeClock
from connectorctl.settings import OutboxSettings
from connectorctl.store.intents import ReferenceConflictError

OUTBOX = OutboxSettings(lease_seconds=60, backoff_initial_seconds=60, backoff_max_seconds=600, max_age_hours=1, poll_seconds=0.05,
                        check_delay_seconds=0)


def invoice(n: int) -> EmailMessage:
    return EmailMessage(to=(f"customer{n}@example.com",), subject=f"Invoice {n}", text="Your invoice is attached.")


@pytest.fixture
def postmark() -> Iterator[FakePostmark]:
    with FakePostmark() as fake:
        yield fake


def connect(home: Path, fake: Any, clock: Any = None, *, circuit: CircuitBreakerSettings | None = None,
            outbox: OutboxSettings = OUTBOX) -> Connector:
    settings = Settings(
        home=home, database=home / "state.db", config_path=None, email_vendor=("postmark",), sms_vendor=("vonage",),
        retry_policy=RetrySettings(max_attempts=1), circuit_breaker=circuit or CircuitBreakerSettings(), outbox=outbox,
        vendors={"postmark": VendorSettings(base_url=fake.url, timeout_seconds=2, from_email="shop@example.com"),
                 "vonage": VendorSettings(base_url=getattr(fake, "vonage_url", fake.url), timeout_seconds=2, from_number="+14155550100")},
    )
    creds = StaticCredentialProvider({"postmark": {"api_key": TOKEN}, "vonage": {"username": VONAGE_KEY, "password": VONAGE_SECRET}})
    return Connector(settings, clock=clock, credentials=creds)


def sent_keys(fake: FakePostmark) -> list[str]:
    return [m["Metadata"]["connectorctl_key"] for m in fake.accepted]


@pytest.mark.usefixtures("engine")  # the outbox on SQLite and on PostgreSQL
def test_the_same_key_is_one_message_and_bad_input_is_refused_before_it_is_stored(home: Path, postmark: FakePostmark) -> None:
    with connect(home, postmark) as connector:
        email = connector.email()
        first = email.enqueue(invoice(1), key="invoice:1")
        again = email.enqueue(invoice(1), key="invoice:1")
        assert first.new and not again.new and again.id == first.id
        with pytest.raises(ReferenceConflictError):
            email.enqueue(invoice(2), key="invoice:1")
        with pytest.raises(InvalidInputError):
            email.enqueue(EmailMessage(to=("not an address",), subject="x", text="y"))
        with pytest.raises(InvalidInputError):
            connector.sms().enqueue(SmsMessage(to="+14155552671", body=""))
        assert depth(connector.db, time.time())["depth"] == 1
        assert postmark.requests == []  # enqueue returns at once: nothing reaches the vendor


def test_a_stored_message_comes_back_whole() -> None:
    from datetime import datetime, timezone

    from connectorctl.domain.messages import Attachment
    from connectorctl.outbox.codec import decode, encode

    email = EmailMessage(to=("a@example.com",), subject="s", text="t", html="<p>t</p>", cc=("c@example.com",), headers={"X-A": "1"},
                         tags=("x",), metadata={"k": "v"}, attachments=(Attachment("a.pdf", b"%PDF\x00\xff", "application/pdf"),),
                         template_id="tpl-1", merge_data={"name": "Ann", "items": [1, 2]}, send_at=datetime(2027, 1, 2, tzinfo=timezone.utc))
    sms = SmsMessage(to="+14155552671", body="hi", from_number="+14155550100", status_callback="https://erp.example.com/cb")
    assert decode("email", json.loads(json.dumps(encode(email)))) == email
    assert decode("sms", json.loads(json.dumps(encode(sms)))) == sms


def test_a_worker_sends_each_message_once_with_its_key_in_the_vendor_metadata(home: Path, postmark: FakePostmark) -> None:
    with connect(home, postmark) as connector:
        queued = [connector.email().enqueue(invoice(n), key=f"invoice:{n}") for n in range(5)]
        report = OutboxWorker(connector, concurrency=3).run(once=True)
        assert report.counts["sent"] == 5
        assert sorted(sent_keys(postmark)) == sorted(m.id for m in queued)
        stored = OutboxStore(connector.db).get(queued[0].id)
        assert stored is not None and stored.status is OutboxStatus.SENT and stored.vendor == "postmark"
        assert stored.vendor_message_id in {m["MessageID"] for m in postmark.accepted}
        assert OutboxWorker(connector).run(once=True).counts["sent"] == 0  # nothing is sent twice


def test_transient_failures_back_off_then_dead_letter_at_the_maximum_age_and_redrive(home: Path, postmark: FakePostmark) -> None:
    clock = FakeClock(time.time())
    with connect(home, postmark, clock) as connector:
        store = OutboxStore(connector.db, clock)
        message = connector.email().enqueue(invoice(1))
        postmark.fail_next("unavailable", times=3)
        waits = []
        for _ in range(3):
            assert OutboxWorker(connector).run(once=True).counts["retrying"] == 1
            current = store.get(message.id)
            assert current is not None and current.status is OutboxStatus.RETRYING and current.last_error_code == "vendor_unavailable"
            waits.append(current.next_attempt_at - clock.time())
            clock.advance(waits[-1])
        assert 30 <= waits[0] <= 60 and 60 <= waits[1] <= 120 and 120 <= waits[2] <= 240  # doubling, with equal jitter
        clock.advance(3600)  # past outbox.max_age_hours
        postmark.fail_next("unavailable")
        assert OutboxWorker(connector).run(once=True).counts["dead"] == 1
        dead = store.get(message.id)
        assert dead is not None and dead.status is OutboxStatus.DEAD and dead.attempts == 4 and "still failing 1 h" in (dead.last_error or "")
        assert store.retry_dead() == 1
        assert OutboxWorker(connector).run(once=True).counts["sent"] == 1
        assert sent_keys(postmark) == [message.id]


def test_a_permanent_refusal_is_dead_at_once_with_the_vendor_error(home: Path, postmark: FakePostmark) -> None:
    with connect(home, postmark) as connector:
        message = connector.email().enqueue(invoice(1))
        postmark.fail_next("invalid", message="Invalid 'From' address")
        assert OutboxWorker(connector).run(once=True).counts["dead"] == 1
        dead = OutboxStore(connector.db).get(message.id)
        assert dead is not None and dead.last_error_code == "validation_failed" and "Invalid 'From'" in (dead.last_error or "")


def test_a_circuit_that_opens_mid_drain_makes_messages_wait_without_attempts_then_they_go_out(home: Path, postmark: FakePostmark) -> None:
    circuit = CircuitBreakerSettings(failure_threshold=3, timeout_seconds=0.5)
    with connect(home, postmark, circuit=circuit, outbox=OutboxSettings(**{**OUTBOX.__dict__, "backoff_initial_seconds": 0.05})) as connector:
        for n in range(40):
            connector.email().enqueue(invoice(n))
        stop = threading.Event()
        worker = OutboxWorker(connector, concurrency=2, stop=stop)
        runner = threading.Thread(target=worker.run)
        runner.start()
        while len(postmark.accepted) < 10:
            time.sleep(0.01)
        postmark.flaky = 1.0  # the vendor goes down mid-drain: every request fails
        deadline = time.time() + 10
        while connector.pipeline.breaker.state("postmark").state.value != "open" and time.time() < deadline:
            time.sleep(0.01)
        assert connector.pipeline.breaker.state("postmark").state.value == "open"
        requests_while_open = len(postmark.requests)
        time.sleep(0.3)  # inside the circuit's 0.5 s: workers sleep, nobody calls the vendor
        assert len(postmark.requests) <= requests_while_open + 2  # at most the calls that were already in flight
        postmark.flaky = 0.0  # recovery: the next probe succeeds and the queue drains
        while depth(connector.db, time.time())["depth"] and time.time() < deadline + 10:
            time.sleep(0.02)
        stop.set()
        runner.join()
        store = OutboxStore(connector.db)
        assert store.list(status=OutboxStatus.DEAD) == [] and len(store.list(status=OutboxStatus.SENT)) == 40
        assert sorted(sent_keys(postmark)) == sorted(m.id for m in store.list(limit=100))  # each exactly once
        assert worker.report.counts["waiting"] >= 1
        waited = [m for m in store.list(limit=100) if m.attempts == 1 and m.last_error_code is None]
        assert len(waited) >= 40 - worker.report.counts["retrying"]  # a wait on the circuit is not an attempt


def test_a_spent_quota_makes_messages_wait_for_the_refill_without_counting_attempts(home: Path, postmark: FakePostmark) -> None:
    from connectorctl.settings import RateLimitSettings

    clock = FakeClock(time.time())
    with connect(home, postmark, clock) as connector:
        quota = VendorSettings(base_url=postmark.url, from_email="shop@example.com", rate_limits=(RateLimitSettings(2, 60),),
                               rate_limit_max_wait_seconds=0)
        connector.settings = replace(connector.settings, vendors={**connector.settings.vendors, "postmark": quota})
        store = OutboxStore(connector.db, clock)
        queued = [connector.email().enqueue(invoice(n)) for n in range(5)]
        report = OutboxWorker(connector).run(once=True)
        assert report.counts["sent"] == 2 and len(postmark.accepted) == 2
        waiting = [m for m in (store.get(q.id) for q in queued) if m is not None and m.status is not OutboxStatus.SENT]
        assert len(waiting) == 3 and all(m.attempts == 0 for m in waiting)
        assert sum(1 for m in waiting if m.last_error_code == "rate_limited") == 1  # one refusal; the others waited with it
        assert all(0 < m.next_attempt_at - clock.time() <= 60 for m in waiting)  # when the window refills, not before
        assert OutboxWorker(connector).run(once=True).counts["sent"] == 0  # nothing is due: no call, no attempt
        clock.advance(60)
        assert OutboxWorker(connector).run(once=True).counts["sent"] == 2
        clock.advance(60)
        assert OutboxWorker(connector).run(once=True).counts["sent"] == 1
        assert sorted(sent_keys(postmark)) == sorted(q.id for q in queued)


@pytest.mark.usefixtures("engine")  # the outbox on SQLite and on PostgreSQL
def test_a_worker_that_died_holding_messages_is_taken_over_after_its_lease(home: Path, postmark: FakePostmark) -> None:
    """One message reached the vendor (and our log) before the worker died, one never left: each goes out once."""
    clock = FakeClock(time.time())
    with connect(home, postmark, clock) as connector:
        store = OutboxStore(connector.db, clock)
        delivered, never_sent = connector.email().enqueue(invoice(1)), connector.email().enqueue(invoice(2))
        claimed = store.claim("dead-worker", lease_seconds=10, limit=2)
        assert {m.id for m in claimed} == {delivered.id, never_sent.id}
        connector.email().send(invoice(1), correlation_id=delivered.id)  # reached the vendor; then the worker died
        assert OutboxWorker(connector).run(once=True).counts["sent"] == 0  # leases still held
        clock.advance(11)
        report = OutboxWorker(connector).run(once=True)
        assert report.counts["sent"] == 2
        assert sorted(sent_keys(postmark)) == sorted([delivered.id, never_sent.id])  # one each: no duplicate
        found = store.get(delivered.id)
        assert found is not None and found.status is OutboxStatus.SENT and found.last_error == "recovered from the integration log"


@pytest.mark.usefixtures("engine")  # the outbox on SQLite and on PostgreSQL
def test_an_answer_lost_after_the_vendor_acted_is_settled_by_its_search_not_a_resend(home: Path, postmark: FakePostmark) -> None:
    clock = FakeClock(time.time())
    with connect(home, postmark, clock) as connector:
        store = OutboxStore(connector.db, clock)
        message = connector.email().enqueue(invoice(1))
        postmark.lose_answers = 1
        assert OutboxWorker(connector).run(once=True).counts["retrying"] == 1
        pending = store.get(message.id)
        assert pending is not None and pending.check_first and pending.last_error_code == "connection_failed"
        clock.advance(OUTBOX.backoff_initial_seconds)
        assert OutboxWorker(connector).run(once=True).counts["sent"] == 1
        assert sent_keys(postmark) == [message.id]  # asked, found, not sent again
        assert [r.method for r in postmark.requests] == ["POST", "GET"]
        found = store.get(message.id)
        assert found is not None and found.vendor_message_id == postmark.accepted[0]["MessageID"] and found.last_error == "found at postmark by its key"


def test_a_vendor_that_cannot_be_asked_leaves_the_message_uncertain_for_an_operator(home: Path, cli: Any) -> None:
    clock = FakeClock(time.time())
    with FakeVonage() as vonage, connect(home, vonage, clock) as connector:
        store = OutboxStore(connector.db, clock)
        message = connector.sms().enqueue(SmsMessage(to="+14155552671", body="Your order shipped"))
        store.claim("dead-worker", lease_seconds=10)
        clock.advance(11)
        assert OutboxWorker(connector).run(once=True).counts["uncertain"] == 1
        assert vonage.requests == []  # never re-sent blindly
        held = store.get(message.id)
        assert held is not None and held.status is OutboxStatus.UNCERTAIN and "cannot be asked" in (held.last_error or "")
        store.retry(message.id)  # the operator checked Vonage's dashboard: it was not sent
        assert OutboxWorker(connector).run(once=True).counts["sent"] == 1
        assert len(vonage.requests) == 1


def test_the_outbox_commands(home: Path, cli: Any, postmark: FakePostmark) -> None:
    (home).mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(
        f"email_vendor: postmark\nvendors:\n  postmark: {{base_url: '{postmark.url}', from_email: shop@example.com, "
        f"credentials: {{api_key: 'env:PM_TOKEN'}}}}\noutbox: {{backoff_initial_seconds: 0.01}}\n")
    import os

    os.environ["PM_TOKEN"] = TOKEN
    try:
        queued = json.loads(cli("send", "email", "--to", "ann@example.com", "-s", "Hi", "--body", "Hello", "--queue", "--key", "k1", "-o", "json").stdout)
        assert queued["status"] == "queued" and queued["new"] and postmark.requests == []
        assert "already queued" in cli("send", "email", "--to", "ann@example.com", "-s", "Hi", "--body", "Hello", "--queue", "--key", "k1").stdout
        bad = cli("send", "email", "--to", "ann@example.com", "-s", "Hi", "--body", "Hello", "--key", "k1")
        assert bad.exit_code == 2 and "--key names a queued message" in bad.stderr
        other = json.loads(cli("send", "email", "--to", "bob@example.com", "-s", "Hi", "--body", "Hello", "--queue", "-o", "json").stdout)
        assert json.loads(cli("status", "-o", "json").stdout)["outbox"]["depth"] == 2
        drop = cli("outbox", "drop", other["id"], "--yes")
        assert drop.exit_code == 0, drop.stderr
        assert cli("outbox", "drop", other["id"], "--yes").exit_code == 2  # already dropped
        work = json.loads(cli("outbox", "work", "--once", "-o", "json").stdout)
        assert work["sent"] == 1 and len(postmark.accepted) == 1
        listed = json.loads(cli("outbox", "list", "--status", "sent", "-o", "json").stdout)
        assert [m["key"] for m in listed] == ["k1"]
        shown = json.loads(cli("outbox", "show", queued["id"], "-o", "json").stdout)
        assert shown["status"] == "sent" and [a["status"] for a in shown["attempt_log"]] == ["success"]
        assert "attempts (integration log)" in cli("outbox", "show", queued["id"]).stdout
        assert cli("outbox", "show", "NOPE").exit_code == 1
        assert cli("outbox", "list", "--status", "later").exit_code == 2
        assert cli("outbox", "retry").exit_code == 2  # an ID or --dead
        assert json.loads(cli("outbox", "purge", "--sent-older-than", "30d", "--yes", "-o", "json").stdout) == {"deleted": 0}
        assert cli("outbox", "purge", "--sent-older-than", "0s", "--yes").exit_code == 2
        time.sleep(0.02)
        assert json.loads(cli("outbox", "purge", "--sent-older-than", "0.01s", "--yes", "-o", "json").stdout) == {"deleted": 1}
        from starlette.testclient import TestClient

        from connectorctl.api import create_app
        from connectorctl.api.prom import outbox_families

        with Connector() as connector:
            connector.email().enqueue(invoice(9))
            families = {f.name: f for f in outbox_families(connector.db)}
            with TestClient(create_app(connector)) as client:
                api = client.get("/api/connector/outbox").json()
        assert families["connectorctl_outbox_depth"].samples[0].value == 1
        assert {s.labels["status"]: s.value for s in families["connectorctl_outbox_messages"].samples}["queued"] == 1
        assert families["connectorctl_outbox_oldest_age_seconds"].samples[0].value >= 0
        assert api["depth"] == 1 and api["by_status"]["queued"] == 1 and api["oldest_age_seconds"] >= 0
    finally:
        del os.environ["PM_TOKEN"]

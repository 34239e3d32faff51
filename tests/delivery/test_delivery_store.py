"""How reports fold into what we sent: order, races, tenants, and reading it back (CLI and API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from connectorctl.config import load_settings
from connectorctl.delivery.events import BounceType, DeliveryEvent, EventType
from connectorctl.delivery.store import ingest
from connectorctl.domain.messages import EmailMessage
from connectorctl.errors import SuppressedError
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock
from tests.conftest import write_config

NOW = 1_800_000_000.0


@pytest.fixture
def connector(home: Path) -> Iterator[Connector]:
    write_config(home, "email_vendor: file\n")
    with Connector(load_settings(), clock=FakeClock(NOW)) as conn:
        yield conn


def send(connector: Connector, to: str = "ann@example.com", tenant: str | None = None) -> Any:
    return connector.email(tenant_id=tenant).send(EmailMessage(to=(to,), subject="Order", text="Shipped."))


def report(connector: Connector, result: Any, kind: EventType, at: float, *, bounce: BounceType | None = None, key: str = "",
           recipient: str = "ann@example.com") -> tuple[int, int]:
    event = DeliveryEvent("file", kind, at, result.message_id, recipient, kind.value, f"{kind.value} reason", bounce, key,
                          raw={"kind": kind.value, "at": at, "id": result.message_id, "to": recipient})
    with connector.db.write() as conn:
        return ingest(conn, [event], received_at=NOW, webhook_event_id=None)


def state(connector: Connector, result: Any) -> str | None:
    from connectorctl.delivery import timeline

    found = timeline(connector.db, result.correlation_id)
    assert found is not None
    return found.messages[0]["delivery"]


def test_a_message_never_moves_backwards_but_a_late_bounce_outranks_delivered(connector: Connector) -> None:
    sent = send(connector)
    report(connector, sent, EventType.CLICKED, NOW + 30)
    report(connector, sent, EventType.DELIVERED, NOW + 10)
    report(connector, sent, EventType.DEFERRED, NOW + 5)
    assert state(connector, sent) == "clicked"

    other = send(connector, "bob@example.com")
    report(connector, other, EventType.DELIVERED, NOW + 10, recipient="bob@example.com")
    report(connector, other, EventType.BOUNCED, NOW + 20, bounce=BounceType.SOFT, recipient="bob@example.com")
    assert state(connector, other) == "delivered"  # a soft bounce is only a delay
    report(connector, other, EventType.BOUNCED, NOW + 3600, bounce=BounceType.HARD, recipient="bob@example.com")
    assert state(connector, other) == "bounced"  # an asynchronous bounce after the receiving server accepted


def test_the_same_report_twice_is_stored_once(connector: Connector) -> None:
    sent = send(connector)
    assert report(connector, sent, EventType.DELIVERED, NOW, key="ev-1") == (1, 0)
    assert report(connector, sent, EventType.DELIVERED, NOW, key="ev-1") == (0, 1)
    assert report(connector, sent, EventType.OPENED, NOW, key="ev-2") == (1, 0)


def test_a_report_that_beats_the_send_record_is_applied_when_it_lands(connector: Connector) -> None:
    from connectorctl.delivery.store import record_sent

    sent = send(connector)
    with connector.db.write() as conn:  # as if the report had arrived before this process recorded the send
        conn.execute("DELETE FROM messages")
    report(connector, sent, EventType.DELIVERED, NOW + 5)
    record_sent(connector.db, sent, channel="email", tenant_id=None, correlation_id=sent.correlation_id, now=NOW)
    assert state(connector, sent) == "delivered"


def test_suppressions_are_per_tenant(connector: Connector) -> None:
    sent = send(connector, tenant="t1")
    report(connector, sent, EventType.COMPLAINED, NOW + 60)
    with pytest.raises(SuppressedError, match=r"^suppressed: complaint at 2027-01-15T08:01:00.000Z via file \(ann@example.com\)$"):
        send(connector, "Ann@Example.com", tenant="t1")
    assert send(connector, tenant="t2").ok
    assert send(connector).ok  # the default tenant's list is its own too
    cc = EmailMessage(to=("carl@example.com",), cc=("ann@example.com",), subject="x", text="x")
    with pytest.raises(SuppressedError):
        connector.email(tenant_id="t1").send(cc)


def test_cli_lists_messages_by_delivery_state_and_rejects_unknown_states(connector: Connector, cli: Any) -> None:
    bounced, delivered = send(connector), send(connector, "bob@example.com")
    report(connector, bounced, EventType.BOUNCED, NOW, bounce=BounceType.HARD)
    report(connector, delivered, EventType.DELIVERED, NOW, recipient="bob@example.com")
    listed = json.loads(cli("messages", "list", "--delivery", "bounced", "--json").stdout)
    assert [(m["recipient"], m["delivery"]) for m in listed] == [("ann@example.com", "bounced")]
    table = cli("messages", "list")
    assert table.exit_code == 0 and "bob@example.com" in table.stdout and "delivered" in table.stdout
    shown = cli("messages", "show", bounced.correlation_id)
    assert shown.exit_code == 0 and "bounced (hard)" in shown.stdout and "send_email attempt 1: success" in shown.stdout
    bad = cli("messages", "list", "--delivery", "bouncy")
    assert bad.exit_code == 2 and bad.stderr.startswith("error [invalid_input]: unknown delivery state 'bouncy'") and "Traceback" not in bad.output
    logs = json.loads(cli("logs", "list", "--delivery", "bounced", "-o", "jsonl").stdout.splitlines()[0])
    assert logs["correlation_id"] == bounced.correlation_id and logs["operation"] == "send_email"
    assert len(cli("logs", "list", "--delivery", "bounced", "-o", "jsonl").stdout.splitlines()) == 1
    assert cli("logs", "list", "--delivery", "bouncy").exit_code == 2
    missing = cli("messages", "show", "no-such-id")
    assert missing.exit_code == 1 and "not_found" in missing.stderr


def test_suppressions_cli_bad_input_is_one_line(cli: Any) -> None:
    assert cli("suppressions", "add", "not-an-address").exit_code == 2
    assert cli("suppressions", "add", "+1 415 555 2671").exit_code == 0  # stored in E.164
    assert [s["address"] for s in json.loads(cli("suppressions", "list", "--json").stdout)] == ["+14155552671"]
    assert json.loads(cli("suppressions", "add", "+14155552671", "--json").stdout)["added"] is False
    gone = cli("suppressions", "rm", "ann@example.com", "--yes")
    assert gone.exit_code == 1 and gone.stderr.startswith("error [not_found]: ann@example.com is not on the suppression list")


def test_api_reads_and_bad_parameters(connector: Connector) -> None:
    from starlette.testclient import TestClient

    from connectorctl.api import create_app

    sent = send(connector)
    report(connector, sent, EventType.BOUNCED, NOW + 1, bounce=BounceType.HARD)
    with TestClient(create_app(connector), raise_server_exceptions=False) as client:
        page = client.get("/api/connector/messages", params={"delivery": "bounced"}).json()
        assert [m["correlation_id"] for m in page["data"]] == [sent.correlation_id]
        assert client.get(f"/api/connector/messages/{sent.message_id}").json()["correlation_id"] == sent.correlation_id
        assert client.get("/api/connector/messages/nope").status_code == 404
        assert client.get("/api/connector/messages", params={"delivery": "nope"}).status_code == 400
        assert client.get("/api/connector/delivery", params={"from": "tomorrow"}).status_code == 400
        rates = client.get("/api/connector/delivery", params={"from": "2027-01-01"}).json()["vendors"]
        assert [(r["vendor"], r["accepted"], r["bounced"], r["bounce_rate"]) for r in rates] == [("file", 1, 1, 100.0)]
        listed = client.get("/api/connector/suppressions").json()["data"]
        assert [(s["address"], s["reason"]) for s in listed] == [("ann@example.com", "hard bounce")]


def test_a_bulk_run_fails_only_the_suppressed_row(home: Path, cli: Any, tmp_path: Path) -> None:
    write_config(home, "email_vendor: file\n")
    assert cli("suppressions", "add", "bob@example.com").exit_code == 0
    csv = tmp_path / "r.csv"
    csv.write_text("email\nann@example.com\nbob@example.com\n")
    result = cli("send", "email", "--to-file", str(csv), "-s", "Hi", "--body", "x", "--json")
    rows = {r["row"]: r for r in json.loads(result.stdout)["results"]}
    assert (rows[1]["status"], rows[2]["status"], rows[2]["error_code"]) == ("accepted", "failed", "suppressed")
    assert len(list((home / "outbox").glob("*.eml"))) == 1
    assert cli("send", "email", "--to-file", str(csv), "-s", "Hi", "--body", "x", "--force").exit_code == 2


def test_log_purge_ages_out_sends_and_reports_but_not_suppressions(connector: Connector) -> None:
    from datetime import datetime, timedelta, timezone

    from connectorctl.store.queries import purge_logs

    sent = send(connector)
    report(connector, sent, EventType.BOUNCED, NOW, bounce=BounceType.HARD)
    connector.flush()
    count = "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM delivery_events), (SELECT count(*) FROM suppressions)"
    assert connector.db.run(lambda c: c.execute(count).fetchone()) == (1, 1, 1)
    later = datetime.fromtimestamp(NOW, timezone.utc) + timedelta(days=91)
    assert purge_logs(connector.db, 90, now=later)["delivery_purged"] == 2
    assert connector.db.run(lambda c: c.execute(count).fetchone()) == (0, 0, 1)


def test_a_verified_delivery_is_marked_processed_only_when_understood(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from starlette.testclient import TestClient

    from connectorctl.api import create_app
    from connectorctl.webhooks import get_verifier
    from tests.delivery.vendor_payloads import sendgrid
    from tests.webhooks.webhook_cases import SENDGRID_PRIVATE, SENDGRID_PUBLIC

    write_config(home, "webhooks:\n  sendgrid: {scheme: sendgrid, secret_env: [SG_KEY]}\n")
    monkeypatch.setenv("SG_KEY", SENDGRID_PUBLIC)
    with Connector(load_settings()) as conn, TestClient(create_app(conn)) as client:
        for body in (sendgrid("delivered", "W6A8J0GQQ0qRP5jVm8MQpw", "ann@example.com", time.time(), 1), b"not the documented shape"):
            signed = get_verifier("sendgrid").sign(body, SENDGRID_PRIVATE)
            assert client.post("/api/connector/webhooks/sendgrid", content=signed.body, headers=dict(signed.headers)).json()["status"] == "accepted"
        rows = conn.db.run(lambda c: c.execute("SELECT payload, processed_at IS NOT NULL FROM webhook_events ORDER BY received_at, id").fetchall())
    assert sorted(processed for _, processed in rows) == [0, 1]
    assert [payload for payload, processed in rows if not processed] == ["not the documented shape"]  # kept raw, for a later look


def test_a_report_naming_only_our_correlation_id_finds_the_message(connector: Connector) -> None:
    """Vonage bills a long SMS as parts with ids of their own; its receipts echo our client-ref."""
    from connectorctl.delivery import timeline

    sent = send(connector)
    part2 = DeliveryEvent("file", EventType.DELIVERED, NOW + 5, "part-2-id", "ann@example.com", "delivered", None, None, "p2",
                          correlation_id=sent.correlation_id, raw={"messageId": "part-2-id"})
    stranger = DeliveryEvent("file", EventType.FAILED, NOW + 6, "other-id", "ann@example.com", "failed", None, None, "x",
                             correlation_id="someone-else", raw={"messageId": "other-id"})
    with connector.db.write() as conn:
        assert ingest(conn, [part2, stranger], received_at=NOW, webhook_event_id=None) == (2, 0)
    found = timeline(connector.db, sent.correlation_id)
    assert found is not None and found.messages[0]["delivery"] == "delivered"
    assert [e["what"] for e in found.entries if e["kind"] == "event"] == ["delivered"]

"""BulkRunner in-process: SMS over a real local Twilio fake, quotas on a FakeClock, SMS files via the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from fake_sms_vendors import TWILIO_SID, TWILIO_TOKEN, FakeTwilio
from test_failover import connector
from test_sms_twilio import log_rows

from bulk_support import write_config
from connectorctl.bulk.journal import BatchJournal
from connectorctl.bulk.recipients import parse_rows, render
from connectorctl.bulk.runner import BulkReport, BulkRunner
from connectorctl.domain.messages import SmsMessage
from connectorctl.validation import normalize_phone

NUMBERS = b"phone,name\n+14155552671,Ann\n+1 415 555 2672,Bob\nnot-a-number,Eve\n+14155552673,Cy\n+14155552674,Di\n"


def run_batch(conn, content: bytes, concurrency: int, sleep=None) -> BulkReport:  # type: ignore[no-untyped-def]
    rows = parse_rows(content, "sms", "numbers.csv")
    journal = BatchJournal(conn.db, "b-test", conn.clock.time)
    journal.open("sms", "numbers.csv", len(rows))
    runner = BulkRunner(conn.sms(), journal, concurrency=concurrency, **({"sleep": sleep} if sleep else {}))
    template = SmsMessage(to="", body="Hi {{name}}")
    return runner.run(rows, normalize_phone, lambda row, key: replace(template, to=key, body=render(template.body, row.fields)), BulkReport("b-test", "sms"))


def test_sms_batch_over_http_one_refused_and_one_invalid_row_do_not_stop_the_rest(home: Path) -> None:
    with FakeTwilio() as fake:
        conn = connector(home, {"sms_vendor": "twilio", "vendors": {"twilio": {"base_url": fake.url, "from_number": "+14155552000"}}},
                         {"twilio": {"username": TWILIO_SID, "password": TWILIO_TOKEN}})
        fake.then(("400", 21211))  # the first request's recipient is refused by the vendor
        report = run_batch(conn, NUMBERS, concurrency=1)
        by_row = {r["row"]: r for r in report.results}
        assert by_row[1]["status"] == "failed" and by_row[1]["error_code"] == "invalid" and "21211" in by_row[1]["error"]
        assert by_row[3]["status"] == "failed" and by_row[3]["error_code"] == "invalid_input"
        assert [by_row[n]["status"] for n in (2, 4, 5)] == ["accepted"] * 3
        assert {r.form["Body"] for r in fake.requests[1:]} == {"Hi Bob", "Hi Cy", "Hi Di"}
        assert by_row[2]["recipient"] == "+14155552672"  # normalised to E.164
        again = run_batch(conn, NUMBERS, concurrency=2)  # the re-run only retries the failed row it can send
        assert {r["row"]: r["status"] for r in again.results} == {1: "accepted", 2: "skipped", 3: "failed", 4: "skipped", 5: "skipped"}
        assert len(fake.requests) == 5
        conn.close()


def test_a_batch_slows_down_to_the_vendor_quota_instead_of_failing_rows(home: Path) -> None:
    conn = connector(home, {"sms_vendor": "fake", "vendors": {"fake": {
        "rate_limits": [{"limit": 2, "per_seconds": 1}], "rate_limit_max_wait_seconds": 0}}})
    numbers = "phone,name\n" + "\n".join(f"+1415555{2670 + i},N{i}" for i in range(7)) + "\n"
    report = run_batch(conn, numbers.encode(), concurrency=1, sleep=conn.clock.sleep)
    assert report.counts["accepted"] == 7 and report.counts["failed"] == 0
    rows = log_rows(conn)
    per_second: dict[str, int] = {}
    for r in rows:
        if r["status"] == "success":
            per_second[r["created_at"][:19]] = per_second.get(r["created_at"][:19], 0) + 1
    assert max(per_second.values()) <= 2 and any(r["status"] == "rate_limited" for r in rows)


def test_send_sms_to_file_via_cli_writes_each_message(home: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_config(home, "sms_vendor: file\n")
    csv = tmp_path / "numbers.csv"
    csv.write_bytes(NUMBERS)
    r = cli("send", "sms", "--to-file", str(csv), "-m", "Hi {{name}}", "--json")
    assert r.exit_code == 1  # the invalid row
    data = json.loads(r.stdout)
    assert data["summary"]["accepted"] == 4 and data["summary"]["failed"] == 1
    bodies = sorted(json.loads(p.read_text())["body"] for p in (home / "outbox").glob("*.sms.json"))
    assert bodies == ["Hi Ann", "Hi Bob", "Hi Cy", "Hi Di"]


def test_an_sms_that_may_have_gone_out_is_journalled_uncertain_and_not_resent(home: Path) -> None:
    with FakeTwilio() as fake:
        conn = connector(home, {"sms_vendor": "twilio", "vendors": {"twilio": {"base_url": fake.url, "from_number": "+14155552000"}}},
                         {"twilio": {"username": TWILIO_SID, "password": TWILIO_TOKEN}})
        fake.then(("500",))  # Twilio may have sent the first row's SMS before failing
        report = run_batch(conn, NUMBERS, concurrency=1)
        first = next(r for r in report.results if r["row"] == 1)
        assert first["status"] == "uncertain" and "may have been delivered" in first["error"]
        again = run_batch(conn, NUMBERS, concurrency=1)
        assert next(r for r in again.results if r["row"] == 1)["status"] == "uncertain"
        assert [r.form["To"] for r in fake.requests].count("+14155552671") == 1  # never sent twice
        conn.close()

"""``connectorctl send ... --to-file`` and ``--dry-run``: through the CLI, in-process and as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bulk_support import ROOT, write_config


def test_bad_rows_fail_alone_and_json_has_every_recipient(home: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_config(home, "email_vendor: fake\nvendors:\n  fake: {fail_kind: '400', fail_first: 1}\n")
    csv = tmp_path / "r.csv"
    csv.write_text("email,name\nfirst@example.com,First\nnot-an-address,X\nann@example.com,Ann\nbob@example.com,Bob\nann@example.com,Again\n")
    r = cli("send", "email", "--to-file", str(csv), "-s", "Hi {{name}}", "--body", "Dear {{name}}", "--concurrency", "1", "--json")
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    by_row = {x["row"]: x for x in data["results"]}
    assert by_row[1]["status"] == "failed" and by_row[1]["error_code"] == "validation_failed"  # the vendor's 400
    assert by_row[2]["status"] == "failed" and by_row[2]["error_code"] == "invalid_input"
    assert by_row[3]["status"] == by_row[4]["status"] == "accepted" and by_row[5]["status"] == "duplicate"
    assert data["summary"] == {"accepted": 2, "failed": 2, "skipped": 0, "uncertain": 0, "duplicate": 1}
    write_config(home, "email_vendor: fake\n")  # the vendor recovered
    again = json.loads(cli("send", "email", "--to-file", str(csv), "-s", "Hi {{name}}", "--body", "Dear {{name}}", "--json").stdout)
    assert again["batch_id"] == data["batch_id"]
    assert {x["row"]: x["status"] for x in again["results"]} == {1: "accepted", 2: "failed", 3: "skipped", 4: "skipped", 5: "duplicate"}
    other = json.loads(cli("send", "email", "--to-file", str(csv), "-s", "Reminder {{name}}", "--body", "Dear {{name}}", "--json").stdout)
    assert other["batch_id"] != data["batch_id"] and other["summary"]["accepted"] == 3  # another message: another batch


def test_placeholders_are_filled_per_row_and_an_unknown_one_is_refused_before_any_batch(home: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_config(home, "email_vendor: file\n")
    csv = tmp_path / "r.csv"
    csv.write_text("email,name\n" + "".join(f"user{n}@example.com,User {n}\n" for n in range(300)))
    typo = cli("send", "email", "--to-file", str(csv), "-s", "Hi {{nme}}", "--body", "Order {{order}} for {{name}}", "--json")
    assert typo.exit_code == 2 and typo.stdout == ""
    assert "placeholder {{nme}}, {{order}} (columns: email, name)" in typo.stderr and "did you mean {{name}}?" in typo.stderr
    assert cli("logs", "list", "-o", "json").stdout.count('"id"') == 0 and not (home / "outbox").exists()
    from connectorctl.gateway import Connector

    with Connector() as conn:  # nothing was created: no batch to resume or skip rows of
        assert conn.db.run(lambda c: c.execute("SELECT count(*) FROM bulk_batches").fetchone()[0]) == 0
    csv.write_text("email,name\nann@example.com,Ann\n")
    assert cli("send", "email", "--to-file", str(csv), "-s", "Hi {{ name }}", "--body", "Dear {{name}}", "-o", "json").exit_code == 0
    (eml,) = (home / "outbox").glob("*.eml")
    text = eml.read_text()
    assert "Subject: Hi Ann" in text and "Dear Ann" in text


def test_dry_run_shows_chain_and_circuits_and_sends_nothing(home: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_config(home, "sms_vendor: [fake, file]\n")
    from connectorctl.gateway import Connector

    with Connector() as conn:
        conn.pipeline.breaker.trip("fake", reason="vendor outage")
    r = cli("send", "sms", "--to", "+1 415 555 2671", "-m", "hello", "--dry-run", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert [(h["vendor"], h["circuit"]) for h in data["chain"]] == [("fake", "forced_open"), ("file", "closed")]
    assert "outbox" in data["chain"][1]["request"]["action"]
    assert not (home / "outbox").exists()
    with Connector() as conn:
        assert conn.db.conn.execute("SELECT count(*) FROM integration_logs").fetchone()[0] == 0
    table = cli("send", "sms", "--to", "+14155552671", "-m", "hello", "--dry-run")
    assert "forced_open" in table.stdout and "nothing sent" in table.stdout


def test_to_and_to_file_are_exclusive(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("send", "sms", "-m", "x")
    assert r.exit_code == 2 and "--to or --to-file" in r.stderr
    missing = cli("send", "email", "--to-file", str(tmp_path / "nope.csv"), "-s", "s", "--body", "b")
    assert missing.exit_code == 2 and "cannot read --to-file" in missing.stderr and "Traceback" not in missing.stderr


def _run(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "connectorctl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def sends_by_recipient(outbox: Path) -> Counter[str]:
    """Ground truth independent of our own log: the file sink writes one .eml per delivered send."""
    counts: Counter[str] = Counter()
    for eml in outbox.glob("*.eml") if outbox.exists() else ():
        to = next(line for line in eml.read_text().splitlines() if line.startswith("To: "))
        counts[to[4:].strip()] += 1
    return counts


def _start_slow_batch(home: Path, tmp_path: Path) -> tuple[subprocess.Popen, list[str], dict[str, str], Path, list[str]]:
    """A 40-recipient batch that a quota (2 per 0.1 s) spreads over ~2 s, returned once 10 are sent."""
    write_config(home, "email_vendor: file\nvendors:\n  file: {rate_limits: [{limit: 2, per_seconds: 0.1}]}\n")
    csv = tmp_path / "r.csv"
    addresses = [f"user{i:03d}@example.com" for i in range(40)]
    csv.write_text("email\n" + "\n".join(addresses) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["send", "email", "--to-file", str(csv), "-s", "Hello", "--body", "Hi", "--concurrency", "3", "--json"]
    outbox = home / "outbox"
    first = _run(args, env)
    deadline = time.monotonic() + 60
    while sum(sends_by_recipient(outbox).values()) < 10:
        assert first.poll() is None and time.monotonic() < deadline, first.stderr.read() if first.stderr else ""
        time.sleep(0.01)
    return first, args, env, outbox, addresses


def test_killed_batch_resumes_without_sending_anyone_twice(home: Path, tmp_path: Path) -> None:
    # The quota (2 per 0.1 s) spreads the batch over ~20 windows (~2 s), so it can be killed half-way.
    first, args, env, outbox, addresses = _start_slow_batch(home, tmp_path)  # well under way: kill it hard
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    before = sends_by_recipient(outbox)
    assert 10 <= sum(before.values()) < 40 and max(before.values()) == 1

    second = _run(args, env)
    out, err = second.communicate(timeout=60)
    status = {r["recipient"]: r["status"] for r in json.loads(out)["results"]}
    assert set(status) == set(addresses), err
    for address in before:  # delivered before the kill: never sent again
        assert status[address] in ("skipped", "uncertain")
    uncertain = {a for a, s in status.items() if s == "uncertain"}
    after = sends_by_recipient(outbox)
    assert max(after.values()) == 1  # nobody got it twice
    assert set(addresses) - set(after) <= uncertain  # whoever has nothing is reported, not silently dropped
    assert all(status[a] == "accepted" for a in addresses if a not in before and a not in uncertain)
    assert second.returncode == (9 if uncertain else 0)  # an uncertain outcome exits 9, as everywhere

    third = _run([*args, "--resend-uncertain"], env)  # the operator checked and asks for the rest
    out, _ = third.communicate(timeout=60)
    assert third.returncode == 0, out
    final = sends_by_recipient(outbox)
    assert set(final) == set(addresses)
    assert {a for a, n in final.items() if n > 1} <= uncertain  # only what the operator chose to risk


def test_ctrl_c_stops_cleanly_and_the_rerun_finishes_the_batch(home: Path, tmp_path: Path) -> None:
    first, args, env, outbox, addresses = _start_slow_batch(home, tmp_path)
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=30)
    assert first.returncode == 130
    report = json.loads(out)
    assert report["interrupted"] is True and report["summary"]["uncertain"] == 0
    accepted = {r["recipient"] for r in report["results"] if r["status"] == "accepted"}
    assert accepted == set(sends_by_recipient(outbox))  # in-flight calls finished and were recorded
    second = _run(args, env)
    out, _ = second.communicate(timeout=60)
    statuses = {r["recipient"]: r["status"] for r in json.loads(out)["results"]}
    assert second.returncode == 0 and {a for a, st in statuses.items() if st == "skipped"} == accepted
    final = sends_by_recipient(outbox)
    assert set(final) == set(addresses) and max(final.values()) == 1


def test_dry_run_previews_real_email_vendor_requests_without_secrets(home: Path, cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SG_KEY", "SG.very-secret-key-123")
    write_config(home, "email_vendor: [sendgrid, postmark]\nvendors:\n  sendgrid:\n    from_email: shop@example.com\n"
                       "    credentials: {api_key: 'env:SG_KEY'}\n  postmark:\n    from_email: shop@example.com\n")
    r = cli("send", "email", "--to", "ann@example.com", "-s", "Invoice", "--body", "Attached", "--dry-run", "--json")
    assert r.exit_code == 0, r.stderr
    sendgrid, postmark = json.loads(r.stdout)["chain"]
    assert sendgrid["request"]["url"] == "https://api.sendgrid.com/v3/mail/send" and sendgrid["request"]["method"] == "POST"
    assert sendgrid["request"]["body"]["personalizations"] == [{"to": [{"email": "ann@example.com"}]}]
    assert sendgrid["request"]["headers"]["authorization"] == "***"
    assert postmark["request"]["headers"]["x-postmark-server-token"] == "***"
    assert "very-secret" not in r.stdout + r.stderr

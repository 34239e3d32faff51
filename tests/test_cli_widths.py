"""Every table command at an 80-column terminal (a real pty) and in a pipe: no value is ever cut.

On the terminal, tables must fit in 80 columns (low-value columns are left
out, free text wraps); in a pipe, every value is printed whole on one line so
``awk``/``grep`` see it.  Each case names the values that must appear whole.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import pytest

from fake_easypost import API_KEY as EASYPOST_KEY
from fake_easypost import FakeEasyPost
from tests.conftest import ROOT, write_config
from tests.fake_stripe import API_KEY as STRIPE_KEY
from tests.fake_stripe import FakeStripe
from tests.ops.opsdata import Row, insert_rows

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LONG_ERROR = "sendgrid: HTTP 503: upstream connect error or disconnect/reset before headers. reset reason: overflow"
LONG_REASON = "vendor maintenance window announced by their status page for the whole evening"
LONG_KEY = "invoices/2026/12/acme-corporation-international/INV-2026-000042.pdf"
REFERENCE = "order:2026-000042:charge"
SHIPMENT = ROOT / "docs" / "shipment.yaml"
RATE_ID = r"\brate_[0-9a-f]{32}\b"  # a fresh quote each run: ids are checked by their shape and count


@dataclass
class World:
    """A seeded installation: log rows of every status, a forced-open circuit, a stored credential."""

    home: Path
    ids: list[str]
    env: dict[str, str]
    extra: dict[str, Any]


@pytest.fixture(scope="module")
def vendors() -> Any:
    """A local Stripe and EasyPost for the payments and ship commands, shared by every case."""
    with FakeStripe() as stripe, FakeEasyPost() as easypost:
        yield stripe, easypost


def build_world(home: Path, files: Path, stripe: FakeStripe, easypost: FakeEasyPost) -> World:
    """Seed ``home`` through the CLI (in this process), with the environment a case runs in."""
    from connectorctl.cli.main import run
    from connectorctl.gateway import Connector

    def cli(*args: str) -> Any:
        out = io.StringIO()
        with redirect_stdout(out), redirect_stderr(io.StringIO()):
            code = run(list(args))
        assert code == 0, (args, code)
        return out.getvalue()

    write_config(home, "email_vendor: [sendgrid, file]\nsms_vendor: file\npayment_vendor: stripe\nshipping_vendor: easypost\nvendors:\n"
                       "  sendgrid: {base_url: 'http://127.0.0.1:9'}\n"
                       f"  stripe: {{base_url: '{stripe.url}', credentials: {{api_key: 'env:WIDTH_TEST_STRIPE'}}}}\n"
                       f"  easypost: {{base_url: '{easypost.url}', credentials: {{api_key: 'env:WIDTH_TEST_EASYPOST'}}}}\n")
    rows = [
        Row(timedelta(minutes=5), service="sendgrid", status="failed", http=503, error=LONG_ERROR, operation="verify_credentials"),
        Row(timedelta(minutes=4), service="sendgrid", status="rate_limited", http=429, error="HTTP 429: too many requests"),
        Row(timedelta(minutes=3), service="sendgrid", status="circuit_open", http=None, duration=0, error="circuit for sendgrid is open"),
        Row(timedelta(minutes=2), service="file", status="timeout", http=None, duration=30000, error="timed out after 30 s"),
        Row(timedelta(minutes=1), service="file"),
    ]
    ids = insert_rows(home / "connectorctl.db", rows)
    cli("circuit", "trip", "sendgrid", "--for", "2h", "--reason", LONG_REASON)
    with Connector() as connector:
        connector.credentials.store.put("sendgrid", None, "api_key", {"api_key": "SG." + "k" * 60}, None, connector.clock.time())
    sent = json.loads(cli("send", "email", "--vendor", "file", "--to", "ann.smith@example.com", "-s", "Hi", "--body", "x", "-o", "json"))
    cli("suppressions", "add", "bounced.person@example.com", "--note", LONG_REASON)
    body = files / "event.json"
    body.write_text('{"id": "evt_1", "type": "charge.succeeded"}')
    csv = files / "to.csv"
    csv.write_text("email,name\nann@example.com,Ann\nnot-an-address,Bob\n")
    signed = json.loads(cli("webhook", "sign", "--scheme", "stripe", "--secret-env", "WIDTH_TEST_SECRET", "--body-file", str(body),
                            "--timestamp", "1767225600", "-o", "json"))
    return World(home, ids, {}, {"body": str(body), "csv": str(csv), "signature": signed["headers"]["Stripe-Signature"],
                                 "correlation": sent["correlation_id"]})


def world_env(stripe: FakeStripe, easypost: FakeEasyPost, master_key: str) -> dict[str, str]:
    return {"CONNECTORCTL_MASTER_KEY": master_key, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            "WIDTH_TEST_SECRET": "whsec_" + "x" * 32, "WIDTH_TEST_STRIPE": STRIPE_KEY, "WIDTH_TEST_EASYPOST": EASYPOST_KEY}


@pytest.fixture(scope="module")
def seeded(vendors: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[World, dict[str, str]]:
    """The seeded installation, built once: every case starts from its own copy (seeding costs more than a case)."""
    stripe, easypost = vendors
    env = world_env(stripe, easypost, base64.b64encode(os.urandom(32)).decode())
    root = tmp_path_factory.mktemp("widths")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONNECTORCTL_HOME", str(root / "home"))
        for name, value in env.items():
            mp.setenv(name, value)
        return build_world(root / "home", root, stripe, easypost), env


@pytest.fixture
def world(seeded: tuple[World, dict[str, str]], home: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    template, env = seeded
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    shutil.copytree(template.home, home, ignore=shutil.ignore_patterns("*-shm"))  # SQLite rebuilds the WAL index
    return World(home, template.ids, dict(os.environ), dict(template.extra))


def prepare(world: World, needs: str | None, cli: Callable[..., Any]) -> None:
    """What only some cases need (a payment, a bought label, a stored object): made for those alone, the suite stays quick."""
    if needs == "payment":
        paid = cli("payments", "charge", "19.99 EUR", "--reference", REFERENCE, "--payment-method", "pm_card_visa", "-o", "json")
        world.extra["payment"] = json.loads(paid.stdout)["payment_id"]
    elif needs == "label":
        rate = json.loads(cli("ship", "rates", "--from-file", str(SHIPMENT), "-o", "json").stdout)[0]
        world.extra["label"] = json.loads(cli("ship", "buy", rate["id"], "-o", "json").stdout)
        world.extra["rate"] = rate["id"]
    elif needs == "object":
        upload = world.home / "invoice.pdf"
        upload.write_bytes(b"%PDF-1.4 " + b"x" * 2000)
        assert cli("storage", "put", str(upload), LONG_KEY).exit_code == 0


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    whole: Callable[[World], list[str]]  # values that must appear uncut
    fits: bool = True  # a table that must fit the terminal (key/value output runs on and lets the terminal wrap)
    exit_code: int = 0
    shaped: tuple[str, int] | None = None  # (a regex for ids that change every run, how many must appear whole)
    needs: str | None = None  # see prepare()


STATUSES = ["failed", "rate_limited", "circuit_open", "timeout", "success"]
CASES = {
    "logs list": Case(("logs", "list"), lambda w: [*w.ids, *STATUSES]),
    "logs tail": Case(("logs", "tail", "-n", "20"), lambda w: [*w.ids, *STATUSES]),
    "logs show": Case(("logs", "show", "@0"), lambda w: [w.ids[0], "verify_credentials", LONG_ERROR], fits=False),
    "logs purge": Case(("logs", "purge", "--dry-run"), lambda w: ["would_delete"], fits=False),
    "metrics by operation": Case(("metrics", "--by", "operation"), lambda w: ["verify_credentials", "send_email"]),
    "metrics one service": Case(("metrics", "--service", "sendgrid"), lambda w: ["failures by status", "circuit_open=1"], fits=False),
    "status": Case(("status",), lambda w: ["sendgrid", "forced_open", "down", "30000"], exit_code=7),
    "circuit list": Case(("circuit", "list"), lambda w: ["sendgrid", "forced_open"]),
    "circuit show": Case(("circuit", "show", "sendgrid"), lambda w: ["forced_open", LONG_REASON], fits=False),
    "creds list": Case(("creds", "list"), lambda w: ["sendgrid", "api_key", "SG.…kkkk", "yes"]),
    "creds show": Case(("creds", "show", "sendgrid"), lambda w: ["SG.…kkkk", "env:CONNECTORCTL_MASTER_KEY"], fits=False),
    "config show": Case(("config", "show"), lambda w: ["circuit_breaker.failure_rate_threshold", "retry_policy.total_budget_ms",
                                                       "vendors.sendgrid.connect_timeout_seconds"]),
    "webhook sign": Case(("webhook", "sign", "--scheme", "stripe", "--secret-env", "WIDTH_TEST_SECRET", "--body-file", "@body",
                          "--timestamp", "1767225600"), lambda w: [w.extra["signature"]], fits=False),
    "send email": Case(("send", "email", "--vendor", "file", "--to", "someone.with.a.long.name@example.com", "-s", "Hi", "--body", "x"),
                       lambda w: ["someone.with.a.long.name@example.com", "accepted"]),
    "send dry run": Case(("send", "email", "--to", "a@example.com", "-s", "Hi", "--body", "x", "--dry-run"), lambda w: ["forced_open", "sendgrid"]),
    "messages list": Case(("messages", "list"), lambda w: [w.extra["correlation"], "ann.smith@example.com"]),
    "messages show": Case(("messages", "show", "@correlation"), lambda w: ["ann.smith@example.com", "accepted"]),
    "suppressions list": Case(("suppressions", "list"), lambda w: ["bounced.person@example.com", "manual"]),
    "bulk send": Case(("send", "email", "--vendor", "file", "--to-file", "@csv", "-s", "Hi {{name}}", "--body", "x"),
                      lambda w: ["accepted", "not-an-address", "invalid_input"], exit_code=1),
    "payments list": Case(("payments", "list"), lambda w: [w.extra["payment"], REFERENCE, "captured", "19.99 EUR"], needs="payment"),
    "payments show": Case(("payments", "show", "@payment"), lambda w: [w.extra["payment"], REFERENCE, "captured"], fits=False, needs="payment"),
    "ship rates": Case(("ship", "rates", "--from-file", str(SHIPMENT)), lambda w: ["GroundAdvantage", "Priority", "(easypost)"], shaped=(RATE_ID, 3)),
    "ship buy again": Case(("ship", "buy", "@rate"), lambda w: [w.extra["label"][k] for k in ("tracking_number", "shipment_id", "rate_id")],
                           fits=False, needs="label"),
    "ship track": Case(("ship", "track", "EZ4000000004"), lambda w: ["EZ4000000004", "delivered", "in_transit"]),
    "storage ls": Case(("storage", "ls"), lambda w: [LONG_KEY, "2009"], needs="object"),
    "storage stat": Case(("storage", "stat", LONG_KEY), lambda w: [LONG_KEY, "application/pdf"], fits=False, needs="object"),
}


def resolve(args: tuple[str, ...], world: World) -> list[str]:
    out = []
    for arg in args:
        if arg == "@0":
            out.append(world.ids[0])
        elif arg.startswith("@"):
            out.append(world.extra[arg[1:]])
        else:
            out.append(arg)
    return out


def open_terminal(columns: int) -> tuple[int, int]:
    """A pseudo-terminal of ``columns`` x 40: (master, slave)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    return master, slave


def read_terminal(master: int) -> str:
    """Everything written to the terminal until its slave side is closed, without colour codes."""
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return ANSI.sub("", b"".join(chunks).decode("utf-8")).replace("\r\n", "\n")


def run_in_terminal(args: list[str], env: dict[str, str], columns: int = 80) -> tuple[int, str, str]:
    """Run the CLI as a real process with stdout on a pseudo-terminal, as a person at a terminal would."""
    master, slave = open_terminal(columns)
    full_env = {**env, "COLUMNS": str(columns), "LINES": "40", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "connectorctl", *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE,
                            env=full_env, cwd=ROOT)
    os.close(slave)
    out = read_terminal(master)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, out, err.decode("utf-8")


def run_on_terminal_in_process(args: list[str], monkeypatch: pytest.MonkeyPatch, columns: int = 80) -> tuple[int, str, str]:
    """The same with the CLI run in this process (its stdout the terminal, its console made afresh for it):
    rendering is decided by the console alone, and a process start costs more than most commands."""
    from connectorctl.cli import output
    from connectorctl.cli.main import run

    master, slave = open_terminal(columns)
    reader_out: list[str] = []
    reader = threading.Thread(target=lambda: reader_out.append(read_terminal(master)))  # a pty holds only a few KB unread
    reader.start()
    err = io.StringIO()
    with monkeypatch.context() as patch, open(slave, "w", encoding="utf-8") as terminal:
        patch.setenv("COLUMNS", str(columns))
        patch.setenv("LINES", "40")
        patch.setattr(sys, "stdout", terminal)
        patch.setattr(sys, "stderr", err)
        patch.setattr(output, "_stdout", None)
        patch.setattr(output, "_stderr", None)
        code = run(args)
    reader.join(timeout=60)
    return code, reader_out[0], err.getvalue()


def assert_whole(values: list[str], output: str) -> None:
    for value in values:
        assert value in output, f"{value!r} is cut or missing in:\n{output}"
    assert "…" not in re.sub(r"\S{3}…\S{4}", "", output), output  # only a masked credential hint holds one (SG.…kkkk)


def assert_shaped(case: Case, output: str) -> None:
    if case.shaped is not None:
        pattern, count = case.shaped
        assert len(re.findall(pattern, output)) == count, output


@pytest.mark.parametrize("name", list(CASES))
def test_piped_output_prints_every_value_whole(name: str, world: World, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # what a pipe falls back to; it must not matter
    case = CASES[name]
    prepare(world, case.needs, cli)
    result = cli(*resolve(case.args, world))
    assert result.exit_code == case.exit_code, result.output
    assert_whole(case.whole(world), result.stdout)
    assert_shaped(case, result.stdout)


@pytest.mark.parametrize("name", list(CASES))
def test_an_80_column_terminal_gets_whole_values_in_80_columns(name: str, world: World, cli: Callable[..., Any],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    prepare(world, case.needs, cli)
    code, out, err = run_on_terminal_in_process(resolve(case.args, world), monkeypatch)
    assert code == case.exit_code, out + err
    assert_whole(case.whole(world), out)
    assert_shaped(case, out)
    if case.fits:
        too_wide = [line for line in out.splitlines() if len(line) > 80]
        assert not too_wide, "\n".join(too_wide)


def test_ids_from_a_pipe_open_their_rows(world: World, cli: Callable[..., Any]) -> None:
    """``logs list | awk '{print $1}'`` gives ids that ``logs show`` finds."""
    lines = cli("logs", "list").stdout.splitlines()
    ids = [line.split()[0] for line in lines[2:]]
    assert set(world.ids) <= set(ids) and len(ids) == len(set(ids))  # and the world's own calls
    assert all(cli("logs", "show", i).exit_code == 0 for i in ids)


def test_a_narrow_terminal_says_which_columns_it_left_out(world: World) -> None:
    _, out, _ = run_in_terminal(["logs", "list"], world.env, columns=60)
    assert "not shown at this width:" in out
    assert all(i in out for i in world.ids)
    assert max(len(line) for line in out.splitlines() if not line.startswith("not shown")) <= 60


def test_a_table_that_cannot_fit_folds_values_instead_of_cutting_them(world: World) -> None:
    _, out, _ = run_in_terminal(["messages", "list"], world.env, columns=40)
    assert max(len(line) for line in out.splitlines()) <= 40
    rest = iter(out)  # every character is there, in order, over more lines (other columns' text in between)
    assert all(char in rest for char in world.extra["correlation"]), out

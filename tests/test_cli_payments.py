"""``connectorctl payments ...`` against the local Stripe fake: output shapes and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.conftest import CliResult
from tests.fake_stripe import FakeStripe
from tests.payment_support import payment_config, payment_env

Cli = Callable[..., CliResult]


@pytest.fixture
def stripe(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    for name, value in payment_env().items():
        monkeypatch.setenv(name, value)
    with FakeStripe() as fake:
        payment_config(home, stripe_url=fake.url)
        yield fake


def charge(cli: Cli, *args: str) -> CliResult:
    return cli("payments", "charge", *args, "-o", "json")


def test_charge_capture_refund_show_list(cli: Cli, stripe: FakeStripe) -> None:
    result = charge(cli, "25.00 EUR", "--reference", "order:7:charge", "--payment-method", "pm_card_visa", "--authorize-only")
    assert result.exit_code == 0, result.stderr
    payment = json.loads(result.stdout)
    assert payment["status"] == "authorized" and payment["amount"] == 2500 and payment["currency"] == "EUR"
    pid = payment["payment_id"]
    captured = cli("payments", "capture", pid, "--amount", "20", "-o", "json")
    assert captured.exit_code == 0 and json.loads(captured.stdout)["amount_captured"] == 2000
    refunded = cli("payments", "refund", pid, "--amount", "5.00 EUR", "--reason", "requested_by_customer", "--yes", "-o", "json")
    assert refunded.exit_code == 0 and json.loads(refunded.stdout)["status"] == "partially_refunded"
    shown = json.loads(cli("payments", "show", "--reference", "order:7:charge", "-o", "json").stdout)
    assert shown["payment_id"] == pid and shown["amount_refunded"] == 500 and shown["intent_state"] == "succeeded"
    listed = cli("payments", "list", "-o", "jsonl")
    assert [json.loads(line)["payment_id"] for line in listed.stdout.splitlines()] == [pid]
    table = cli("payments", "list", "--status", "partially_refunded")
    assert pid in table.stdout and "25.00 EUR" in table.stdout
    assert charge(cli, "1 EUR", "--reference", "order:8:charge", "--payment-method", "pm_card_visa").exit_code == 0
    by_ref = cli("payments", "list", "--reference", "order:7", "-o", "json")
    assert [r["reference"] for r in json.loads(by_ref.stdout)] == ["order:7:charge"]


def test_cancel_in_a_script_is_not_asked_and_an_empty_list_says_what_to_do(cli: Cli, stripe: FakeStripe) -> None:
    empty = cli("payments", "list")
    assert empty.exit_code == 0 and empty.stdout == "" and "connectorctl payments charge" in empty.stderr
    assert json.loads(cli("payments", "list", "--json").stdout) == []  # --json as in every other group
    held = json.loads(charge(cli, "9 EUR", "--reference", "order:9:charge", "--payment-method", "pm_card_visa", "--authorize-only").stdout)
    cancelled = cli("payments", "cancel", held["payment_id"], "-o", "json")  # no terminal: nobody to ask
    assert cancelled.exit_code == 0 and json.loads(cancelled.stdout)["status"] == "canceled"
    assert len([r for r in stripe.requests if r.path.endswith("/cancel")]) == 1


def test_decline_and_uncertain_have_their_own_exit_codes(cli: Cli, stripe: FakeStripe) -> None:
    declined = charge(cli, "5 USD", "--reference", "d1", "--payment-method", "pm_card_chargeDeclined")
    assert declined.exit_code == 8 and "payment_declined" in declined.stderr and declined.stdout == ""
    for _ in range(3):
        stripe.fail_next("drop_after",)
    lost = charge(cli, "5 USD", "--reference", "u1", "--payment-method", "pm_card_visa")
    assert lost.exit_code == 9 and "outcome_uncertain" in lost.stderr and "reconcile" in lost.stderr
    assert "u1" in cli("payments", "list", "--status", "uncertain").stdout
    reconciled = cli("payments", "reconcile", "-o", "json")
    assert reconciled.exit_code == 0 and [(r["reference"], r["after"]) for r in json.loads(reconciled.stdout)] == [("u1", "succeeded")]
    assert json.loads(cli("payments", "reconcile", "-o", "json").stdout) == []
    for _ in range(3):
        stripe.fail_next("status", 503)
    outage = charge(cli, "5 USD", "--reference", "o1", "--payment-method", "pm_card_visa")
    assert outage.exit_code == 1 and "vendor_unavailable" in outage.stderr


@pytest.mark.parametrize("args", [
    ("charge", "19.999 EUR", "--reference", "x"),
    ("charge", "19.99", "--reference", "x"),
    ("charge", "5 EUR", "--reference", ""),
    ("charge", "5 EUR", "--reference", "x", "--description", "card 4111 1111 1111 1111"),
    ("charge", "5 EUR", "--reference", "x", "--metadata", "novalue"),
    ("refund", "pi_1", "--reason", "because", "--yes"),
    ("list", "--status", "paid"),
    ("list", "--since", "yesterday-ish"),
    ("show",),
])
def test_bad_input_is_one_line_and_exit_2_with_nothing_sent(cli: Cli, stripe: FakeStripe, args: tuple[str, ...]) -> None:
    result = cli("payments", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    assert not [r for r in stripe.requests if r.method == "POST"]


def test_same_reference_other_amount_is_refused_before_any_call(cli: Cli, stripe: FakeStripe) -> None:
    assert charge(cli, "5 EUR", "--reference", "same", "--payment-method", "pm_card_visa").exit_code == 0
    again = charge(cli, "6 EUR", "--reference", "same", "--payment-method", "pm_card_visa")
    assert again.exit_code == 2 and "reference_conflict" in again.stderr
    assert len([r for r in stripe.requests if r.method == "POST"]) == 1


def test_refund_asks_on_a_terminal_and_needs_yes_in_a_pipe(cli: Cli, stripe: FakeStripe) -> None:
    """The refund at a terminal is a real process on a pty; the charge and the piped refund run in this process."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = payment_env()
    made = cli("payments", "charge", "5 EUR", "--reference", "t1", "--payment-method", "pm_card_visa", "-o", "json")
    pid = json.loads(made.stdout)["payment_id"]
    primary, secondary = os.openpty()
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "connectorctl", "payments", "refund", pid], stdin=secondary,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, cwd=ROOT)
    os.close(secondary)
    os.write(primary, b"n\n")
    _, err = proc.communicate(timeout=60)
    os.close(primary)
    assert proc.returncode == 1 and b"refund everything not yet refunded of payment" in err and b"aborted: nothing changed" in err
    assert not [r for r in stripe.requests if r.path == "/v1/refunds"]
    refunded = cli("payments", "refund", pid, "-o", "json")  # no terminal: nobody to ask, not asked
    assert refunded.exit_code == 0 and json.loads(refunded.stdout)["status"] == "refunded"


def test_creds_test_proves_the_stripe_key_with_a_harmless_read(cli: Cli, stripe: FakeStripe) -> None:
    result = cli("creds", "test", "stripe")
    assert result.exit_code == 0, result.output
    assert [(r.method, r.path) for r in stripe.requests] == [("GET", "/v1/balance")]

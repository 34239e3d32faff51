"""``connectorctl ship ...`` end to end against the local fakes, including a ``ship buy`` killed mid-purchase."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.conftest import ROOT, write_config
from fake_easypost import API_KEY, FakeEasyPost
from fake_shippo import TOKEN, FakeShippo

EXAMPLE = ROOT / "docs" / "shipment.yaml"
VENDORS = {"easypost": (FakeEasyPost, API_KEY, "EASYPOST_API_KEY"), "shippo": (FakeShippo, TOKEN, "SHIPPO_API_KEY")}


def configure(home: Path, slug: str, fake: Any) -> dict[str, str]:
    _, secret, env_var = VENDORS[slug]
    write_config(home, f"shipping_vendor: {slug}\nvendors:\n  {slug}:\n    base_url: {fake.url}\n    timeout_seconds: 60\n"
                       f"    credentials: {{api_key: \"env:{env_var}\"}}\n")
    return {env_var: secret, "CONNECTORCTL_HOME": str(home)}


@pytest.fixture
def easypost(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEasyPost]:
    with FakeEasyPost() as fake:
        for name, value in configure(home, "easypost", fake).items():
            monkeypatch.setenv(name, value)
        yield fake


def rates(cli: Callable[..., Any]) -> list[dict[str, Any]]:
    result = cli("ship", "rates", "--from-file", str(EXAMPLE), "-o", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_rates_from_the_documented_example_file(cli: Callable[..., Any], easypost: FakeEasyPost) -> None:
    quoted = rates(cli)
    assert quoted and {r["carrier"] for r in quoted} == {"USPS", "UPS"}
    assert [float(r["price"]) for r in quoted] == sorted(float(r["price"]) for r in quoted)
    table = cli("ship", "rates", "--from-file", str(EXAMPLE))
    assert table.exit_code == 0 and "GroundAdvantage" in table.stdout and "USD" in table.stdout
    lines = cli("ship", "rates", "--from-file", str(EXAMPLE), "-o", "jsonl").stdout.splitlines()
    assert len(lines) == len(quoted) and all(json.loads(line)["id"].startswith("rate_") for line in lines)


def test_buy_saves_the_label_and_a_rerun_prints_the_same_label(cli: Callable[..., Any], easypost: FakeEasyPost, tmp_path: Path) -> None:
    rate = rates(cli)[0]
    first = cli("ship", "buy", rate["id"], "--label-file", str(tmp_path / "label.pdf"), "-o", "json")
    assert first.exit_code == 0, first.stderr
    label = json.loads(first.stdout)
    assert label["tracking_number"] and not label["replayed"] and label["label_file"] == str(tmp_path / "label.pdf")
    assert (tmp_path / "label.pdf").read_bytes().startswith(b"%PDF")
    again = json.loads(cli("ship", "buy", rate["id"], "--format", "zpl", "-o", "json").stdout)
    assert again["replayed"] and again["tracking_number"] == label["tracking_number"]
    assert Path(again["label_file"]).read_bytes().startswith(b"^XA")  # default place: labels/ under the home
    assert len(easypost.buys) == 1


def test_a_purchase_nobody_could_ask_about_exits_uncertain_and_a_rerun_settles_it(cli: Callable[..., Any], easypost: FakeEasyPost) -> None:
    rate = rates(cli)[0]
    easypost.lose_next_buy = easypost.refuse_after_lost_buy = True
    lost = cli("ship", "buy", rate["id"], "-o", "json")
    assert lost.exit_code == 9 and lost.stderr.startswith("error [outcome_uncertain]: easypost: the label for rate"), lost.stderr
    assert "run the same command again" in lost.stderr and lost.stdout == ""
    again = cli("ship", "buy", rate["id"], "-o", "json")
    assert again.exit_code == 0 and json.loads(again.stdout)["tracking_number"] and len(easypost.buys) == 1


def test_track_cancel_and_verify_address(cli: Callable[..., Any], easypost: FakeEasyPost) -> None:
    tracked = cli("ship", "track", "EZ4000000004", "-o", "json")
    assert tracked.exit_code == 0 and json.loads(tracked.stdout)["status"] == "delivered"
    assert "Delivered at facility" in cli("ship", "track", "EZ4000000004").stdout
    label = json.loads(cli("ship", "buy", rates(cli)[0]["id"], "-o", "json").stdout)
    refund = cli("ship", "cancel", label["shipment_id"], "-o", "json")  # no terminal: a script is not asked
    assert refund.exit_code == 0 and json.loads(refund.stdout)["status"] == "submitted"
    ok = cli("ship", "verify-address", "--name", "Ann", "--street1", "1 Main St", "--city", "Boston", "--zip", "02134", "--country", "us", "-o", "json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["valid"]
    bad = cli("ship", "verify-address", "--name", "Ann", "--street1", "9 Undeliverable Rd", "--city", "X", "--zip", "1", "--country", "US")
    assert bad.exit_code == 1 and "Address not found" in bad.stdout


def test_follow_prints_each_new_event_until_delivery(cli: Callable[..., Any], easypost: FakeEasyPost) -> None:
    easypost.tracking_script["EZFOLLOW"] = ["in_transit", "in_transit", "out_for_delivery", "delivered"]
    result = cli("ship", "track", "EZFOLLOW", "--follow", "--interval", "0.1", "-o", "jsonl")
    assert result.exit_code == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["status"] for e in events] == ["pre_transit", "in_transit", "out_for_delivery", "delivered"]  # each event once


@pytest.mark.parametrize("args, message", [
    (["rates", "--from-file", "missing.yaml"], "cannot read the shipment file"),
    (["buy", "rate_nobody_quoted"], "unknown rate"),
    (["buy", "rate_x", "--format", "gif"], "--format must be pdf, png or zpl"),
    (["verify-address", "--name", "A", "--street1", "s", "--city", "c", "--zip", "1", "--country", "Germany"], "two-letter"),
])
def test_bad_input_is_one_line_and_exit_2(cli: Callable[..., Any], easypost: FakeEasyPost, args: list[str], message: str) -> None:
    result = cli("ship", *args)
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
    assert easypost.requests == []


@pytest.mark.parametrize("text, message", [
    ("from: [1, 2]\n", "from: expected a mapping"),
    ("from: {name: A\n", "malformed YAML"),
    ("from: {name: A, street1: s, city: c, zip: '1', country: US}\nto: {name: B, street1: s, city: c, zip: '2', country: US}\n"
     "parcels: []\n", "parcels: expected a list"),
    ("from: {name: A, street1: s, city: c, zip: '1', country: US}\nto: {name: B, street1: s, city: c, zip: '2', country: US}\n"
     "parcels: [{length: 1, width: 1, height: 1, distance_unit: cm, weight: 2}]\n", "parcels[0]: missing mass_unit"),
    ("from: {name: A, street1: s, city: c, zip: '1', country: US}\nto: {name: B, street1: s, city: c, zip: '2', country: US}\n"
     "parcels: [{length: 1, width: 1, height: 1, distance_unit: cm, weight: -2, mass_unit: kg}]\n", "parcels[0]: parcel weight: must be a positive"),
])
def test_a_broken_shipment_file_names_the_problem(cli: Callable[..., Any], easypost: FakeEasyPost, tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "shipment.yaml"
    path.write_text(text)
    result = cli("ship", "rates", "--from-file", str(path))
    assert result.exit_code == 2 and message in result.stderr and str(path) in result.stderr


def test_an_unquoted_zip_code_is_refused_rather_than_mangled(cli: Callable[..., Any], easypost: FakeEasyPost, tmp_path: Path) -> None:
    path = tmp_path / "shipment.yaml"
    path.write_text(EXAMPLE.read_text().replace('zip: "02134"', "zip: 02134"))
    result = cli("ship", "rates", "--from-file", str(path))
    assert result.exit_code == 2 and "to.zip: quote it" in result.stderr


def test_no_vendor_configured_is_a_usage_error(cli: Callable[..., Any], home: Path) -> None:
    write_config(home, "log_retention_days: 30\n")
    result = cli("ship", "rates", "--from-file", str(EXAMPLE))
    assert result.exit_code == 2 and "shipping_vendor" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("slug", sorted(VENDORS))
def test_a_killed_buy_and_a_rerun_buy_exactly_one_label(slug: str, home: Path, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The buy is a real process killed with SIGKILL; quoting and the re-runs are commands run in this process."""
    fake_cls, _, _ = VENDORS[slug]
    with fake_cls() as fake:
        env = configure(home, slug, fake)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        quoted = cli("ship", "rates", "--from-file", str(EXAMPLE), "-o", "json")
        assert quoted.exit_code == 0, quoted.stderr
        rate = json.loads(quoted.stdout)[0]
        fake.stall_buys = 30.0  # the vendor buys, then its answer is slow: the process dies waiting for it
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        proc = subprocess.Popen([sys.executable, "-m", "connectorctl", "ship", "buy", rate["id"], "-o", "json"], cwd=ROOT, env=full_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert fake.buy_started.wait(60), "the purchase never reached the vendor"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        fake.stall_buys = 0.0
        rerun = cli("ship", "buy", rate["id"], "-o", "json")
        assert rerun.exit_code == 0, rerun.stderr
        label = json.loads(rerun.stdout)
        assert label["replayed"] and label["tracking_number"]
        assert len(fake.buys) == 1  # asked the vendor instead of buying again
        again = json.loads(cli("ship", "buy", rate["id"], "-o", "json").stdout)
        assert again["tracking_number"] == label["tracking_number"] and len(fake.buys) == 1

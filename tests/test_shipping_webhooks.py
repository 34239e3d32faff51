"""Tracking webhooks through the real receiver route: EasyPost ``tracker.updated`` (HMAC) and Shippo
``track_updated`` (URL token) move the stored shipment forward; duplicates and late events never move it back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import write_config
from connectorctl.webhooks import get_verifier
from connectorctl.webhooks.base import WebhookRequest
from fake_easypost import API_KEY, FakeEasyPost, tracker_body
from fake_shippo import TOKEN, FakeShippo, track_body
from shipping_contract import SHIPMENT

HOOK_SECRETS = {"EASYPOST_HOOK_SECRET": "easypost-webhook-secret", "SHIPPO_HOOK_TOKEN": "shippo-url-token-7f3a"}


@pytest.fixture
def installation(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, FakeEasyPost, FakeShippo]]:
    from connectorctl.gateway import Connector

    with FakeEasyPost() as easypost, FakeShippo() as shippo:
        write_config(home, f"""
shipping_vendor: easypost
vendors:
  easypost: {{base_url: "{easypost.url}", credentials: {{api_key: "env:EASYPOST_API_KEY"}}}}
  shippo: {{base_url: "{shippo.url}", credentials: {{api_key: "env:SHIPPO_API_KEY"}}}}
webhooks:
  easypost-tracking: {{scheme: easypost, secret_env: [EASYPOST_HOOK_SECRET]}}
  shippo-tracking: {{scheme: shippo, secret_env: [SHIPPO_HOOK_TOKEN]}}
""")
        for name, value in {**HOOK_SECRETS, "EASYPOST_API_KEY": API_KEY, "SHIPPO_API_KEY": TOKEN}.items():
            monkeypatch.setenv(name, value)
        with Connector() as connector:
            yield connector, easypost, shippo


@pytest.fixture
def client(installation: Any) -> Iterator[Any]:
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from connectorctl.webhooks.receiver import webhook_routes

    with TestClient(Starlette(routes=webhook_routes(installation[0]))) as c:
        yield c


def easypost_event(tracking_number: str, status: str, at: str, event_id: str) -> bytes:
    tracker = tracker_body(tracking_number, "USPS", status, "trk_1")
    tracker["tracking_details"] = [{**tracker["tracking_details"][-1], "datetime": at}]
    return json.dumps({"id": event_id, "object": "Event", "description": "tracker.updated", "result": tracker}).encode()


def shippo_event(tracking_number: str, status: str, at: str) -> bytes:
    track = track_body("usps", tracking_number, status)
    track["tracking_status"] = {**track["tracking_status"], "status_date": at, "substatus": None}
    track["tracking_history"] = [track["tracking_status"]]
    return json.dumps({"event": "track_updated", "test": True, "data": track}).encode()


def post_easypost(client: Any, body: bytes) -> Any:
    signed = get_verifier("easypost").sign(body, HOOK_SECRETS["EASYPOST_HOOK_SECRET"])
    return client.post("/api/connector/webhooks/easypost-tracking", content=body, headers=dict(signed.headers))


def post_shippo(client: Any, body: bytes, token: str = HOOK_SECRETS["SHIPPO_HOOK_TOKEN"]) -> Any:
    return client.post(f"/api/connector/webhooks/shippo-tracking?token={token}", content=body, headers={"Content-Type": "application/json"})


def status_of(connector: Any, vendor: str, shipment_id: str) -> tuple[str, str | None]:
    record = connector.shipping(vendor).records.get(vendor, shipment_id)
    return record["status"], record["status_at"]


def test_easypost_tracker_updated_moves_the_shipment_forward_only(installation: Any, client: Any) -> None:
    connector = installation[0]
    label = connector.shipping().buy_label(connector.shipping().get_rates(SHIPMENT)[0].id)
    assert status_of(connector, "easypost", label.shipment_id) == ("pre_transit", None)

    delivered = easypost_event(label.tracking_number, "delivered", "2026-12-03T15:00:00Z", "evt_2")
    assert post_easypost(client, delivered).json()["status"] == "accepted"
    assert status_of(connector, "easypost", label.shipment_id) == ("delivered", "2026-12-03T15:00:00Z")

    late = easypost_event(label.tracking_number, "in_transit", "2026-12-02T08:00:00Z", "evt_1")  # sent first, arrives last
    assert post_easypost(client, late).json()["status"] == "accepted"
    assert post_easypost(client, delivered).json()["status"] == "duplicate"
    assert status_of(connector, "easypost", label.shipment_id) == ("delivered", "2026-12-03T15:00:00Z")


def test_shippo_track_updated_with_the_url_token(installation: Any, client: Any) -> None:
    connector = installation[0]
    shipping = connector.shipping("shippo")
    label = shipping.buy_label(shipping.get_rates(SHIPMENT)[0].id)

    in_transit = shippo_event(label.tracking_number, "TRANSIT", "2026-12-02T08:00:00Z")
    assert post_shippo(client, in_transit).json()["status"] == "accepted"
    assert status_of(connector, "shippo", label.shipment_id) == ("in_transit", "2026-12-02T08:00:00Z")

    assert post_shippo(client, shippo_event(label.tracking_number, "DELIVERED", "2026-12-03T15:00:00Z")).status_code == 200
    assert post_shippo(client, in_transit).json()["status"] == "duplicate"
    assert status_of(connector, "shippo", label.shipment_id) == ("delivered", "2026-12-03T15:00:00Z")

    forged = post_shippo(client, shippo_event(label.tracking_number, "FAILURE", "2026-12-04T00:00:00Z"), token="guessed")
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "bad_signature"
    assert status_of(connector, "shippo", label.shipment_id)[0] == "delivered"


def test_the_shippo_token_never_reaches_the_log(installation: Any, client: Any) -> None:
    connector = installation[0]
    post_shippo(client, shippo_event("SHIPPO_TRANSIT", "TRANSIT", "2026-12-02T08:00:00Z"))
    rows = connector.db.run(lambda c: c.execute("SELECT endpoint, request_data FROM integration_logs WHERE direction = 'inbound'").fetchall())
    assert rows and all(HOOK_SECRETS["SHIPPO_HOOK_TOKEN"] not in json.dumps(r) for r in rows)


@pytest.mark.parametrize("url, reason", [
    ("https://erp.example/hook", "missing_header"),
    ("https://erp.example/hook?token=a&token=b", "malformed_header"),
    ("https://erp.example/hook?token=wrong", "bad_signature"),
])
def test_shippo_verifier_refuses_a_missing_doubled_or_wrong_token(url: str, reason: str) -> None:
    verdict = get_verifier("shippo").verify(WebhookRequest(b'{"event":"track_updated"}', {}, url), ["right"])
    assert not verdict.ok and verdict.reason == reason


def test_shippo_verifier_accepts_its_own_signed_example_under_a_rotated_secret() -> None:
    signed = get_verifier("shippo").sign(b'{"event":"track_updated"}', "new-token", url="https://erp.example/hook")
    verdict = get_verifier("shippo").verify(signed.request(), ["old-token", "new-token"])
    assert verdict.ok and verdict.event_type == "track_updated" and verdict.event_id.startswith("sha256:")

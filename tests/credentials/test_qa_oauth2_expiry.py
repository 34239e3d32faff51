"""Release QA: a token endpoint's odd ``expires_in`` must not lose the renewed (and rotated) token."""

from __future__ import annotations

import pytest

from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock
from tests.credentials.test_creds_oauth2 import CLIENT_ID, CLIENT_SECRET, REFRESH, store_oauth2


@pytest.mark.parametrize("expires_in", [1e300, float("nan"), -30])
def test_an_absurd_expires_in_still_stores_the_rotated_refresh_token(acme, cli, monkeypatch, master_key, expires_in):
    acme.clients[CLIENT_ID] = CLIENT_SECRET
    acme.refresh_tokens.add(REFRESH)
    acme.rotate_refresh = True
    acme.expires_in = expires_in  # 1e300 used to overflow while storing: the renewed tokens were lost
    store_oauth2(cli, monkeypatch, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH,
                                    "access_token": "expired-token"}, "--expires-at", "2020-01-01T00:00:00Z")
    with Connector(clock=FakeClock()) as connector:
        assert connector.credentials.get("acme").data["access_token"] == acme.issued[0]
    assert REFRESH not in acme.refresh_tokens  # the server rotated it: only the stored new one works now
    with Connector(clock=FakeClock()) as connector:
        stored = connector.credentials.store.decrypt(connector.credentials.store.find("acme", None))
    assert stored["refresh_token"] in acme.refresh_tokens
    assert cli("creds", "list", "--json").exit_code == 0

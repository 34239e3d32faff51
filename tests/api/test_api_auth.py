"""Loopback by default; a bearer token is required (and checked) everywhere else."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from connectorctl.api import create_app
from connectorctl.api.auth import is_loopback, resolve_token
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.values import AuthMethod, Credentials
from connectorctl.gateway import Connector

TOKEN = "api-token-5f2c9d0e7b"


@pytest.fixture
def guarded(connector: Connector) -> Any:
    with TestClient(create_app(connector, token=TOKEN), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("path", ["/api/connector/logs", "/api/connector/status", "/api/connector/health", "/metrics", "/openapi.json", "/nope"])
def test_every_endpoint_needs_the_token(guarded: Any, path: str) -> None:
    missing = guarded.get(path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["error"]["code"] == "unauthorized"
    wrong = guarded.get(path, headers={"Authorization": "Bearer api-token-5f2c9d0e7c"})
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "invalid bearer token"
    assert TOKEN not in missing.text + wrong.text


def test_the_right_token_is_accepted_and_never_echoed(guarded: Any) -> None:
    for scheme in (f"Bearer {TOKEN}",):
        response = guarded.get("/api/connector/status", headers={"Authorization": scheme})
        assert response.status_code == 200
        assert TOKEN not in response.text
    assert guarded.get("/api/connector/logs", headers={"Authorization": TOKEN}).status_code == 401  # scheme required
    assert guarded.get("/api/connector/logs", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("example.com", False),
])
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_token_from_env_wins_then_credential_store(connector: Connector, monkeypatch: pytest.MonkeyPatch) -> None:
    store = StaticCredentialProvider({"connectorctl-api": Credentials("connectorctl-api", AuthMethod.BEARER_TOKEN, {"token": "from-store"})})
    connector.credentials = store  # type: ignore[misc]
    assert resolve_token(connector) == ("from-store", "credential store (connectorctl-api)")
    monkeypatch.setenv("CONNECTORCTL_API_TOKEN", "from-env")
    assert resolve_token(connector) == ("from-env", "env:CONNECTORCTL_API_TOKEN")
    monkeypatch.delenv("CONNECTORCTL_API_TOKEN")
    connector.credentials = StaticCredentialProvider({})  # type: ignore[misc]
    assert resolve_token(connector) == (None, "none")


def test_serve_refuses_off_loopback_without_a_token(cli: Any) -> None:
    result = cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "refusing to listen on 0.0.0.0 without an API token" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_reports_a_port_in_use_in_one_line(cli: Any) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        result = cli("serve", "--port", str(taken.getsockname()[1]))
    assert result.exit_code == 2
    assert "cannot listen on 127.0.0.1:" in result.stderr and "Traceback" not in result.stderr


def test_webhook_routes_are_mounted_documented_and_exempt_from_the_token(connector: Connector, monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from connectorctl.api import app as app_module

    async def receive(request: Any) -> JSONResponse:
        return JSONResponse({"received": request.path_params["service"]})

    monkeypatch.setattr(app_module, "webhook_routes", lambda c: [Route("/api/connector/webhooks/{service}", receive, methods=["POST"])])
    with TestClient(create_app(connector, token=TOKEN)) as client:
        assert client.post("/api/connector/webhooks/fake", content=b"{}").json() == {"received": "fake"}
        assert client.get("/api/connector/status").status_code == 401
        doc = client.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert "post" in doc["paths"]["/api/connector/webhooks/{service}"]

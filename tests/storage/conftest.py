"""Storage fixtures: a session-wide moto S3 server and connectors wired to a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from connectorctl.adapters.storage.s3 import S3Options
from connectorctl.settings import CircuitBreakerSettings, RetrySettings, Settings, VendorSettings
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.gateway import Connector
from tests.storage.s3_server import FaultyProxy, MotoS3

KEY_ID = "AKIAMOTOTEST"
SECRET = "moto-secret-Zq81"


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoS3]:
    server = MotoS3()
    yield server
    server.stop()


@pytest.fixture
def bucket(moto: MotoS3) -> str:
    return moto.new_bucket()


@pytest.fixture
def proxy(moto: MotoS3) -> Iterator[FaultyProxy]:
    server = FaultyProxy(moto.url)
    yield server
    server.close()


def storage_settings(home: Path, store: str, vendor: VendorSettings | None = None) -> Settings:
    return Settings(
        home=home, database=home / "state.db", config_path=None, storage_vendor=store,
        retry_policy=RetrySettings(max_attempts=3, initial_delay_ms=10, max_delay_ms=50, jitter=False),
        circuit_breaker=CircuitBreakerSettings(failure_threshold=5, timeout_seconds=60),
        vendors={store: vendor} if vendor else {},
    )


def s3_connector(home: Path, url: str, bucket: str, *, key_id: str = KEY_ID, secret: str = SECRET, **vendor: Any) -> Connector:
    settings = storage_settings(home, "s3", S3Options(base_url=url, bucket=bucket, region="us-east-1", **vendor))
    credentials = StaticCredentialProvider({"s3": {"access_key_id": key_id, "secret_access_key": secret}})
    return Connector(settings, credentials=credentials)


def log_rows(connector: Connector) -> list[dict[str, Any]]:
    connector.flush()
    cursor = connector.db.conn.execute(
        "SELECT service_name, operation, endpoint, status, error_code, attempt_number, duration_ms, request_data, response_data, error_message"
        " FROM integration_logs ORDER BY seq")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]

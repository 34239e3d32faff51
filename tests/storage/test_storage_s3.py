"""The S3-compatible store against a real S3 server on 127.0.0.1 (moto in server mode):
the shared contract, then what only a remote store does (presigned URLs, auth,
missing bucket, SlowDown, an unreachable endpoint)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from connectorctl.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionFailedError,
    VendorUnavailableError,
)
from connectorctl.gateway import Connector
from tests.storage.conftest import KEY_ID, SECRET, log_rows, s3_connector
from tests.storage.s3_server import FaultyProxy, MotoS3
from tests.storage.storage_contract import StorageContract


class TestS3Store(StorageContract):
    presigns = True

    @pytest.fixture
    def connector(self, home: Path, moto: MotoS3, bucket: str) -> Iterator[Connector]:
        self.moto, self.bucket = moto, bucket
        with s3_connector(home, moto.url, bucket) as connector:
            yield connector

    def stored_keys(self, connector: Connector) -> list[str]:
        return self.moto.keys(self.bucket)

    def pending_uploads(self, connector: Connector) -> list[str]:
        return self.moto.pending_uploads(self.bucket)


def test_objects_are_what_the_vendor_sdk_sees(home: Path, moto: MotoS3, bucket: str) -> None:
    with s3_connector(home, moto.url, bucket) as connector:
        connector.storage().put("invoices/1.pdf", b"%PDF", metadata={"order-id": "7"})
    head = moto.client().head_object(Bucket=bucket, Key="invoices/1.pdf")
    assert (head["ContentType"], head["Metadata"], head["ContentLength"]) == ("application/pdf", {"order-id": "7"}, 4)


def test_presigned_get_and_put_work_with_plain_httpx_until_they_expire(home: Path, bucket: str, proxy: FaultyProxy) -> None:
    with s3_connector(home, proxy.url, bucket) as connector:
        storage = connector.storage()
        storage.put("share/report.csv", b"a,b\n")
        get_url = storage.presign("share/report.csv", expires_in=60)
        assert httpx.get(get_url.url).content == b"a,b\n"
        put_url = storage.presign("uploads/from-partner.csv", expires_in=60, method="PUT")
        assert httpx.put(put_url.url, content=b"x,y\n").status_code == 200
        assert storage.get("uploads/from-partner.csv") == b"x,y\n"
        short = storage.presign("share/report.csv", expires_in=1)
        time.sleep(2.1)
        refused = httpx.get(short.url)
        assert refused.status_code == 403 and b"expired" in refused.content.lower()
        rows = [r for r in log_rows(connector) if r["operation"] == "storage_presign"]
        assert len(rows) == 3 and all("X-Amz-Signature" not in json.dumps(r) for r in rows)


def test_bad_credentials_are_an_authentication_error_that_is_not_retried(home: Path, moto: MotoS3, bucket: str) -> None:
    import boto3

    moto.require_auth(2)  # the next two requests create a real key pair; then moto checks every signature
    try:
        iam = boto3.client("iam", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
        iam.create_user(UserName="erp")
        key = iam.create_access_key(UserName="erp")["AccessKey"]
        wrong = "wrong-" + key["SecretAccessKey"]
        with s3_connector(home, moto.url, bucket, key_id=key["AccessKeyId"], secret=wrong) as connector:
            with pytest.raises(AuthenticationError) as caught:
                connector.storage().put("x.txt", b"x")
            rows = log_rows(connector)
    finally:
        moto.require_auth(float("inf"))  # type: ignore[arg-type]
    assert caught.value.exit_code == 5 and wrong not in caught.value.message
    assert [(r["status"], r["error_code"]) for r in rows] == [("failed", "auth_failed")]
    assert wrong not in json.dumps(rows)


def test_a_missing_bucket_is_a_configuration_error(home: Path, moto: MotoS3) -> None:
    with s3_connector(home, moto.url, "no-such-bucket") as connector:
        with pytest.raises(ConfigurationError, match="bucket 'no-such-bucket' does not exist"):
            connector.storage().put("x.txt", b"x")
        with pytest.raises(ConfigurationError):
            connector.storage().list("")


def test_slow_down_is_retried_until_the_store_takes_it(home: Path, bucket: str, proxy: FaultyProxy) -> None:
    with s3_connector(home, proxy.url, bucket) as connector:
        proxy.fail_next(2)
        connector.storage().put("retry/me.txt", b"eventually")
        assert connector.storage().get("retry/me.txt") == b"eventually"
        rows = [(r["operation"], r["attempt_number"], r["status"], r["error_code"]) for r in log_rows(connector)]
    assert rows[:3] == [("storage_put", 1, "failed", "vendor_unavailable"), ("storage_put", 2, "failed", "vendor_unavailable"),
                        ("storage_put", 3, "success", None)]


def test_a_store_that_keeps_failing_ends_in_one_clear_error(home: Path, bucket: str, proxy: FaultyProxy) -> None:
    with s3_connector(home, proxy.url, bucket) as connector:
        proxy.fail_next(3)
        with pytest.raises(VendorUnavailableError, match="503 SlowDown") as caught:
            connector.storage().get("anything.txt")
        assert caught.value.attempts == 3  # type: ignore[attr-defined]


def test_a_stalled_answer_times_out_and_the_retry_succeeds(home: Path, bucket: str, proxy: FaultyProxy) -> None:
    with s3_connector(home, proxy.url, bucket, timeout_seconds=1.0) as connector:
        connector.storage().put("slow.txt", b"patience")
        proxy.stall_next(3)
        assert connector.storage().get("slow.txt") == b"patience"
        rows = [(r["operation"], r["status"], r["error_code"]) for r in log_rows(connector) if r["operation"] == "storage_get"]
    assert rows == [("storage_get", "timeout", "timeout"), ("storage_get", "success", None)]


def test_an_unreachable_endpoint_is_a_connection_failure(home: Path, bucket: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with s3_connector(home, f"http://127.0.0.1:{port}", bucket) as connector:
        with pytest.raises(ConnectionFailedError):
            connector.storage().head("x.txt")

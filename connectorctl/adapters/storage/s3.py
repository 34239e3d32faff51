"""Any S3-compatible store (AWS S3, Cloudflare R2, MinIO, Backblaze B2, Wasabi) through obstore.

Translation only: settings and credentials become an obstore ``S3Store``.
obstore's own retries are switched off, because the pipeline retries and logs
each attempt itself; its SigV4 signing, multipart uploads and presigned URLs
are used as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from connectorctl.adapters.declaration import AuthScheme, Vendor
from connectorctl.adapters.storage.base import StorageAdapter
from connectorctl.domain.values import AuthMethod
from connectorctl.errors import ConfigurationError
from connectorctl.settings import VendorSettings

if TYPE_CHECKING:
    from obstore.store import ClientConfig, S3Config

ACCESS_KEYS = AuthScheme(
    AuthMethod.HMAC,
    ("access_key_id", "secret_access_key"),
    ("session_token",),
    help="an access key pair (AWS IAM, R2 API token, B2 application key, MinIO/Wasabi access key)",
)


@dataclass(frozen=True)
class S3Options(VendorSettings):
    bucket: str | None = None  # the bucket every key lives in
    region: str | None = None  # null = us-east-1; R2 uses "auto"
    path_style: bool | None = None  # bucket in the URL path; null = yes with a base_url, no for AWS


class S3StorageAdapter(StorageAdapter[S3Options]):
    capabilities = frozenset({"metadata", "presign"})

    @property
    def bucket(self) -> str:
        if not self.config.bucket:
            raise ConfigurationError(
                f"vendors.{self.slug}.bucket is not set", hint="name the bucket in the config (see docs/storage.md)"
            )
        return self.config.bucket

    def build_store(self) -> Any:
        from obstore.store import S3Store

        bucket = self.bucket
        data = self.credentials(None).data
        key_id, secret, token = data["access_key_id"], data["secret_access_key"], data.get("session_token")
        self.secrets = tuple(v for v in (secret, token) if v)
        endpoint = self.config.base_url
        path_style = self.config.path_style if self.config.path_style is not None else bool(endpoint)
        config: S3Config = {
            "region": self.config.region or "us-east-1",
            "access_key_id": key_id,
            "secret_access_key": secret,
            "virtual_hosted_style_request": not path_style,
        }
        if token:
            config["session_token"] = token
        if endpoint:
            config["endpoint"] = endpoint.rstrip("/")
        client: ClientConfig = {  # a 200 MB object may take minutes: what times out is silence, not the whole transfer
            "timeout": timedelta(days=1),
            "read_timeout": timedelta(seconds=self.config.timeout_seconds),
            "connect_timeout": timedelta(seconds=self.config.connect_timeout_seconds),
            "allow_http": bool(endpoint and endpoint.startswith("http://")),
        }
        return S3Store(bucket, config=config, client_options=client, retry_config={"max_retries": 0})

    def location(self, key: str) -> str:
        return f"s3://{self.config.bucket}/{key}"

    def sign_url(self, method: str, key: str, expires_in: timedelta) -> str:
        import obstore

        verb: Literal["GET", "PUT"] = "PUT" if method == "PUT" else "GET"
        return obstore.sign(self.store, verb, key, expires_in)


VENDOR = Vendor(
    "s3",
    "S3-compatible object storage (AWS S3, Cloudflare R2, MinIO, Backblaze B2, Wasabi)",
    {"storage": S3StorageAdapter},
    S3Options,
    (ACCESS_KEYS,),
)

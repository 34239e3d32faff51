"""Any S3-compatible store (AWS S3, Cloudflare R2, MinIO, Backblaze B2, Wasabi) through obstore.

Translation only: settings and credentials become an obstore ``S3Store``.
obstore's own retries are switched off, because the pipeline retries and logs
each attempt itself; its SigV4 signing, multipart uploads and presigned URLs
are used as they are.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connectorctl.adapters.storage.base import StorageAdapter
from connectorctl.errors import ConfigurationError

ACCESS_KEY_FIELDS = ("access_key_id", "key_id")
SECRET_FIELDS = ("secret_access_key", "secret")


class S3StorageAdapter(StorageAdapter):
    capabilities = frozenset({"metadata", "presign"})

    @property
    def bucket(self) -> str:  # type: ignore[override]
        if not self.config.bucket:
            raise ConfigurationError(f"vendors.{self.slug}.bucket is not set", hint="name the bucket in the config (see docs/storage.md)")
        return self.config.bucket

    def build_store(self) -> Any:
        from obstore.store import S3Store

        bucket = self.bucket
        data = self.connector.credentials.get(self.slug).data
        key_id = next((data[f] for f in ACCESS_KEY_FIELDS if data.get(f)), None)
        secret = next((data[f] for f in SECRET_FIELDS if data.get(f)), None)
        if not key_id or not secret:
            raise ConfigurationError(f"the {self.slug} credentials need access_key_id and secret_access_key",
                                     hint=f"printf 'key_id=...\\nsecret=...\\n' | connectorctl creds set {self.slug} --stdin")
        token = data.get("session_token")
        self.secrets = tuple(v for v in (secret, token) if v)
        endpoint = self.config.base_url
        path_style = self.config.path_style if self.config.path_style is not None else bool(endpoint)
        config: dict[str, Any] = {
            "region": self.config.region or "us-east-1",
            "access_key_id": key_id,
            "secret_access_key": secret,
            "virtual_hosted_style_request": not path_style,
        }
        if token:
            config["session_token"] = token
        if endpoint:
            config["endpoint"] = endpoint.rstrip("/")
        client = {  # a 200 MB object may take minutes: what times out is silence, not the whole transfer
            "timeout": timedelta(days=1),
            "read_timeout": timedelta(seconds=self.config.timeout_seconds),
            "connect_timeout": timedelta(seconds=self.config.connect_timeout_seconds),
            "allow_http": bool(endpoint and endpoint.startswith("http://")),
        }
        return S3Store(bucket, config=config, client_options=client, retry_config={"max_retries": 0})  # type: ignore[arg-type]

    def location(self, key: str) -> str:
        return f"s3://{self.config.bucket}/{key}"

    def sign_url(self, method: str, key: str, expires_in: timedelta) -> str:
        import obstore

        return obstore.sign(self.store, method, key, expires_in)  # type: ignore[arg-type]

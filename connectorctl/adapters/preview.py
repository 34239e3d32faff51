"""Show a built-but-unsent httpx request with every secret masked (``send --dry-run``).

The same two nets as the integration log apply: values under a sensitive
key (header or body field) and any literal secret the adapter would use,
wherever it appears (URL, query, body).  A form or JSON body is decoded so
people read fields, not an encoded blob.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable
from urllib.parse import parse_qsl

import httpx

from connectorctl.redaction import MASK, Redactor

if TYPE_CHECKING:
    from connectorctl.adapters.http import VendorRequest

_ALWAYS_MASKED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def describe_request(request: httpx.Request, secrets: Iterable[str], redact_fields: Iterable[str]) -> dict[str, Any]:
    redactor = Redactor(redact_fields, secrets)
    headers = {
        name: MASK if name.lower() in _ALWAYS_MASKED_HEADERS else value
        for name, value in request.headers.items()
        if name.lower() not in ("content-length", "host")
    }
    return {
        "method": request.method,
        "url": redactor.text(str(request.url)),
        "headers": redactor.data(headers),
        "body": redactor.data(_decode_body(request)),
    }


def placeholder_credentials(slug: str) -> Any:
    """Stand-ins for every credential field, so a dry-run can build a request without secrets."""
    from connectorctl.domain.values import AuthMethod, Credentials

    names = ("api_key", "token", "username", "password", "access_token", "key_id", "secret")
    return Credentials(slug, AuthMethod.NONE, {n: f"<{n}>" for n in names}, source="placeholder")


def request_from_description(described: "VendorRequest", url: str) -> httpx.Request:
    """The httpx request a :class:`VendorRequest` stands for, built but never sent (Basic auth as its header)."""
    headers = dict(described.headers)
    auth = described.auth
    if auth:
        import base64

        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
    return httpx.Request(
        described.method,
        url,
        json=described.json,
        data=described.data,
        content=described.content,
        files=described.files,
        params=described.params,
        headers=headers,
    )


def _decode_body(request: httpx.Request) -> Any:
    content = request.content if request.stream is not None else b""
    if not content:
        return None
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    text = content.decode("utf-8", "replace")
    if kind == "application/x-www-form-urlencoded":
        fields: dict[str, Any] = {}
        for key, value in parse_qsl(text, keep_blank_values=True):
            fields[key] = (
                [*fields[key], value]
                if isinstance(fields.get(key), list)
                else ([fields[key], value] if key in fields else value)
            )
        return fields
    if kind.endswith("json"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    if kind.startswith("multipart/"):
        return f"<multipart body, {len(content)} bytes>"
    return text if len(text) <= 4000 else f"<{len(content)} bytes>"

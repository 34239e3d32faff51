"""``POST /api/connector/inbound/{service}``: verify, parse, store once, call the hooks.

Configured under ``inbound.<service>`` (docs/inbound.md): ``format`` says whose
payload it is (default: the service name) and the webhook fields say how a
delivery is verified, by the same verifiers as ``/api/connector/webhooks``:
Mailgun signs its route forwards (``timestamp``/``token``/``signature`` fields),
Mandrill signs with ``X-Mandrill-Signature``, Postmark and SendGrid Inbound
Parse put Basic credentials in the URL you give them (``scheme: postmark``
checks them).  ``scheme: none`` accepts anything: only behind a secret URL.

Answers: 200 with the stored ids (a duplicate delivery is acknowledged and not
stored again, so the vendor stops retrying), 400 for a payload that is not the
vendor's shape or a malformed signature, 401 for a bad signature, 404 for an
unconfigured service, 413 for an oversized body, 503 when the state file or
the storage role cannot take the message (the vendor retries).  Every delivery
becomes one inbound integration-log row.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from connectorctl.errors import ConnectorctlError, InvalidInputError, StateStoreError
from connectorctl.store.logs import INSERT_LOG, iso_utc
from connectorctl.webhooks.base import WebhookRequest
from connectorctl.webhooks.receiver import BAD_REQUEST, receive

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from connectorctl.gateway import Connector
    from connectorctl.settings import InboundSettings

PATH = "/api/connector/inbound/{service}"


def with_inbound(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document plus this endpoint."""
    from connectorctl.api.openapi import _err

    operation = {
        "operationId": "receiveInboundMail",
        "summary": "Inbound mail; authenticated by the vendor (signature or Basic credentials), not a token.",
        "security": [{}],
        "parameters": [{"name": "service", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {
            "200": {"description": "Stored (or a duplicate, acknowledged)"},
            "400": _err("Not the vendor's payload, or a malformed signature"),
            "401": _err("Bad signature"),
            "404": _err("Unknown inbound endpoint"),
            "413": _err("Body too large"),
            "503": _err("Cannot store it now; the vendor retries"),
        },
    }
    return {**document, "paths": {**document["paths"], PATH: {"post": operation}}}


def inbound_routes(connector: "Connector") -> list["Route"]:
    from starlette.routing import Route

    receiver = InboundReceiver(connector)
    return [Route(PATH, receiver.endpoint, methods=["POST"], name="inbound_receive")]


class InboundReceiver:
    def __init__(self, connector: "Connector") -> None:
        self.connector = connector

    async def endpoint(self, request: "Request") -> "JSONResponse":
        return await receive(request, self.connector.settings.inbound, "inbound", self.handle)

    def handle(
        self, service: str, settings: "InboundSettings", body: bytes, headers: list[tuple[str, str]], url: str
    ) -> tuple[int, dict[str, Any]]:
        """Verify, parse and store one delivery; (HTTP status, JSON body).  Thread-safe."""
        from connectorctl.inbound.hooks import run_hooks
        from connectorctl.inbound.parsers import parse
        from connectorctl.inbound.store import record_hook_errors, save

        started, now = time.monotonic(), self.connector.clock.time()
        request = WebhookRequest(body, headers, url)
        content_type = request.header("content-type") or ""
        fmt = settings.format or service
        secrets: list[str] = []

        def answer(
            status: int, data: dict[str, Any], code: str | None = None, detail: str | None = None
        ) -> tuple[int, dict[str, Any]]:
            self._log(service, request, secrets, status, data, code, detail, now, started)
            return status, data

        if settings.scheme != "none":
            from connectorctl.webhooks.service import resolve_secrets, verifier_for

            try:
                secrets = resolve_secrets(self.connector, settings)
                verdict = verifier_for(settings).verify(
                    signed_part(settings.scheme, request, content_type), secrets, now=now
                )
            except ConnectorctlError as exc:
                return answer(
                    500,
                    {"error": {"code": exc.code, "message": "inbound endpoint is misconfigured"}},
                    exc.code,
                    exc.message,
                )
            if not verdict.ok:
                return answer(
                    400 if verdict.reason in BAD_REQUEST else 401,
                    {"error": {"code": verdict.reason, "message": verdict.detail}},
                    verdict.reason,
                    verdict.detail,
                )
        try:
            messages = parse(fmt, service, body, content_type)
        except InvalidInputError as exc:
            return answer(
                400, {"error": {"code": "malformed_body", "message": exc.message}}, "malformed_body", exc.message
            )
        stored, duplicates = [], 0
        try:
            for message in messages:
                kept, new = save(self.connector, message, now)
                if not new:
                    duplicates += 1
                    continue
                stored.append(kept.id)
                errors = run_hooks(kept, settings.hooks)
                if errors:
                    record_hook_errors(self.connector, kept.id or "", errors)
        except ConnectorctlError as exc:  # the state file or the object store: the vendor retries later
            code = exc.code if isinstance(exc, StateStoreError) else "storage_unavailable"
            return answer(
                503,
                {"error": {"code": code, "message": "the message could not be stored; retry later"}},
                code,
                exc.message,
            )
        return answer(
            200,
            {
                "status": "accepted" if stored or not duplicates else "duplicate",
                "stored": stored,
                "duplicates": duplicates,
            },
        )

    def _log(
        self,
        service: str,
        request: WebhookRequest,
        secrets: list[str],
        status: int,
        response: dict[str, Any],
        error_code: str | None,
        error_message: str | None,
        now: float,
        started: float,
    ) -> None:
        """One inbound log row per delivery: headers (secrets masked), never the message body or attachments."""
        from connectorctl.redaction import Redactor
        from connectorctl.resilience.pipeline import new_id

        redactor = Redactor(self.connector.settings.logging.redact_fields).with_secrets(secrets)
        request_data = {"headers": redactor.data(dict(request.headers)), "size": len(request.body)}
        row = (
            new_id(),
            None,
            service,
            "inbound_email",
            redactor.text(request.url or ""),
            "POST",
            "success" if status == 200 else "failed",
            status,
            int((time.monotonic() - started) * 1000),
            json.dumps(request_data, default=str),
            json.dumps(response),
            redactor.text(error_message) if error_message else None,
            error_code,
            1,
            None,
            "inbound",
            iso_utc(now),
        )
        self.connector.db.run(lambda c: c.execute(INSERT_LOG, row))


def signed_part(scheme: str, request: WebhookRequest, content_type: str) -> WebhookRequest:
    """What the verifier checks.  Mailgun's signature covers only its ``timestamp`` and ``token`` fields,
    wherever they travel; from a multipart route forward they are handed over as the form it already reads."""
    if scheme != "mailgun" or not content_type.lower().startswith("multipart/form-data"):
        return request
    from connectorctl.inbound.parsers import read_form

    try:
        form = read_form(request.body, content_type)
    except InvalidInputError:
        return request
    fields: dict[str, str] = {
        name: form.text(name) or "" for name in ("timestamp", "token", "signature") if name in form.fields
    }
    return WebhookRequest(urlencode(fields).encode(), request.headers, request.url)

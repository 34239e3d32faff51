"""``POST /api/connector/webhooks/{service}``: verify, log, keep accepted events once.

A verified delivery report (SendGrid, Mailgun, Postmark, Mailchimp
Transactional, Twilio, Vonage) is also parsed into delivery events, linked to
the message we sent and marked processed in the same transaction; so is a
shipping vendor's tracking update (EasyPost, Shippo), which moves its shipment.

A self-contained Starlette route that ``connectorctl serve`` mounts.  The body
is verified byte for byte as received, with the scheme and secrets configured
under ``webhooks.<service>``.  Answers: 200 accepted (or duplicate: already
accepted, acknowledged so the vendor stops retrying, not stored twice), 400 for
a missing/malformed signature header or body, 401 for a bad signature or stale
timestamp, 404 for an unconfigured service, 413 for an oversized body, 503 when
the state file cannot record the event (the vendor retries later).  Every
delivery to a configured service becomes one inbound integration-log row.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import parse_qsl

from connectorctl.errors import ConnectorctlError
from connectorctl.store.logs import INSERT_LOG, iso_utc
from connectorctl.webhooks.base import Reason, Verdict, WebhookRequest

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from connectorctl.delivery.events import DeliveryEvent
    from connectorctl.gateway import Connector

PATH = "/api/connector/webhooks/{service}"
BAD_REQUEST = {Reason.MALFORMED_HEADER, Reason.MISSING_HEADER, Reason.MALFORMED_BODY}


def webhook_routes(connector: "Connector") -> list["Route"]:
    """The receiver's routes, ready to mount in a Starlette app."""
    from starlette.routing import Route

    receiver = WebhookReceiver(connector)
    return [Route(PATH, receiver.endpoint, methods=["POST"], name="webhook_receive")]


async def receive(
    request: "Request", configured: Mapping[str, Any], kind: str, handle: Callable[..., tuple[int, dict[str, Any]]]
) -> "JSONResponse":
    """One POST to a configured ``{service}`` endpoint (webhooks, inbound mail).

    404 unless the service is configured, 413 when the body is (declared or found) over its
    ``max_body_bytes``; else ``handle(service, settings, body, headers, url)`` runs in the thread
    pool, because it blocks on the state file.
    """
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse

    service = request.path_params["service"]
    settings = configured.get(service)
    if settings is None:
        return JSONResponse(
            {"error": {"code": f"unknown_{kind}", "message": f"no {kind} endpoint {service!r}"}}, status_code=404
        )
    limit = settings.max_body_bytes
    too_large = JSONResponse(
        {"error": {"code": "payload_too_large", "message": f"body over {limit} bytes"}}, status_code=413
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return too_large
    body = await request.body()
    if len(body) > limit:
        return too_large
    status, data = await run_in_threadpool(
        handle, service, settings, body, list(request.headers.items()), str(request.url)
    )
    return JSONResponse(data, status_code=status)


class WebhookReceiver:
    def __init__(self, connector: "Connector") -> None:
        self.connector = connector

    async def endpoint(self, request: "Request") -> "JSONResponse":
        return await receive(request, self.connector.settings.webhooks, "webhook", self._handle_configured)

    def _handle_configured(self, service: str, _hook: Any, *delivery: Any) -> tuple[int, dict[str, Any]]:
        return self.handle(service, *delivery)

    def handle(self, service: str, body: bytes, headers: list[tuple[str, str]], url: str) -> tuple[int, dict[str, Any]]:
        """Verify one delivery and record it; returns (HTTP status, JSON body).  Thread-safe."""
        from connectorctl.webhooks.service import endpoint_settings, resolve_secrets, verifier_for

        started = time.monotonic()
        now = self.connector.clock.time()
        request = WebhookRequest(body, headers, url)
        secrets: list[str] = []
        data: dict[str, Any]
        try:
            hook = endpoint_settings(self.connector, service)
            verifier = verifier_for(hook)
            secrets = resolve_secrets(self.connector, hook)
            verdict = verifier.verify(request, secrets, now=now)
        except ConnectorctlError as exc:
            data = {"error": {"code": exc.code, "message": "webhook endpoint is misconfigured"}}
            self._log(service, request, secrets, 500, data, "failed", None, exc.code, exc.message, now, started)
            return 500, data
        if not verdict.ok:
            status = 400 if verdict.reason in BAD_REQUEST else 401
            data = {"error": {"code": verdict.reason, "message": verdict.detail}}
            self._log(
                service, request, secrets, status, data, "failed", None, verdict.reason, verdict.detail, now, started
            )
            return status, data
        from connectorctl.delivery.vendors import parse_events

        events = parse_events(verdict.scheme, body, now)
        try:
            row_id, duplicate, counts = self._accept(
                service, verdict, body, now, verifier.replay_expiry(verdict, now), events
            )
        except ConnectorctlError as exc:  # state file locked/read-only: 503 so the vendor retries later
            return 503, {"error": {"code": exc.code, "message": "could not record the event; retry later"}}
        if duplicate:
            data = {"status": "duplicate", "event_id": verdict.event_id}
            self._log(
                service,
                request,
                secrets,
                200,
                data,
                "success",
                verdict,
                Reason.REPLAY,
                "duplicate delivery acknowledged",
                now,
                started,
            )
            return 200, data
        accepted: dict[str, Any] = {"status": "accepted", "id": row_id, "event_id": verdict.event_id}
        if counts is not None:
            accepted["delivery_events"] = {"stored": counts[0], "duplicate": counts[1]}
        self._log(service, request, secrets, 200, accepted, "success", verdict, None, None, now, started)
        self._payment_event(verdict, request)
        return 200, accepted

    def _payment_event(self, verdict: Verdict, request: WebhookRequest) -> None:
        """A payment event updates the payment it concerns.

        The event is kept either way, so a failure here only warns.
        """
        if verdict.scheme not in ("stripe", "paypal"):
            return
        from connectorctl.payments.events import apply_event

        try:
            apply_event(self.connector, verdict.scheme, request.json())
        except (ConnectorctlError, KeyError, TypeError, ValueError) as exc:
            import logging

            logging.getLogger(__name__).warning(
                "payment event %s not applied: %s", verdict.event_id, type(exc).__name__
            )

    def _accept(
        self,
        service: str,
        verdict: Verdict,
        body: bytes,
        now: float,
        expires_at: float,
        events: "list[DeliveryEvent] | None",
    ) -> tuple[str | None, bool, tuple[int, int] | None]:
        """Record the id in the replay store, keep the delivery and fold in its delivery events, atomically;
        (row id, was it a duplicate, (events stored, events already known) when it carried delivery reports)."""
        from connectorctl.delivery.store import ingest
        from connectorctl.resilience.pipeline import new_id
        from connectorctl.shipping.webhooks import apply_tracking_webhook
        from connectorctl.webhooks.replay import record_in

        row_id = new_id()
        assert verdict.event_id is not None  # a verified delivery has one (its body's fingerprint at least)
        with self.connector.db.write() as conn:
            if not record_in(conn, service, verdict.event_id, now=now, expires_at=expires_at):
                return None, True, None
            inserted = conn.execute(
                "INSERT INTO webhook_events (id, service, event_id, event_type, scheme, received_at, payload) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (
                    row_id,
                    service,
                    verdict.event_id,
                    verdict.event_type,
                    verdict.scheme,
                    iso_utc(now),
                    body.decode("utf-8", errors="replace"),
                ),
            ).rowcount
            if not inserted:
                return None, True, None
            if apply_tracking_webhook(self.connector, verdict.scheme, body, conn) is not None:
                conn.execute("UPDATE webhook_events SET processed_at = ? WHERE id = ?", (iso_utc(now), row_id))
            if events is None:
                return row_id, False, None
            counts = ingest(conn, events, received_at=now, webhook_event_id=row_id)
            conn.execute("UPDATE webhook_events SET processed_at = ? WHERE id = ?", (iso_utc(now), row_id))
        return row_id, False, counts

    def _log(
        self,
        service: str,
        request: WebhookRequest,
        secrets: list[str],
        status: int,
        response: dict[str, Any],
        outcome: str,
        verdict: Verdict | None,
        error_code: str | None,
        error_message: str | None,
        now: float,
        started: float,
    ) -> None:
        from connectorctl.redaction import Redactor
        from connectorctl.resilience.pipeline import new_id

        settings = self.connector.settings
        redactor = Redactor(settings.logging.redact_fields).with_secrets(secrets)
        request_data: dict[str, Any] = {"headers": redactor.data(dict(request.headers))}
        if settings.logging.store_bodies:
            request_data["body"] = redactor.data(_body_view(request))
        row = (
            new_id(),
            None,
            service,
            (verdict.event_type if verdict else None) or "webhook",
            redactor.text(request.url or ""),
            "POST",
            outcome,
            status,
            int((time.monotonic() - started) * 1000),
            json.dumps(request_data, default=str),
            json.dumps(response),
            redactor.text(error_message) if error_message else None,
            error_code,
            1,
            verdict.event_id if verdict else None,
            "inbound",
            iso_utc(now),
        )
        self.connector.db.run(lambda c: c.execute(INSERT_LOG, row))


def _body_view(request: WebhookRequest) -> Any:
    """The body as structured data where possible, so field-based redaction applies."""
    data = request.json()
    if data is not None:
        return data
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return request.body
    if "=" in text and "\n" not in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    return text

"""Fake Mailgun: Basic api:<key>, /v3/{domain}/messages as urlencoded or multipart form,
``{"id","message":"Queued. Thank you."}``, 400 ``{"message"}``, plain-text 401 "Forbidden", and the events
API ``GET /v3/{domain}/events`` (``event``, ``recipient``, ``begin`` in epoch seconds, ``limit`` <= 300): one
``accepted`` event per recipient carrying the message's ``v:`` variables as ``user-variables``."""

from __future__ import annotations

import base64
import email.utils
import itertools
import json
import time
from typing import Any

from fake_vendor_http import FakeVendor, Recorded, Response, json_response

API_KEY = "key-mailgun-0123456789"
DOMAIN = "mg.example.com"
REJECTED = "blocked@example.org"
TEMPLATE = "invoice-reminder"  # the template stored for the fake domain
MAX_DELIVERY_AHEAD = 3 * 86400


class FakeMailgun(FakeVendor):
    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        self.answer_without_id = False
        self.events: list[dict[str, Any]] = []

    def authenticate(self, req: Recorded) -> bool:
        expected = "Basic " + base64.b64encode(f"api:{API_KEY}".encode()).decode()
        return req.headers.get("authorization") == expected

    def route(self, req: Recorded) -> Response | list[str]:
        if (req.method, req.path) == ("GET", f"/v3/domains/{DOMAIN}"):
            return json_response(200, {"domain": {"name": DOMAIN, "state": "active"}})
        if (req.method, req.path) == ("GET", f"/v3/{DOMAIN}/stats/total"):
            if not {"event", "start", "end"} <= set(req.query):
                return ["event, start and end are required"]
            period = {"accepted": {"outgoing": 5, "total": 5}, "delivered": {"smtp": 4, "total": 4},
                      "failed": {"permanent": {"total": 1}, "temporary": {"total": 0}}}
            return json_response(200, {"stats": [period, period], "resolution": "day"})
        if (req.method, req.path) == ("GET", f"/v3/{DOMAIN}/events"):
            return self.search_events(req)
        if req.method == "POST" and req.path.startswith("/v3/") and req.path.endswith("/messages"):
            if req.path != f"/v3/{DOMAIN}/messages":
                return json_response(404, {"message": "Domain not found"})
            return self.messages(req)
        return [f"no such endpoint {req.method} {req.path}"]

    def messages(self, req: Recorded) -> Response | list[str]:
        if req.content_type not in ("multipart/form-data", "application/x-www-form-urlencoded"):
            return [f"content type {req.content_type!r}: expected a form"]
        form = req.form()
        problems = [f"{f} is required" for f in ("from", "to", *(() if form.get("template") else ("subject",))) if not form.get(f)]
        variables = form.get("h:X-Mailgun-Variables")
        if variables and not isinstance(_json(variables[0]), dict):
            problems.append("h:X-Mailgun-Variables is a JSON object")
        when = form.get("o:deliverytime")
        try:
            due = email.utils.parsedate_to_datetime(when[0]).timestamp() if when else None
        except (TypeError, ValueError):
            due = None
            problems.append("o:deliverytime is an RFC 2822 date")
        if not any(form.get(f) for f in ("text", "html", "amp-html", "template")):
            problems.append("one of text, html, amp-html or template is required")
        if form.get("attachment") and req.content_type != "multipart/form-data":
            problems.append("attachments need multipart/form-data")
        to = [a.strip() for v in form.get("to", []) for a in v.split(",") if a.strip()]
        if len(to) > 1000:
            problems.append("at most 1000 recipients per batch")
        rcpt_vars = _json(form["recipient-variables"][0]) if form.get("recipient-variables") else {}
        if not isinstance(rcpt_vars, dict) or not all(isinstance(v, dict) for v in rcpt_vars.values()):
            problems.append("recipient-variables is a JSON object of objects keyed by address")
        if len(form.get("o:tag", [])) > 3:
            problems.append("at most 3 o:tag values")
        if problems:
            return problems
        if form.get("template") and form["template"][0] != TEMPLATE:
            return json_response(400, {"message": "template not found"})
        if due is not None and due > time.time() + MAX_DELIVERY_AHEAD:
            return json_response(400, {"message": "'o:deliverytime' can not be more than 3 days in the future"})
        if REJECTED in ",".join(form["to"]):
            return json_response(400, {"message": "'to' parameter is not a valid address. please check documentation"})
        if self.answer_without_id:  # accepted, but the answer lacks the id (a proxy or an API change can do this)
            return json_response(200, {"message": "Queued. Thank you."})
        message_id = f"<20261126.{next(self._ids)}@{DOMAIN}>"
        variables = {k[2:]: v[0] for k, v in form.items() if k.startswith("v:")}
        with self._lock:
            self.events += [{"event": "accepted", "timestamp": time.time(), "recipient": a.strip(), "user-variables": variables,
                             "message": {"headers": {"message-id": message_id.strip("<>"), "subject": form.get("subject", [""])[0]}}}
                            for a in ",".join(form["to"]).split(",") if a.strip()]
        return json_response(200, {"id": message_id, "message": "Queued. Thank you."})

    def search_events(self, req: Recorded) -> Response | list[str]:
        q = {k: v[0] for k, v in req.query.items()}
        if "begin" in q and "end" not in q and q.get("ascending") not in ("yes", "no"):
            return ["ascending must be given when begin is given without end"]
        if int(q.get("limit", 100)) > 300:
            return ["limit is at most 300"]
        with self._lock:
            found = [e for e in self.events if e["timestamp"] >= float(q.get("begin", 0))
                     and e["event"] == q.get("event", e["event"]) and e["recipient"] == q.get("recipient", e["recipient"])]
        return json_response(200, {"items": found[:int(q.get("limit", 100))], "paging": {"next": f"https://api.mailgun.net/v3/{DOMAIN}/events/next"}})

    def error_response(self, kind: str, **options: Any) -> Response:
        if kind == "auth":
            return 401, {"Content-Type": "text/plain"}, b"Forbidden"
        if kind == "forbidden":
            return json_response(403, {"message": "Domain access forbidden"})
        if kind == "invalid":
            return json_response(400, {"message": options.get("message", "'from' parameter is missing")})
        if kind == "rate_limited":
            headers = {"Retry-After": str(options["retry_after"])} if "retry_after" in options else {}
            return json_response(429, {"message": "Too many requests"}, **headers)
        if kind == "unavailable":
            return json_response(503, {"message": "Service Unavailable"})
        return json_response(500, {"message": "Internal Server Error"})

    @staticmethod
    def copies(req: Recorded) -> list[dict[str, Any]]:
        """With recipient-variables each ``to`` gets its own copy, %recipient.x% filled from its variables."""
        form = req.form()
        variables = json.loads(form["recipient-variables"][0]) if form.get("recipient-variables") else {}

        def apply(text: str | None, values: dict[str, Any]) -> str | None:
            for name, value in values.items():
                text = text.replace(f"%recipient.{name}%", str(value)) if text else text
            return text

        one = {k: v[0] for k, v in form.items() if isinstance(v[0], str)}
        return [{"to": [a], "subject": apply(one.get("subject"), variables.get(a, {})), "text": apply(one.get("text"), variables.get(a, {})),
                 "html": apply(one.get("html"), variables.get(a, {})), "data": variables.get(a)}
                for a in (x.strip() for v in form["to"] for x in v.split(",") if x.strip())]

    @staticmethod
    def observed(req: Recorded) -> dict[str, Any]:
        form = req.form()

        def addresses(field: str) -> list[str]:
            return [a.strip() for v in form.get(field, []) for a in v.split(",") if a.strip()]

        def one(field: str) -> str | None:
            return form[field][0] if form.get(field) else None

        return {
            "to": addresses("to"), "cc": addresses("cc"), "bcc": addresses("bcc"),
            "from": one("from").split("<")[-1].rstrip(">"), "subject": one("subject"), "text": one("text"), "html": one("html"),
            "reply_to": one("h:Reply-To"), "headers": {k[2:]: v[0] for k, v in form.items() if k.startswith("h:")},
            "tags": form.get("o:tag", []), "metadata": {k[2:]: v[0] for k, v in form.items() if k.startswith("v:")},
            "attachments": list(form.get("attachment", [])),
        }


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None

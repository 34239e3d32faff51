"""Fake SendGrid v3 (mail send, scopes, stats) following twilio/sendgrid-oai tsg_mail_v3, and the Email
Activity API ``GET /v3/messages?query=...&limit=N`` (``unique_args['name']="value"`` and ``to_email="..."`` conditions,
joined by ``AND``)."""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import time
from typing import Any

from fake_vendor_http import FakeVendor, Recorded, Response, json_response

API_KEY = "SG.test-key-0123456789"
REJECTED = "blocked@example.org"
TEMPLATE_ID = "d-4c1e0b7f2e8a4d0c9b3f6a5e7d8c9b0a"  # a dynamic template stored in the fake account
MAX_SEND_AT_AHEAD = 72 * 3600


class FakeSendGrid(FakeVendor):
    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        self.reset_at = 1_800_000_060
        self.accepted: list[dict[str, Any]] = []  # what Email Activity knows, in send order

    def authenticate(self, req: Recorded) -> bool:
        return req.headers.get("authorization") == f"Bearer {API_KEY}"

    def route(self, req: Recorded) -> Response | list[str]:
        if (req.method, req.path) == ("POST", "/v3/mail/send"):
            return self.mail_send(req)
        if (req.method, req.path) == ("GET", "/v3/messages"):
            return self.activity(req)
        if (req.method, req.path) == ("GET", "/v3/scopes"):
            return json_response(200, {"scopes": ["mail.send", "stats.read"]}, **self.rate_headers())
        if (req.method, req.path) == ("GET", "/v3/stats"):
            if "start_date" not in req.query:
                return ["start_date is required"]
            day = {"stats": [{"metrics": {"requests": 3, "delivered": 2, "bounces": 1}}]}
            return json_response(200, [{"date": req.query["start_date"][0], **day}, {"date": "next", **day}])
        return [f"no such endpoint {req.method} {req.path}"]

    def mail_send(self, req: Recorded) -> Response | list[str]:
        problems: list[str] = []
        if req.content_type != "application/json":
            return [f"content type {req.content_type!r}, expected application/json"]
        body = req.json()
        pers = body.get("personalizations")
        if not isinstance(pers, list) or not 1 <= len(pers) <= 1000:
            problems.append("personalizations: 1..1000 items required")
            pers = []
        for i, p in enumerate(pers):
            if not p.get("to") or not all(isinstance(t, dict) and t.get("email") for t in p["to"]):
                problems.append(f"personalizations.{i}.to: needs [{{email}}]")
            if "subject" not in body and "subject" not in p and "template_id" not in body:
                problems.append(f"personalizations.{i}: subject missing")
            if "dynamic_template_data" in p and ("template_id" not in body or not isinstance(p["dynamic_template_data"], dict)):
                problems.append(f"personalizations.{i}.dynamic_template_data: an object, with a template_id")
            subs = p.get("substitutions", {})
            if not isinstance(subs, dict) or not all(isinstance(v, str) for v in subs.values()) or (subs and "template_id" in body):
                problems.append(f"personalizations.{i}.substitutions: strings, and not with a dynamic template")
        if not (body.get("from") or {}).get("email"):
            problems.append("from.email is required")
        content = body.get("content")
        if "template_id" not in body:
            if not content or not all(c.get("type") and c.get("value") for c in content):
                problems.append("content: each item needs type and a non-empty value")
            elif len(content) > 1 and content[0]["type"] != "text/plain":
                problems.append("content: text/plain must come first")
        if "send_at" in body and (not isinstance(body["send_at"], int) or isinstance(body["send_at"], bool)):
            problems.append("send_at: a unix timestamp (integer)")
        if len(body.get("categories", [])) > 10:
            problems.append("categories: at most 10")
        for a in body.get("attachments", []):
            try:
                base64.b64decode(a.get("content", ""), validate=True)
            except binascii.Error:
                problems.append("attachments: content must be base64")
            if not a.get("filename"):
                problems.append("attachments: filename required")
        if problems:
            return problems
        if "template_id" in body and body["template_id"] != TEMPLATE_ID:
            return json_response(400, {"errors": [{"message": "The template_id must be a valid template ID.", "field": "template_id", "help": None}]})
        if body.get("send_at", 0) > time.time() + MAX_SEND_AT_AHEAD:
            return json_response(400, {"errors": [{"message": "The send_at parameter cannot be more than 72 hours in the future.", "field": "send_at", "help": None}]})
        if any(t["email"] == REJECTED for p in pers for t in p["to"]):
            return json_response(400, {"errors": [{"message": "Does not contain a valid address.", "field": "personalizations.0.to.0.email", "help": None}]})
        if ((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable"):
            return 200, self.rate_headers(), b""
        message_id = f"sg-{next(self._ids)}"
        with self._lock:
            self.accepted += [{"msg_id": f"{message_id}.filterdrecv-1", "from_email": body["from"]["email"], "subject": body.get("subject"),
                               "to_email": t["email"], "status": "processed", "opens_count": 0, "clicks_count": 0,
                               "last_event_time": "2026-11-26T03:30:00Z", "unique_args": {**body.get("custom_args", {}), **p.get("custom_args", {})}}
                              for p in pers for t in p["to"]]
        return 202, {"X-Message-Id": message_id, **self.rate_headers()}, b""

    def activity(self, req: Recorded) -> Response | list[str]:
        query, limit = req.query.get("query", [""])[0], req.query.get("limit", [""])[0]
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            return ["limit (1..1000) is required"]
        conditions = []
        for part in query.split(" AND "):
            arg = re.fullmatch(r"unique_args\['([^']+)'\]=\"([^\"]*)\"", part) or re.fullmatch(r'(to_email)="([^"]*)"', part)
            if arg is None:
                return [f"unsupported query {query!r}"]
            conditions.append((arg[1], arg[2], part.startswith("unique_args")))
        with self._lock:
            found = [m for m in reversed(self.accepted)
                     if all((m["unique_args"].get(k) if custom else m[k]) == v for k, v, custom in conditions)]
        return json_response(200, {"messages": [{k: v for k, v in m.items() if k != "unique_args"} for m in found[:int(limit)]]})

    @staticmethod
    def copies(req: Recorded) -> list[dict[str, Any]]:
        """What each personalization's recipients receive: subject and bodies with its substitutions applied."""
        body = req.json()
        out = []
        for p in body["personalizations"]:
            def apply(text: str | None) -> str | None:
                for tag, value in p.get("substitutions", {}).items():
                    text = text.replace(tag, value) if text else text
                return text

            content = {c["type"]: apply(c["value"]) for c in body.get("content", [])}
            out.append({"to": [t["email"] for t in p["to"]], "subject": apply(p.get("subject", body.get("subject"))),
                        "text": content.get("text/plain"), "html": content.get("text/html"), "data": p.get("dynamic_template_data")})
        return out

    def rate_headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "599", "X-RateLimit-Reset": str(self.reset_at)}

    def error_response(self, kind: str, **options: Any) -> Response:
        def err(status: int, message: str, **headers: str) -> Response:
            return json_response(status, {"errors": [{"field": None, "message": message, "help": None}]}, **headers)

        if kind == "auth":
            return err(401, "authorization required")
        if kind == "forbidden":
            return err(403, "access forbidden")
        if kind == "invalid":
            return err(400, options.get("message", "The from object must be provided for every email send."))
        if kind == "rate_limited":
            headers = {**self.rate_headers(), "X-RateLimit-Remaining": "0"}
            if "reset" in options:
                headers["X-RateLimit-Reset"] = str(options["reset"])
            if "retry_after" in options:
                headers["Retry-After"] = str(options["retry_after"])
            return err(429, "too many requests", **headers)
        if kind == "unavailable":
            return err(503, "service unavailable")
        return err(500, "internal server error")

    @staticmethod
    def observed(req: Recorded) -> dict[str, Any]:
        """The canonical view of a mail-send request, for the shared contract suite."""
        body = req.json()
        p = body["personalizations"][0]
        content = {c["type"]: c["value"] for c in body.get("content", [])}
        return {
            "to": [t["email"] for t in p["to"]],
            "cc": [t["email"] for t in p.get("cc", [])],
            "bcc": [t["email"] for t in p.get("bcc", [])],
            "from": body["from"]["email"],
            "subject": body.get("subject", p.get("subject")),
            "text": content.get("text/plain"),
            "html": content.get("text/html"),
            "reply_to": (body.get("reply_to") or {}).get("email"),
            "headers": body.get("headers", {}),
            "tags": body.get("categories", []),
            "metadata": body.get("custom_args", {}),
            "attachments": [(a["filename"], base64.b64decode(a["content"]), a["type"]) for a in body.get("attachments", [])],
        }

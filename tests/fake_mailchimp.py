"""Fake Mailchimp Transactional (Mandrill) following spec/transactional.json: key in the body,
one status per recipient at HTTP 200, errors as ``{status, code, name, message}``."""

from __future__ import annotations

import base64
import itertools
import re
from typing import Any

from fake_vendor_http import FakeVendor, Recorded, Response, json_response

API_KEY = "md-test-key-0123456789"
REJECTED = "blocked@example.org"
INVALID = "invalid-mailbox@example.net"
TEMPLATE = "invoice-reminder"  # the template slug stored in the fake account
SEND_AT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")  # UTC, "YYYY-MM-DD HH:MM:SS"


class FakeMandrill(FakeVendor):
    def __init__(self, version: str = "1.3", suffix: str = ".json", auth_status: int = 401, validation_status: int = 400) -> None:
        super().__init__()
        self.prefix, self.suffix = f"/api/{version}/", suffix
        self.auth_status, self.validation_status = auth_status, validation_status
        self._ids = itertools.count(1)

    def authenticate(self, req: Recorded) -> bool:
        try:
            return req.json().get("key") == API_KEY
        except ValueError:
            return False

    def route(self, req: Recorded) -> Response | list[str]:
        if req.method != "POST":
            return [f"every Mandrill call is a POST, got {req.method}"]
        if req.content_type != "application/json":
            return [f"content type {req.content_type!r}, expected application/json"]
        if "authorization" in req.headers:
            return ["the key belongs in the JSON body, not in a header"]
        if req.path == f"{self.prefix}users/ping2{self.suffix}":
            return json_response(200, {"PING": "PONG!"})
        template = req.path == f"{self.prefix}messages/send-template{self.suffix}"
        if req.path != f"{self.prefix}messages/send{self.suffix}" and not template:
            return [f"no such endpoint {req.path}"]
        body = req.json()
        message = body.get("message")
        if not isinstance(message, dict):
            return ["message is required"]
        problems = []
        to = message.get("to")
        if not isinstance(to, list) or not to or not all(isinstance(t, dict) and t.get("email") for t in to):
            problems.append("message.to[].email is required")
            to = []
        if any(t.get("type", "to") not in ("to", "cc", "bcc") for t in to):
            problems.append("message.to[].type must be to, cc or bcc")
        if not message.get("from_email"):
            problems.append("message.from_email is required")
        if template and (not isinstance(body.get("template_name"), str) or not isinstance(body.get("template_content"), list)):
            problems.append("send-template needs template_name and a template_content array")
        if not template and "template_name" in body:
            problems.append("template_name belongs to messages/send-template")
        for key in ("global_merge_vars", "merge_vars"):
            if key in message and not isinstance(message[key], list):
                problems.append(f"message.{key} is an array")
        rcpts = {t.get("email") for t in to}
        if any(not isinstance(v, dict) or v.get("rcpt") not in rcpts or not isinstance(v.get("vars"), list) for v in message.get("merge_vars", [])):
            problems.append("message.merge_vars[]: {rcpt (one of message.to), vars: [{name, content}]}")
        if message.get("merge_language", "mailchimp") not in ("mailchimp", "handlebars"):
            problems.append("message.merge_language is mailchimp or handlebars")
        if "send_at" in body and not (isinstance(body["send_at"], str) and SEND_AT.match(body["send_at"])):
            problems.append("send_at is UTC 'YYYY-MM-DD HH:MM:SS'")
        if problems:
            return problems
        if template and body["template_name"] != TEMPLATE:
            return self.error_response("unknown_template", name=body["template_name"])
        return json_response(200, [self.status_for(t["email"], scheduled="send_at" in body) for t in to])

    def status_for(self, address: str, *, scheduled: bool = False) -> dict[str, Any]:
        item: dict[str, Any] = {"email": address, "_id": f"md{next(self._ids):06d}"}
        if address == REJECTED:
            return {**item, "status": "rejected", "reject_reason": "hard-bounce"}
        if address == INVALID:
            return {**item, "status": "invalid"}
        return {**item, "status": "scheduled" if scheduled else "sent", "reject_reason": None}

    def error_response(self, kind: str, **options: Any) -> Response:
        def err(status: int, code: int, name: str, message: str, **headers: str) -> Response:
            return json_response(status, {"status": "error", "code": code, "name": name, "message": message}, **headers)

        if kind in ("auth", "forbidden"):
            return err(self.auth_status if kind == "auth" else 403, -1, "Invalid_Key", "Invalid API key")
        if kind == "invalid":
            return err(self.validation_status, -2, "ValidationError", options.get("message", "Validation error: {\"message\":{\"to\":\"required\"}}"))
        if kind == "rate_limited":
            headers = {"Retry-After": str(options["retry_after"])} if "retry_after" in options else {}
            return err(429, -1, "RateLimited", "too many requests", **headers)
        if kind == "unavailable":
            return err(503, -1, "GeneralError", "service temporarily unavailable")
        if kind == "unknown_template":
            return err(500, 5, "Unknown_Template", f"No such template \"{options.get('name')}\"")
        return err(500, -1, "GeneralError", "an unexpected error occurred")

    @staticmethod
    def copies(req: Recorded) -> list[dict[str, Any]]:
        """Each recipient's copy with ``preserve_recipients: false``: *|NAME|* merge tags filled from its merge_vars."""
        body = req.json()
        m = body["message"]
        per = {v["rcpt"]: {x["name"].upper(): x["content"] for x in v["vars"]} for v in m.get("merge_vars", [])}

        def apply(text: str | None, values: dict[str, Any]) -> str | None:
            return re.sub(r"\*\|([A-Z0-9_]+)\|\*", lambda g: str(values.get(g.group(1), "")), text) if text else text

        return [{"to": [t["email"]], "subject": apply(m.get("subject"), per.get(t["email"], {})), "text": apply(m.get("text"), per.get(t["email"], {})),
                 "html": apply(m.get("html"), per.get(t["email"], {})),
                 "data": {x["name"]: x["content"] for v in m.get("merge_vars", []) if v["rcpt"] == t["email"] for x in v["vars"]} or None}
                for t in m["to"]]

    @staticmethod
    def observed(req: Recorded) -> dict[str, Any]:
        m = req.json()["message"]
        by_type = {kind: [t["email"] for t in m["to"] if t.get("type", "to") == kind] for kind in ("to", "cc", "bcc")}
        headers = m.get("headers", {})
        return {
            **by_type,
            "from": m["from_email"], "subject": m.get("subject"), "text": m.get("text"), "html": m.get("html"),
            "reply_to": headers.get("Reply-To"), "headers": headers, "tags": m.get("tags", []), "metadata": m.get("metadata", {}),
            "attachments": [(a["name"], base64.b64decode(a["content"]), a["type"]) for a in m.get("attachments", [])],
        }

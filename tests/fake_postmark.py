"""Fake Postmark: server-token header, PascalCase JSON, /email, /email/batch (<= 500, per-item
ErrorCode at HTTP 200), 422 with ErrorCode, /server, /stats/outbound and the outbound message
search ``GET /messages/outbound`` (count <= 500 and offset required; ``recipient`` and ``metadata_<key>`` filters)."""

from __future__ import annotations

import base64
import itertools
from typing import Any

from fake_vendor_http import LOST, FakeVendor, Recorded, Response, json_response

TOKEN = "pm-server-token-0123456789"
REJECTED = "blocked@example.org"
TEMPLATES = {"31415": "welcome", "invoice-reminder": "invoice-reminder"}  # stored templates: id and alias
INACTIVE = ("You tried to send to recipient(s) that have been marked as inactive. Found inactive addresses: {}. "
            "Inactive recipients are ones that have generated a hard bounce, a spam complaint, or a manual suppression.")


class FakePostmark(FakeVendor):
    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)
        self.accepted: list[dict[str, Any]] = []  # what the search API knows, in send order
        self.lose_answers = 0  # accept the next N messages, then drop the connection instead of answering

    def authenticate(self, req: Recorded) -> bool:
        return req.headers.get("x-postmark-server-token") == TOKEN

    def route(self, req: Recorded) -> Response | list[str]:
        if req.headers.get("accept") != "application/json":
            return ["Accept: application/json is required"]
        if (req.method, req.path) == ("GET", "/server"):
            return json_response(200, {"ID": 1, "Name": "connectorctl-test", "ApiTokens": ["redacted"]})
        if (req.method, req.path) == ("GET", "/stats/outbound"):
            if not {"fromdate", "todate"} <= set(req.query):
                return ["fromdate and todate are required"]
            return json_response(200, {"Sent": 10, "Bounced": 1, "SMTPApiErrors": 0, "BounceRate": 10.0, "SpamComplaints": 0, "Tracked": 0})
        if (req.method, req.path) == ("GET", "/messages/outbound"):
            return self.search(req)
        if req.method != "POST" or req.path not in ("/email", "/email/batch", "/email/withTemplate", "/email/batchWithTemplates"):
            return [f"no such endpoint {req.method} {req.path}"]
        if req.content_type != "application/json":
            return [f"content type {req.content_type!r}, expected application/json"]
        body = req.json()
        if isinstance(body, dict) and "SendAt" in body:
            return ["Postmark has no scheduled sending (SendAt is not a field)"]
        if req.path in ("/email", "/email/withTemplate"):
            problems = self.check(body, template=req.path == "/email/withTemplate")
            if problems:
                return problems
            answer = self.answer(body, single=True)
            with self._lock:
                lose, self.lose_answers = self.lose_answers > 0, max(0, self.lose_answers - 1)
            return LOST if lose else answer
        if req.path == "/email/batchWithTemplates":
            messages = body.get("Messages") if isinstance(body, dict) else None
            if not isinstance(messages, list):
                return ["/email/batchWithTemplates takes {\"Messages\": [...]}"]
            if len(messages) > 500:
                return json_response(422, {"ErrorCode": 410, "Message": "Too many batch messages. Maximum is 500."})
            problems = [p for item in messages for p in self.check(item, template=True)]
            return problems or json_response(200, [self.answer(item, single=False) for item in messages])
        if not isinstance(body, list):
            return ["/email/batch takes a JSON array"]
        if len(body) > 500:
            return json_response(422, {"ErrorCode": 410, "Message": "Too many batch messages. Maximum is 500."})
        problems = [p for item in body for p in self.check(item)]
        if problems:
            return problems
        return json_response(200, [self.answer(item, single=False) for item in body])

    def search(self, req: Recorded) -> Response | list[str]:
        q = {k: v[0] for k, v in req.query.items()}
        if not {"count", "offset"} <= set(q) or not 0 < int(q["count"]) <= 500:
            return ["count (1..500) and offset are required"]
        with self._lock:
            found = list(reversed(self.accepted))  # newest first, as Postmark lists them
        for name, value in q.items():
            if name.startswith("metadata_"):
                found = [m for m in found if m["Metadata"].get(name[len("metadata_"):]) == value]
            elif name == "recipient":
                found = [m for m in found if value in [t["Email"] for t in m["To"]]]
        offset, count = int(q["offset"]), int(q["count"])
        return json_response(200, {"TotalCount": len(found), "Messages": found[offset:offset + count]})

    @staticmethod
    def check(m: Any, *, template: bool = False) -> list[str]:
        if not isinstance(m, dict):
            return ["each message is a JSON object"]
        problems = [f"{f} is required" for f in ("From", "To", *(() if template else ("Subject",))) if not m.get(f)]
        if template:
            if ("TemplateId" in m) == ("TemplateAlias" in m):
                problems.append("exactly one of TemplateId or TemplateAlias")
            if "TemplateId" in m and not isinstance(m["TemplateId"], int):
                problems.append("TemplateId is a number")
            if not isinstance(m.get("TemplateModel"), dict):
                problems.append("TemplateModel is an object")
        elif not (m.get("TextBody") or m.get("HtmlBody")):
            problems.append("TextBody or HtmlBody is required")
        if "Tag" in m and not isinstance(m["Tag"], str):
            problems.append("Tag is one string")
        if any(set(h) != {"Name", "Value"} for h in m.get("Headers", [])):
            problems.append("Headers are [{Name, Value}]")
        if any(not {"Name", "Content", "ContentType"} <= set(a) for a in m.get("Attachments", [])):
            problems.append("Attachments need Name, Content, ContentType")
        if m.get("MessageStream", "outbound") != "outbound":
            problems.append("unknown MessageStream")
        return problems

    def answer(self, m: dict[str, Any], *, single: bool) -> Any:
        if ("TemplateId" in m or "TemplateAlias" in m) and str(m.get("TemplateId", m.get("TemplateAlias"))) not in TEMPLATES:
            error = {"ErrorCode": 1101, "Message": "The Template's 'Id' associated with this request is not valid or was not found."}
            return json_response(422, error) if single else error
        addresses = [a.strip() for f in ("To", "Cc", "Bcc") for a in m.get(f, "").split(",") if a.strip()]
        if REJECTED in addresses:
            error = {"ErrorCode": 406, "Message": INACTIVE.format(REJECTED)}
            return json_response(422, error) if single else error
        ok = {"To": m["To"], "SubmittedAt": "2026-11-26T03:30:00.0000000-05:00", "MessageID": f"pm-{next(self._ids)}", "ErrorCode": 0, "Message": "OK"}
        with self._lock:
            self.accepted.append({"MessageID": ok["MessageID"], "To": [{"Email": a, "Name": None} for a in addresses], "Subject": m.get("Subject"),
                                  "Status": "Sent", "Metadata": m.get("Metadata", {}), "MessageStream": "outbound"})
        return json_response(200, ok) if single else ok

    def error_response(self, kind: str, **options: Any) -> Response:
        if kind in ("auth", "forbidden"):
            return json_response(401 if kind == "auth" else 403, {"ErrorCode": 10, "Message": "Request does not contain a valid Server token."})
        if kind == "invalid":
            return json_response(422, {"ErrorCode": options.get("code", 300), "Message": options.get("message", "Invalid email request")})
        if kind == "rate_limited":
            headers = {"Retry-After": str(options["retry_after"])} if "retry_after" in options else {}
            return json_response(429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, **headers)
        if kind == "unavailable":
            return json_response(503, {"ErrorCode": 0, "Message": "Service unavailable"})
        return json_response(500, {"ErrorCode": 0, "Message": "Internal server error"})

    @staticmethod
    def copies(req: Recorded) -> list[dict[str, Any]]:
        """Every message of a batch (or the one message) as its recipients receive it."""
        body = req.json()
        items = body["Messages"] if isinstance(body, dict) and "Messages" in body else body if isinstance(body, list) else [body]
        return [{"to": [a.strip() for a in m["To"].split(",")], "subject": m.get("Subject"), "text": m.get("TextBody"),
                 "html": m.get("HtmlBody"), "data": m.get("TemplateModel")} for m in items]

    @staticmethod
    def observed_item(m: dict[str, Any]) -> dict[str, Any]:
        def split(field: str) -> list[str]:
            return [a.strip() for a in m.get(field, "").split(",") if a.strip()]

        return {
            "to": split("To"), "cc": split("Cc"), "bcc": split("Bcc"), "from": m["From"].split("<")[-1].rstrip(">"),
            "subject": m.get("Subject"), "text": m.get("TextBody"), "html": m.get("HtmlBody"), "reply_to": m.get("ReplyTo"),
            "headers": {h["Name"]: h["Value"] for h in m.get("Headers", [])}, "tags": [m["Tag"]] if m.get("Tag") else [],
            "metadata": m.get("Metadata", {}),
            "attachments": [(a["Name"], base64.b64decode(a["Content"]), a["ContentType"]) for a in m.get("Attachments", [])],
        }

"""Delivery reports in each vendor's documented shape, built around one of our sent messages.

The field sets follow the vendors' own sample payloads (SendGrid's Event
Webhook reference, Mailgun's webhook samples, Postmark's webhook docs,
Mandrill's ``mandrill_events``, Twilio's status callback parameters, Vonage's
SMS delivery receipt).  ``kind`` is one of: delivered (or the furthest state
the vendor reports), earlier (a step before it), hard_bounce, complaint,
unknown.  Each builder returns the *unsigned* body; the test signs it with
the vendor's scheme.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import urlencode


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def sendgrid(kind: str, mid: str, rcpt: str, ts: float, n: int) -> bytes:
    base: dict[str, Any] = {"email": rcpt, "timestamp": int(ts), "smtp-id": f"<{mid}@ismtpd-555>", "category": "cat facts",
                            "sg_event_id": f"sg-ev-{n}-{kind}", "sg_message_id": f"{mid}.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0"}
    extra = {
        "delivered": {"event": "delivered", "response": "250 OK"},
        "earlier": {"event": "deferred", "response": "400 try again later", "attempt": "5"},
        "hard_bounce": {"event": "bounce", "reason": "500 unknown recipient", "status": "5.0.0", "type": "bounce"},
        "complaint": {"event": "spamreport"},
        "unknown": {"event": "group_resubscribe", "asm_group_id": 10},
    }[kind]
    return json.dumps([{**base, **extra}]).encode()


def mailgun(kind: str, mid: str, rcpt: str, ts: float, n: int) -> bytes:
    data: dict[str, Any] = {
        "id": f"mg-ev-{n}-{kind}", "timestamp": ts + 0.908181, "log-level": "info", "recipient": rcpt, "recipient-domain": rcpt.split("@")[1],
        "envelope": {"transport": "smtp", "sender": "shop@example.com", "targets": rcpt},
        "message": {"headers": {"to": rcpt, "message-id": mid.strip("<>"), "from": "shop@example.com", "subject": "Your order"}, "size": 111},
        "tags": ["my_tag_1"], "user-variables": {}, "flags": {"is-authenticated": True},
    }
    data.update({
        "delivered": {"event": "delivered", "delivery-status": {"code": 250, "message": "OK", "description": "", "attempt-no": 1}},
        "earlier": {"event": "failed", "severity": "temporary", "reason": "generic",
                    "delivery-status": {"code": 452, "message": "4.2.2 The email account that you tried to reach is over quota", "attempt-no": 1}},
        "hard_bounce": {"event": "failed", "severity": "permanent", "reason": "bounce",
                        "delivery-status": {"code": 550, "message": "5.1.1 The email account that you tried to reach does not exist"}},
        "complaint": {"event": "complained"},
        "unknown": {"event": "stored", "storage": {"url": "https://storage.example/messages/x", "key": "x"}},
    }[kind])
    return json.dumps({"event-data": data}).encode()


def postmark(kind: str, mid: str, rcpt: str, ts: float, n: int) -> bytes:
    common = {"MessageID": mid, "ServerID": 23, "MessageStream": "outbound", "Tag": "welcome-email", "Metadata": {"order": "42"}}
    bounce = {"ID": 4200 + 10 * n + len(kind), "TypeCode": 1, "Name": "Hard bounce", "Email": rcpt, "From": "shop@example.com", "BouncedAt": iso(ts),
              "DumpAvailable": True, "Inactive": True, "CanActivate": True, "Subject": "Your order", "Details": "smtp;550 5.1.1"}
    record = {
        "delivered": {"RecordType": "Delivery", "Recipient": rcpt, "DeliveredAt": iso(ts), "Details": "Test delivery webhook details"},
        "earlier": {**bounce, "RecordType": "Bounce", "Type": "SoftBounce", "TypeCode": 4096, "Name": "Soft bounce", "Inactive": False,
                    "Description": "The server could not temporarily deliver your message (ex: mailbox full)."},
        "hard_bounce": {**bounce, "RecordType": "Bounce", "Type": "HardBounce",
                        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found)."},
        "complaint": {**bounce, "RecordType": "SpamComplaint", "Type": "SpamComplaint", "TypeCode": 512, "Name": "Spam complaint",
                      "Description": "The subscriber explicitly marked this message as spam."},
        "unknown": {"RecordType": "SubscriptionChange", "Recipient": rcpt, "ChangedAt": iso(ts), "Origin": "Customer",
                    "SuppressSending": False, "SuppressionReason": None},
    }[kind]
    return json.dumps({**common, **record}).encode()


def mailchimp(kind: str, mid: str, rcpt: str, ts: float, n: int) -> bytes:
    msg = {"ts": int(ts) - 60, "subject": "Your order", "email": rcpt, "sender": "shop@example.com", "tags": ["webhook-example"],
           "metadata": {"user_id": 111}, "_id": mid, "_version": f"v{n}", "opens": [], "clicks": []}
    event: dict[str, Any] = {
        "delivered": {"event": "open", "msg": {**msg, "state": "sent"}, "ip": "127.0.0.1", "user_agent": "Mozilla/5.0"},
        "earlier": {"event": "deferral", "msg": {**msg, "state": "deferred", "diag": "451 4.3.5 Server busy, try again later"}},
        "hard_bounce": {"event": "hard_bounce", "msg": {**msg, "state": "bounced", "bounce_description": "bad_mailbox", "bgtools_code": 10,
                                                        "diag": "smtp;550 5.1.1 The email account that you tried to reach does not exist."}},
        "complaint": {"event": "spam", "msg": {**msg, "state": "sent"}},
        "unknown": {"type": "blacklist", "action": "add", "reject": {"email": rcpt, "reason": "hard-bounce"}},
    }[kind]
    if "event" in event:
        event.update({"_id": mid, "ts": int(ts)})
    return urlencode({"mandrill_events": json.dumps([event])}).encode()


def twilio(kind: str, mid: str, rcpt: str, ts: float, n: int) -> bytes:
    status = {"delivered": "delivered", "earlier": "sent", "hard_bounce": "undelivered", "complaint": "failed", "unknown": "partially_delivered"}[kind]
    form = {"AccountSid": "AC" + "0" * 31 + "1", "ApiVersion": "2010-04-01", "From": "+14155552000", "To": rcpt, "MessageSid": mid,
            "SmsSid": mid, "MessageStatus": status, "SmsStatus": status}
    if status in ("undelivered", "failed"):
        form["ErrorCode"] = "30003"
    if status == "delivered":
        form["RawDlrDoneDate"] = datetime.fromtimestamp(ts, timezone.utc).strftime("%y%m%d%H%M")
    return urlencode(form).encode()


def vonage(kind: str, mid: str, rcpt: str, ts: float, n: int) -> bytes:
    status = {"delivered": "delivered", "earlier": "accepted", "hard_bounce": "failed", "complaint": "rejected", "unknown": "unknown"}[kind]
    form = {"msisdn": rcpt.lstrip("+"), "to": "AcmeShop", "network-code": "23410", "messageId": mid, "price": "0.03330000",
            "status": status, "scts": datetime.fromtimestamp(ts, timezone.utc).strftime("%y%m%d%H%M"),
            "err-code": "0" if status in ("delivered", "accepted") else "1", "api-key": "vonagekey1",
            "message-timestamp": datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")}
    return urlencode(form).encode()


BUILDERS: dict[str, Callable[[str, str, str, float, int], bytes]] = {
    "sendgrid": sendgrid, "mailgun": mailgun, "postmark": postmark, "mailchimp": mailchimp, "twilio": twilio, "vonage": vonage,
}

"""Each vendor's inbound payload -> :class:`InboundMessage` (one vendor module's worth of translation each).

* ``sendgrid``: Inbound Parse, multipart/form-data: ``from``, ``to``, ``cc``, ``subject``,
  ``text``, ``html``, ``headers`` (the raw header block), ``charsets`` (each field's
  encoding), ``attachment-info`` and the files ``attachment1..N``; ``SPF``, ``dkim``,
  ``spam_score``.  With "send raw" the whole MIME message comes as ``email``.
* ``mailgun``: a route's ``forward()``, a form: ``from``, ``recipient``, ``subject``,
  ``body-plain``, ``body-html``, ``message-headers`` (JSON pairs), files
  ``attachment-1..N``; verdicts in the ``X-Mailgun-Sflag/Sscore/Spf/Dkim-Check-Result`` headers.
* ``postmark``: JSON: ``FromFull``, ``ToFull``, ``CcFull``, ``Subject``, ``TextBody``,
  ``HtmlBody``, ``Headers`` (``X-Spam-Status``, ``X-Spam-Score``, ``Received-SPF``),
  ``Attachments`` (base64).
* ``mailchimp``: Mandrill inbound events, ``mandrill_events=<JSON array>``; each
  ``inbound`` event's ``msg`` has ``from_email``, ``to`` ([address, name] pairs),
  ``headers``, ``text``, ``html``, ``attachments``/``images`` (base64 flag),
  ``spam_report``, ``spf``, ``dkim``.  One delivery may carry several messages.

A payload that is not the vendor's shape is an :class:`InvalidInputError` (HTTP 400).
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import email.utils
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl

from connectorctl.errors import InvalidInputError
from connectorctl.inbound.message import InboundAttachment, InboundMessage


@dataclass
class Form:
    """A form body: each field's first value (raw bytes) and the uploaded files in order."""

    fields: dict[str, bytes] = field(default_factory=dict)
    files: list[tuple[str, str, str, bytes]] = field(default_factory=list)  # (field, filename, content type, bytes)

    def text(self, name: str, charset: str = "utf-8") -> str | None:
        raw = self.fields.get(name)
        if raw is None:
            return None
        try:
            return raw.decode(charset, errors="replace")
        except LookupError:  # an unknown charset name
            return raw.decode("utf-8", errors="replace")


def read_form(body: bytes, content_type: str) -> Form:
    """A urlencoded or multipart/form-data body, with the stdlib's MIME parser."""
    kind = content_type.split(";")[0].strip().lower()
    form = Form()
    if kind == "application/x-www-form-urlencoded":
        try:
            for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict"):
                form.fields.setdefault(name, value.encode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise InvalidInputError("body is not a URL-encoded form") from None
        return form
    if kind != "multipart/form-data" or "boundary=" not in content_type:
        raise InvalidInputError(f"expected a form body, got {kind or 'no content type'}")
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body
    )
    if not parsed.is_multipart():
        raise InvalidInputError("malformed multipart/form-data body")
    for part in parsed.iter_parts():
        field_name = part.get_param("name", header="content-disposition")
        decoded = part.get_payload(decode=True)
        if not isinstance(field_name, str):
            continue
        payload = decoded if isinstance(decoded, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            form.files.append((field_name, filename, part.get_content_type(), payload))
        else:
            form.fields.setdefault(field_name, payload)
    return form


def _json(text: str | bytes | None, what: str, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidInputError(f"{what} is not JSON") from None


def _addresses(value: str | None) -> tuple[str, ...]:
    return tuple(address for _, address in email.utils.getaddresses([value or ""]) if address)


def _sender(value: str | None) -> tuple[str | None, str]:
    name, address = email.utils.parseaddr(value or "")
    if not address:
        raise InvalidInputError("the message has no sender address")
    return name or None, address


def _header_block(text: str | None) -> tuple[tuple[str, str], ...]:
    parsed = email.parser.HeaderParser(policy=email.policy.default).parsestr(text or "", headersonly=True)
    return tuple((name, str(value)) for name, value in parsed.items())


def _word(value: Any) -> str | None:
    """The leading verdict word of a header value (``Pass (sender SPF authorized) ...`` -> ``pass``)."""
    match = re.match(r"\s*([A-Za-z]+)", str(value)) if value not in (None, "") else None
    return match.group(1).lower() if match else None


def _verdicts(**values: Any) -> dict[str, str]:
    return {name: str(value).lower() for name, value in values.items() if value not in (None, "")}


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"{what} is not base64") from None


def from_mime(service: str, raw: bytes, verdicts: Mapping[str, str] | None = None) -> InboundMessage:
    """A whole MIME message (SendGrid's raw mode)."""
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    from_name, from_email = _sender(str(message.get("From", "")))
    plain, rich = message.get_body(("plain",)), message.get_body(("html",))
    attachments = tuple(
        InboundAttachment(
            part.get_filename() or "attachment",
            part.get_content_type(),
            len(data),
            data,
            (part.get("Content-ID") or "").strip("<>") or None,
        )
        for part in message.iter_attachments()
        if isinstance(data := part.get_payload(decode=True), bytes)
    )
    return InboundMessage(
        service,
        from_email,
        _addresses(message.get("To")),
        str(message.get("Subject", "")),
        plain.get_content() if plain is not None else None,
        rich.get_content() if rich is not None else None,
        from_name,
        _addresses(message.get("Cc")),
        tuple((k, str(v)) for k, v in message.items()),
        attachments,
        dict(verdicts or {}),
        message.get("Message-ID"),
    )


def sendgrid(service: str, body: bytes, content_type: str) -> list[InboundMessage]:
    form = read_form(body, content_type)
    charsets = _json(form.fields.get("charsets"), "charsets", {})
    charsets = charsets if isinstance(charsets, dict) else {}

    def text(name: str) -> str | None:
        return form.text(name, str(charsets.get(name) or "utf-8"))

    dkim = re.search(r":\s*([A-Za-z]+)", text("dkim") or "")  # "{@example.net : pass}"
    verdicts = _verdicts(
        spam_score=text("spam_score"), spf=_word(text("SPF")), dkim=dkim.group(1).lower() if dkim else None
    )
    if "email" in form.fields:
        return [from_mime(service, form.fields["email"], verdicts)]
    info = _json(form.fields.get("attachment-info"), "attachment-info", {})
    info = info if isinstance(info, dict) else {}
    attachments = tuple(
        InboundAttachment(
            str((info.get(name) or {}).get("filename") or filename),
            content_type_,
            len(data),
            data,
            (info.get(name) or {}).get("content-id"),
        )
        for name, filename, content_type_, data in form.files
    )
    headers = _header_block(text("headers"))
    from_name, from_email = _sender(text("from"))
    message_id = next((v for k, v in headers if k.lower() == "message-id"), None)
    return [
        InboundMessage(
            service,
            from_email,
            _addresses(text("to")),
            text("subject") or "",
            text("text"),
            text("html"),
            from_name,
            _addresses(text("cc")),
            headers,
            attachments,
            verdicts,
            message_id,
        )
    ]


def mailgun(service: str, body: bytes, content_type: str) -> list[InboundMessage]:
    form = read_form(body, content_type)
    pairs = _json(form.fields.get("message-headers"), "message-headers", [])
    headers = tuple((str(p[0]), str(p[1])) for p in pairs if isinstance(p, list) and len(p) == 2)
    found = {k.lower(): v for k, v in reversed(headers)}
    cids = {v: k.strip("<>") for k, v in _obj(_json(form.fields.get("content-id-map"), "content-id-map", {})).items()}
    attachments = tuple(
        InboundAttachment(filename, kind, len(data), data, cids.get(name)) for name, filename, kind, data in form.files
    )
    from_name, from_email = _sender(form.text("from") or form.text("From") or form.text("sender"))
    verdicts = _verdicts(
        spam=found.get("x-mailgun-sflag"),
        spam_score=found.get("x-mailgun-sscore"),
        spf=_word(found.get("x-mailgun-spf")),
        dkim=_word(found.get("x-mailgun-dkim-check-result")),
    )
    return [
        InboundMessage(
            service,
            from_email,
            _addresses(found.get("to") or form.text("recipient")),
            form.text("subject") or "",
            form.text("body-plain"),
            form.text("body-html"),
            from_name,
            _addresses(found.get("cc")),
            headers,
            attachments,
            verdicts,
            found.get("message-id") or form.text("Message-Id"),
        )
    ]


def postmark(service: str, body: bytes, content_type: str) -> list[InboundMessage]:
    data = _json(body, "the body", None)
    if not isinstance(data, dict) or not isinstance(data.get("FromFull") or data.get("From"), (dict, str)):
        raise InvalidInputError("not a Postmark inbound message (no From)")
    headers = tuple((str(h.get("Name")), str(h.get("Value"))) for h in data.get("Headers") or [] if isinstance(h, dict))
    found = {k.lower(): v for k, v in reversed(headers)}
    sender = _obj(data.get("FromFull")) or {"Email": data.get("From"), "Name": data.get("FromName")}

    def full(key: str, plain: str) -> tuple[str, ...]:
        items = data.get(key)
        if isinstance(items, list):
            return tuple(str(i["Email"]) for i in items if isinstance(i, dict) and i.get("Email"))
        return _addresses(data.get(plain))

    attachments = tuple(
        InboundAttachment(
            str(a.get("Name") or "attachment"),
            str(a.get("ContentType") or "application/octet-stream"),
            len(content),
            content,
            a.get("ContentID") or None,
        )
        for a in data.get("Attachments") or []
        if isinstance(a, dict)
        for content in (_b64(str(a.get("Content") or ""), "an attachment"),)
    )
    spam = found.get("x-spam-status")
    verdicts = _verdicts(spam=_word(spam), spam_score=found.get("x-spam-score"), spf=_word(found.get("received-spf")))
    if not sender.get("Email"):
        raise InvalidInputError("not a Postmark inbound message (no From)")
    return [
        InboundMessage(
            service,
            str(sender["Email"]),
            full("ToFull", "To"),
            str(data.get("Subject") or ""),
            data.get("TextBody") or None,
            data.get("HtmlBody") or None,
            sender.get("Name") or None,
            full("CcFull", "Cc"),
            headers,
            attachments,
            verdicts,
            found.get("message-id"),
        )
    ]


def mailchimp(service: str, body: bytes, content_type: str) -> list[InboundMessage]:
    form = read_form(body, content_type)
    events = _json(form.fields.get("mandrill_events"), "mandrill_events", None)
    if not isinstance(events, list):
        raise InvalidInputError("not a Mandrill delivery (no mandrill_events array)")
    messages = []
    for event in events:
        msg = event.get("msg") if isinstance(event, dict) and event.get("event") == "inbound" else None
        if not isinstance(msg, dict):
            continue  # Mandrill's webhook test and other event types carry no inbound message
        raw_headers = _obj(msg.get("headers"))
        headers = tuple(
            (str(k), str(v))
            for k, values in raw_headers.items()
            for v in (values if isinstance(values, list) else [values])
        )
        found = {k.lower(): v for k, v in reversed(headers)}
        images = _obj(msg.get("images"))
        files = {**_obj(msg.get("attachments")), **images}
        attachments = tuple(
            InboundAttachment(
                str(a.get("name") or name),
                str(a.get("type") or "application/octet-stream"),
                len(content),
                content,
                name if name in images else None,
            )
            for name, a in files.items()
            if isinstance(a, dict)
            for content in (
                _b64(str(a.get("content") or ""), "an attachment")
                if a.get("base64")
                else str(a.get("content") or "").encode("utf-8"),
            )
        )
        dkim = _obj(msg.get("dkim"))
        verdicts = _verdicts(
            spam_score=_obj(msg.get("spam_report")).get("score"),
            spf=_obj(msg.get("spf")).get("result"),
            dkim=("pass" if dkim.get("valid") else "fail") if dkim.get("signed") else None,
        )
        recipients = tuple(str(t[0]) for t in msg.get("to") or [] if isinstance(t, list) and t)
        if not msg.get("from_email"):
            raise InvalidInputError("a Mandrill inbound event has no from_email")
        messages.append(
            InboundMessage(
                service,
                str(msg["from_email"]),
                recipients or ((str(msg["email"]),) if msg.get("email") else ()),
                str(msg.get("subject") or ""),
                msg.get("text") or None,
                msg.get("html") or None,
                msg.get("from_name") or None,
                tuple(str(t[0]) for t in msg.get("cc") or [] if isinstance(t, list) and t),
                headers,
                attachments,
                verdicts,
                found.get("message-id"),
            )
        )
    return messages


FORMATS: dict[str, Callable[[str, bytes, str], list[InboundMessage]]] = {
    "mailchimp": mailchimp,
    "mailgun": mailgun,
    "postmark": postmark,
    "sendgrid": sendgrid,
}


def parse(fmt: str, service: str, body: bytes, content_type: str) -> list[InboundMessage]:
    return FORMATS[fmt](service, body, content_type)

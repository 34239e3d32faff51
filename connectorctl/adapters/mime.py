"""Our EmailMessage -> an RFC 5322 message, shared by the file sink and SMTP."""

from __future__ import annotations

import email.message
import email.utils

from connectorctl.domain.messages import EmailMessage


def build_mime(
    message: EmailMessage, from_email: str, from_name: str | None, message_id: str | None = None
) -> email.message.EmailMessage:
    mime = email.message.EmailMessage()
    mime["From"] = email.utils.formataddr((from_name or "", from_email)) if from_name else from_email
    mime["To"] = ", ".join(message.to)
    if message.cc:
        mime["Cc"] = ", ".join(message.cc)
    if message.reply_to:
        mime["Reply-To"] = message.reply_to
    mime["Subject"] = message.subject
    mime["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    mime["Message-ID"] = message_id or email.utils.make_msgid(domain=from_email.rpartition("@")[2] or None)
    for name, value in message.headers.items():
        mime[name] = value
    if message.tags:
        mime["X-Tags"] = ", ".join(message.tags)
    for key, value in message.metadata.items():
        mime[f"X-Metadata-{key}"] = value
    mime.set_content(message.text or "")
    if message.html:
        mime.add_alternative(message.html, subtype="html")
    for att in message.attachments:
        maintype, _, subtype = att.content_type.partition("/")
        mime.add_attachment(
            att.content, maintype=maintype or "application", subtype=subtype or "octet-stream", filename=att.filename
        )
    return mime

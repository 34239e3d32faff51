"""Which vendor slugs exist, for which channels, and where their adapter lives.

Kept import-free so that config validation and ``--help`` never pay for
importing httpx or any adapter module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VendorEntry:
    slug: str
    channels: frozenset[str]
    module: str
    classes: tuple[tuple[str, str], ...]  # (channel, class name)
    description: str

    def adapter_path(self, channel: str) -> tuple[str, str]:
        for ch, cls in self.classes:
            if ch == channel:
                return self.module, cls
        raise KeyError(channel)


def _entry(slug: str, module: str, description: str, **classes: str) -> VendorEntry:
    return VendorEntry(slug, frozenset(classes), module, tuple(classes.items()), description)


VENDORS: dict[str, VendorEntry] = {
    e.slug: e
    for e in (
        _entry("console", "connectorctl.adapters.sinks", "print each message to the terminal", email="ConsoleEmailAdapter", sms="ConsoleSmsAdapter"),
        _entry("file", "connectorctl.adapters.sinks", "write each message to the outbox folder", email="FileEmailAdapter", sms="FileSmsAdapter"),
        _entry("fake", "connectorctl.adapters.fake", "in-process fake vendor with configurable failures", email="FakeEmailAdapter", sms="FakeSmsAdapter"),
        _entry("twilio", "connectorctl.adapters.sms.twilio", "Twilio Messages, Lookup v2 and Balance", sms="TwilioSmsAdapter"),
        _entry("vonage", "connectorctl.adapters.sms.vonage", "Vonage (Nexmo) SMS API and account balance", sms="VonageSmsAdapter"),
        _entry("sendgrid", "connectorctl.adapters.email.sendgrid", "SendGrid v3 Mail Send (US or EU region)", email="SendGridEmailAdapter"),
        _entry("mailchimp", "connectorctl.adapters.email.mailchimp", "Mailchimp Transactional (Mandrill) messages/send", email="MailchimpEmailAdapter"),
        _entry("postmark", "connectorctl.adapters.email.postmark", "Postmark /email and /email/batch", email="PostmarkEmailAdapter"),
        _entry("mailgun", "connectorctl.adapters.email.mailgun", "Mailgun messages API (US or EU region)", email="MailgunEmailAdapter"),
        _entry("smtp", "connectorctl.adapters.email.smtp", "any SMTP server (plain, STARTTLS or implicit TLS, optional AUTH)", email="SmtpEmailAdapter"),

        _entry("local", "connectorctl.adapters.storage.local", "objects in a folder under $CONNECTORCTL_HOME", storage="LocalStorageAdapter"),
        _entry("s3", "connectorctl.adapters.storage.s3", "S3-compatible object storage (AWS S3, R2, MinIO, B2, Wasabi)", storage="S3StorageAdapter"),
        _entry("demo", "connectorctl.adapters.demo", "local HTTP vendor that `connectorctl demo` starts", email="DemoEmailAdapter"),
    )
}

CHANNELS = ("email", "sms", "storage")


def vendors_for(channel: str) -> list[str]:
    return sorted(slug for slug, e in VENDORS.items() if channel in e.channels)

"""Local sinks, so the gateway works end to end with no vendor account.

They go through the full pipeline and log like any vendor.  ``file`` writes
each email as an ``.eml`` (and each SMS as ``.sms.json``) into the outbox,
atomically (temp file + rename) so a reader never sees half a message.
``console`` renders to stderr, keeping stdout for the command's result.
"""

from __future__ import annotations

import json
import os
import sys
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectorctl.adapters.base import ALL_EMAIL_FEATURES, EmailAdapter, SmsAdapter
from connectorctl.adapters.declaration import Vendor
from connectorctl.adapters.mime import build_mime
from connectorctl.domain.messages import DeliveryStatus, EmailMessage, RecipientResult, SendResult, SmsMessage
from connectorctl.errors import ConnectionFailedError
from connectorctl.resilience.pipeline import Call, VendorResponse, new_id
from connectorctl.settings import Settings, VendorSettings

__all__ = ["ALL_EMAIL_FEATURES", "CONSOLE", "FILE", "FileOptions", "outbox_dir"]


@dataclass(frozen=True)
class FileOptions(VendorSettings):
    outbox: str | None = None  # folder for .eml / .sms.json files; null = $CONNECTORCTL_HOME/outbox


def outbox_dir(settings: Settings) -> Path:
    configured = settings.vendor("file")
    outbox = configured.outbox if isinstance(configured, FileOptions) else None
    return Path(outbox).expanduser() if outbox else settings.home / "outbox"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConnectionFailedError(
            f"cannot write to outbox {path.parent}: {exc.strerror}", service="file", vendor_processed=False
        ) from None


def _accepted(vendor: str, message_id: str, recipients: tuple[str, ...], correlation_id: str | None) -> SendResult:
    return SendResult(
        vendor,
        message_id,
        tuple(RecipientResult(r, DeliveryStatus.ACCEPTED, message_id) for r in recipients),
        correlation_id,
    )


class _LocalEmail(EmailAdapter[VendorSettings]):
    capabilities = ALL_EMAIL_FEATURES

    def send(
        self, message: EmailMessage, *, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> SendResult:
        correlation_id = correlation_id or new_id()
        self.require(message)
        message_id = new_id()
        from_email, from_name = self.sender(message)
        mime = build_mime(message, from_email, from_name, message_id=f"<{message_id}@connectorctl>")
        call = Call(
            self.slug,
            "send_email",
            self.endpoint(message_id),
            "LOCAL",
            request_data={
                "to": list(message.to),
                "cc": list(message.cc),
                "subject": message.subject,
                "from": from_email,
            },
            idempotent=True,
            tenant_id=tenant_id,
            correlation_id=correlation_id,
        )
        self.run(call, lambda: self.deliver(message_id, mime.as_bytes()))
        return _accepted(self.slug, message_id, message.recipients, correlation_id)

    @abstractmethod
    def endpoint(self, message_id: str) -> str: ...

    def describe_action(self, message: Any) -> str:
        return f"write the MIME message to {self.endpoint('<message-id>')}"

    @abstractmethod
    def deliver(self, message_id: str, data: bytes) -> VendorResponse: ...


class FileEmailAdapter(_LocalEmail):
    def endpoint(self, message_id: str) -> str:
        return str(outbox_dir(self.context.settings) / f"{message_id}.eml")

    def deliver(self, message_id: str, data: bytes) -> VendorResponse:
        path = Path(self.endpoint(message_id))
        _write_atomic(path, data)
        return VendorResponse(None, response_data={"path": str(path)})


class ConsoleEmailAdapter(_LocalEmail):
    def endpoint(self, message_id: str) -> str:
        return "console:stderr"

    def deliver(self, message_id: str, data: bytes) -> VendorResponse:
        sys.stderr.write(data.decode("utf-8", "replace") + "\n")
        sys.stderr.flush()
        return VendorResponse(None)


class _LocalSms(SmsAdapter[VendorSettings]):
    def send(
        self, message: SmsMessage, *, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> SendResult:
        correlation_id = correlation_id or new_id()
        message_id = new_id()
        sender = message.from_number or self.config.from_number
        payload: dict[str, object] = {"id": message_id, "to": message.to, "from": sender, "body": message.body}
        call = Call(
            self.slug,
            "send_sms",
            self.endpoint(message_id),
            "LOCAL",
            request_data={"to": message.to, "from": sender, "length": len(message.body)},
            idempotent=True,
            tenant_id=tenant_id,
            correlation_id=correlation_id,
        )
        self.run(call, lambda: self.deliver(message_id, payload))
        return _accepted(self.slug, message_id, (message.to,), correlation_id)

    @abstractmethod
    def endpoint(self, message_id: str) -> str: ...

    def describe_action(self, message: Any) -> str:
        return f"write the SMS to {self.endpoint('<message-id>')}"

    @abstractmethod
    def deliver(self, message_id: str, payload: dict[str, object]) -> VendorResponse: ...


class FileSmsAdapter(_LocalSms):
    def endpoint(self, message_id: str) -> str:
        return str(outbox_dir(self.context.settings) / f"{message_id}.sms.json")

    def deliver(self, message_id: str, payload: dict[str, object]) -> VendorResponse:
        path = Path(self.endpoint(message_id))
        _write_atomic(path, json.dumps(payload, indent=2).encode())
        return VendorResponse(None, response_data={"path": str(path)})


class ConsoleSmsAdapter(_LocalSms):
    def endpoint(self, message_id: str) -> str:
        return "console:stderr"

    def deliver(self, message_id: str, payload: dict[str, object]) -> VendorResponse:
        sys.stderr.write(f"SMS to {payload['to']} from {payload['from'] or '-'}:\n{payload['body']}\n")
        sys.stderr.flush()
        return VendorResponse(None)


FILE = Vendor(
    "file",
    "write each message to the outbox folder",
    {"email": FileEmailAdapter, "sms": FileSmsAdapter},
    FileOptions,
    auth=(),
)
CONSOLE = Vendor(
    "console", "print each message to the terminal", {"email": ConsoleEmailAdapter, "sms": ConsoleSmsAdapter}, auth=()
)

"""A recording fake of :class:`~connectorctl.Connector` for your application's tests.

Hand a :class:`FakeConnector` to the code under test instead of a real one:
every email and SMS, whatever vendor or chain the code asks for, is recorded
instead of sent, and the fake offers assertions about what was sent (the idea
of Laravel's ``Notification::fake()``)::

    from connectorctl.testing import FakeConnector

    def test_invoice_is_mailed():
        with FakeConnector() as connector:
            send_invoice(connector, order)           # your code: connector.email().send(...)
            connector.assert_sent(to="ann@example.com", subject="Invoice 42")
            assert "Total: 10.00" in connector.sent_emails[0].text

Messages still pass the gateway's own checks (address syntax, phone numbers,
vendor features), so code that would be refused in production is refused
here too.  State lives in a temporary directory that is removed on
:meth:`close`; nothing touches ``$CONNECTORCTL_HOME``, the network or a keyring.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from connectorctl.adapters.base import SCHEDULING, TEMPLATE, Adapter, EmailAdapter, SmsAdapter
from connectorctl.adapters.sinks import ALL_EMAIL_FEATURES
from connectorctl.config import RetrySettings, Settings
from connectorctl.domain.messages import DeliveryStatus, EmailMessage, RecipientResult, SendResult, SmsMessage
from connectorctl.errors import ConnectorError
from connectorctl.gateway import Connector
from connectorctl.resilience.pipeline import Call, VendorResponse, new_id

__all__ = ["FakeConnector", "SentMessage"]


@dataclass(frozen=True)
class SentMessage:
    """One recorded send: the message as your code built it, and where it would have gone."""

    channel: str  # "email" or "sms"
    vendor: str  # the vendor slug your code's chain picked
    message: EmailMessage | SmsMessage
    tenant_id: str | None
    message_id: str

    @property
    def recipients(self) -> tuple[str, ...]:
        m = self.message
        return m.recipients if isinstance(m, EmailMessage) else (m.to,)

    @property
    def text(self) -> str:
        m = self.message
        return (m.text or m.html or "") if isinstance(m, EmailMessage) else m.body


class FakeConnector(Connector):
    """A Connector whose every channel records what was sent instead of sending it."""

    def __init__(self, settings: Settings | None = None, **kwargs: Any) -> None:
        self._tmp: Path | None = None
        if settings is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="connectorctl-fake-"))
            # one attempt: a failure you script with fail_next() reaches your code at once, with no backoff sleeps
            settings = Settings(
                home=self._tmp,
                database=self._tmp / "connectorctl.db",
                config_path=None,
                retry_policy=RetrySettings(max_attempts=1),
            )
        super().__init__(settings, **kwargs)
        self.sent: list[SentMessage] = []
        self._failures: deque[ConnectorError] = deque()
        self._record_lock = threading.Lock()

    # -- what the code under test sees ---------------------------------------------
    def adapter(self, slug: str, channel: str) -> Adapter[Any]:
        """The vendor's adapter (checked and configured as usual), with its sending replaced by recording."""
        adapter = super().adapter(slug, channel)
        cls = {"email": _RecordingEmail, "sms": _RecordingSms}.get(channel)
        if cls is None or isinstance(adapter, cls):
            return adapter
        with self._lock:
            current = self._adapters[(slug, channel)]
            if not isinstance(current, cls):
                recorder = cls(current.context, current.vendor)
                recorder.fake = self
                self._adapters[(slug, channel)] = recorder
            return self._adapters[(slug, channel)]

    def fail_next(self, error: ConnectorError) -> None:
        """Make the next send fail with ``error`` (e.g. ``ConnectionFailedError("down")``).

        Lets a test walk the application's failure path.
        """
        self._failures.append(error)

    # -- assertions ------------------------------------------------------------------
    @property
    def sent_emails(self) -> list[EmailMessage]:
        return [s.message for s in self.sent if isinstance(s.message, EmailMessage)]

    @property
    def sent_sms(self) -> list[SmsMessage]:
        return [s.message for s in self.sent if isinstance(s.message, SmsMessage)]

    def sent_matching(
        self,
        *,
        to: str | None = None,
        subject: str | None = None,
        contains: str | None = None,
        channel: str | None = None,
        vendor: str | None = None,
        tenant_id: str | None = None,
        where: Callable[[SentMessage], bool] | None = None,
    ) -> list[SentMessage]:
        """Recorded sends that match every given condition (``contains`` searches the body)."""

        def matches(s: SentMessage) -> bool:
            return (
                (to is None or to in s.recipients)
                and (subject is None or getattr(s.message, "subject", None) == subject)
                and (contains is None or contains in s.text)
                and (channel is None or s.channel == channel)
                and (vendor is None or s.vendor == vendor)
                and (tenant_id is None or s.tenant_id == tenant_id)
                and (where is None or where(s))
            )

        return [s for s in self.sent if matches(s)]

    def assert_sent(self, *, times: int | None = None, **conditions: Any) -> list[SentMessage]:
        """Fail unless something matching ``conditions`` was sent (exactly ``times`` times, if given).

        Returns the matches, for further checks.
        """
        found = self.sent_matching(**conditions)
        if (times is None and not found) or (times is not None and len(found) != times):
            wanted = ", ".join(f"{k}={v!r}" for k, v in conditions.items()) or "anything"
            count = "at least once" if times is None else f"{times} time(s)"
            raise AssertionError(
                f"expected a send matching {wanted} {count}, found {len(found)}; sent:\n{_listing(self.sent)}"
            )
        return found

    def assert_not_sent(self, **conditions: Any) -> None:
        found = self.sent_matching(**conditions)
        if found:
            raise AssertionError(f"expected no send matching {conditions!r}, found {len(found)}:\n{_listing(found)}")

    def assert_nothing_sent(self) -> None:
        if self.sent:
            raise AssertionError(f"expected nothing sent, found {len(self.sent)}:\n{_listing(self.sent)}")

    def reset(self) -> None:
        with self._record_lock:
            self.sent.clear()
            self._failures.clear()

    def close(self) -> None:
        super().close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> "FakeConnector":
        return self

    # -- used by the recording adapters ------------------------------------------------
    def _record(
        self,
        adapter: Adapter[Any],
        message: EmailMessage | SmsMessage,
        tenant_id: str | None,
        correlation_id: str | None,
    ) -> SendResult:
        correlation_id = correlation_id or new_id()
        message_id = new_id()
        recipients = message.recipients if isinstance(message, EmailMessage) else (message.to,)

        def record() -> VendorResponse:
            with self._record_lock:
                if self._failures:
                    raise self._failures.popleft()
                self.sent.append(SentMessage(adapter.channel, adapter.slug, message, tenant_id, message_id))
            return VendorResponse(None)

        call = Call(
            adapter.slug,
            f"send_{adapter.channel}",
            "fake:recorded",
            "FAKE",
            request_data={"to": list(recipients)},
            idempotent=True,
            tenant_id=tenant_id,
            correlation_id=correlation_id,
        )
        adapter.run(call, record)
        return SendResult(
            adapter.slug,
            message_id,
            tuple(RecipientResult(r, DeliveryStatus.ACCEPTED, message_id) for r in recipients),
            correlation_id,
        )


class _RecordingEmail(EmailAdapter[Any]):
    capabilities = ALL_EMAIL_FEATURES | {TEMPLATE, SCHEDULING}
    fake: FakeConnector

    def send(
        self, message: EmailMessage, *, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> SendResult:
        return self.fake._record(self, message, tenant_id, correlation_id)

    def describe_action(self, message: EmailMessage | SmsMessage) -> str:
        return "record the message (connectorctl.testing)"


class _RecordingSms(SmsAdapter[Any]):
    fake: FakeConnector

    def send(
        self, message: SmsMessage, *, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> SendResult:
        return self.fake._record(self, message, tenant_id, correlation_id)

    def describe_action(self, message: EmailMessage | SmsMessage) -> str:
        return "record the message (connectorctl.testing)"


def _listing(sent: Iterable[SentMessage]) -> str:
    lines = [
        f"  {s.channel} via {s.vendor} to {', '.join(s.recipients)}"
        + (f": {s.message.subject!r}" if isinstance(s.message, EmailMessage) else "")
        for s in sent
    ]
    return "\n".join(lines) or "  (nothing)"

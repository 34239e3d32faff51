"""``connectorctl.testing``: application code under test sends through a FakeConnector that records."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectorctl import Connector, EmailMessage, SmsMessage
from connectorctl.errors import ConnectionFailedError, ConnectorctlError
from connectorctl.testing import FakeConnector


def mail_invoice(connector: Connector, to: str, number: int) -> str:
    """Stands in for application code: it only knows the public Connector API."""
    result = connector.email().send(EmailMessage(to=(to,), subject=f"Invoice {number}", text=f"Total: {number}.00 EUR"))
    connector.sms().send(SmsMessage(to="+14155552671", body=f"Invoice {number} is on its way"))
    return result.message_id or ""


def test_records_every_channel_and_asserts_on_it(home: Path) -> None:
    with FakeConnector() as connector:
        message_id = mail_invoice(connector, "ann@example.com", 42)
        match = connector.assert_sent(to="ann@example.com", subject="Invoice 42")
        assert match[0].message_id == message_id and match[0].vendor == "file"
        assert connector.sent_emails[0].text == "Total: 42.00 EUR"
        assert [m.to for m in connector.sent_sms] == ["+14155552671"]
        connector.assert_sent(channel="sms", contains="on its way", times=1)
        connector.assert_not_sent(to="bob@example.com")
        with pytest.raises(AssertionError, match=r"expected a send matching to='bob@example.com' at least once, found 0; sent:\n  email via file to ann@example.com: 'Invoice 42'"):
            connector.assert_sent(to="bob@example.com")
        with pytest.raises(AssertionError, match="expected nothing sent, found 2"):
            connector.assert_nothing_sent()
        connector.reset()
        connector.assert_nothing_sent()
    assert not home.exists()  # the real installation was never touched


def test_any_vendor_or_chain_the_code_names_is_recorded_not_called(home: Path) -> None:
    with FakeConnector() as connector:
        connector.email(["sendgrid", "mailgun"]).send(EmailMessage(to=("a@example.com",), subject="Hi", text="x", cc=("c@example.com",)))
        (sent,) = connector.assert_sent(to="c@example.com", vendor="sendgrid")
        assert sent.recipients == ("a@example.com", "c@example.com")
        connector.flush()
        rows = connector.db.run(lambda c: c.execute("SELECT service_name, status FROM integration_logs").fetchall())
        assert rows == [("sendgrid", "success")]  # it went through the real pipeline and audit log


def test_bad_input_is_refused_as_in_production_and_not_recorded() -> None:
    with FakeConnector() as connector:
        with pytest.raises(ConnectorctlError) as refused:
            connector.email().send(EmailMessage(to=("not-an-address",), subject="Hi", text="x"))
        assert refused.value.exit_code == 2
        with pytest.raises(ConnectorctlError):
            connector.sms().send(SmsMessage(to="12", body="x"))
        connector.assert_nothing_sent()


def test_fail_next_lets_the_code_under_test_meet_a_vendor_failure() -> None:
    with FakeConnector() as connector:
        connector.fail_next(ConnectionFailedError("vendor down", service="file"))
        with pytest.raises(ConnectionFailedError, match="vendor down"):
            mail_invoice(connector, "ann@example.com", 1)
        connector.assert_nothing_sent()
        mail_invoice(connector, "ann@example.com", 2)  # the next one goes through
        connector.assert_sent(subject="Invoice 2")


def test_its_state_directory_is_removed_on_close() -> None:
    connector = FakeConnector()
    mail_invoice(connector, "ann@example.com", 1)
    home = connector.settings.home
    assert home.exists()
    connector.close()
    assert not home.exists()

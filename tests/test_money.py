"""Money, payment requests and the card-number guard."""

from __future__ import annotations

import pytest

from connectorctl.domain.money import Money
from connectorctl.domain.payments import PaymentRequest, PaymentStatus, refuse_card_numbers
from connectorctl.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "amount", "currency", "shown"),
    [
        ("19.99 EUR", 1999, "EUR", "19.99 EUR"),
        ("EUR 19.99", 1999, "EUR", "19.99 EUR"),
        ("19.9 eur", 1990, "EUR", "19.90 EUR"),
        ("1000 JPY", 1000, "JPY", "1000 JPY"),
        ("1.5 KWD", 1500, "KWD", "1.500 KWD"),
        ("0.001 BHD", 1, "BHD", "0.001 BHD"),
        ("12 USD", 1200, "USD", "12.00 USD"),
    ],
)
def test_parse_uses_the_currency_exponent(text: str, amount: int, currency: str, shown: str) -> None:
    money = Money.parse(text)
    assert (money.amount, money.currency, str(money)) == (amount, currency, shown)


@pytest.mark.parametrize("text", ["19.999 EUR", "10.5 JPY", "1.0001 KWD", "19.99", "EUR", "19,99 EUR", "-5 EUR",
                                  "5 EUR USD", "5 XYZ", "1e3 EUR", "nan EUR", "99999999999999999 EUR"])
def test_unreadable_or_inexact_amounts_are_refused(text: str) -> None:
    with pytest.raises(InvalidInputError):
        Money.parse(text)


def test_default_currency_and_exact_minor_units() -> None:
    assert Money.parse("0.10", default_currency="usd") == Money(10, "USD")
    assert Money.of("0.1", "EUR").amount + Money.of("0.2", "EUR").amount == Money.of("0.3", "EUR").amount
    with pytest.raises(InvalidInputError):
        Money(19.99, "EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["4242 4242 4242 4242", "card 4242-4242-4242-4242 exp 12/30", "5555555555554444",
                                  "378282246310005"])
def test_card_numbers_in_free_text_are_refused(text: str) -> None:
    with pytest.raises(InvalidInputError, match="card number"):
        refuse_card_numbers("description", text)


@pytest.mark.parametrize("text", ["order 1234567890123", "invoice 2026-000123", "4242 4242 4242 4241", "+14155550123"])
def test_ordinary_numbers_pass(text: str) -> None:
    refuse_card_numbers("description", text)


def test_request_checks_metadata_and_reference() -> None:
    with pytest.raises(InvalidInputError, match="card number"):
        PaymentRequest(Money(100, "EUR"), "order:1", metadata={"note": "4111 1111 1111 1111"})
    with pytest.raises(InvalidInputError, match="reference"):
        PaymentRequest(Money(100, "EUR"), "")
    with pytest.raises(InvalidInputError, match="above zero"):
        PaymentRequest(Money(0, "EUR"), "order:1")
    request = PaymentRequest(Money(100, "EUR"), "order:1", metadata={"order": "1"})
    assert request.params()["metadata"] == {"order": "1"}


def test_status_ranks_never_go_backwards_from_refunded() -> None:
    assert PaymentStatus.REFUNDED.rank > PaymentStatus.PARTIALLY_REFUNDED.rank > PaymentStatus.CAPTURED.rank
    assert PaymentStatus.CAPTURED.rank > PaymentStatus.AUTHORIZED.rank > PaymentStatus.REQUIRES_ACTION.rank

"""Money as integer minor units plus an ISO 4217 currency: never a float.

The number of decimals is the currency's ISO 4217 exponent: JPY has none, so
``1000 JPY`` is 1000 minor units; KWD has three, so ``1.5 KWD`` is 1500.  An
amount with more decimals than its currency allows is refused rather than
rounded: rounding money silently is how ledgers drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from connectorctl.errors import InvalidInputError

ZERO_DECIMAL = frozenset("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD IQD JOD KWD LYD OMR TND".split())
FOUR_DECIMAL = frozenset("CLF UYW".split())
# Active ISO 4217 codes with two decimals (the rest of the list is in the sets above).
TWO_DECIMAL = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE
    CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG
    HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE
    SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW
    ZWG""".split()
)
MAX_MINOR_UNITS = 10**15  # beyond any real payment; keeps every vendor's integer and decimal fields exact
_AMOUNT = re.compile(r"^\s*(?:([A-Za-z]{3})\s+)?([0-9]+(?:\.[0-9]+)?)\s*(?:\s([A-Za-z]{3}))?\s*$")


def exponent(currency: str) -> int:
    """Decimals of an ISO 4217 currency; an unknown code is invalid input."""
    code = currency.upper()
    if code in TWO_DECIMAL:
        return 2
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    if code in FOUR_DECIMAL:
        return 4
    raise InvalidInputError(f"unknown currency {currency!r}: expected an ISO 4217 code such as EUR, USD or JPY")


@dataclass(frozen=True, order=True)
class Money:
    """``amount`` in the currency's minor units (cents, yen, fils); ``currency`` upper-case ISO 4217."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise InvalidInputError(f"a money amount is an integer of minor units, got {self.amount!r}")
        if not 0 <= self.amount <= MAX_MINOR_UNITS:
            raise InvalidInputError(f"amount {self.amount} is out of range (0 to {MAX_MINOR_UNITS} minor units)")
        object.__setattr__(self, "currency", self.currency.upper())
        exponent(self.currency)

    @classmethod
    def of(cls, value: str | int | Decimal, currency: str) -> "Money":
        """From major units (``Money.of("19.99", "EUR")``); more decimals than the currency has is an error."""
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise InvalidInputError(f"not an amount: {value!r}") from None
        if not number.is_finite() or number < 0:
            raise InvalidInputError(f"not a positive amount: {value!r}")
        places = exponent(currency)
        minor = number.scaleb(places)
        if minor != minor.to_integral_value():
            raise InvalidInputError(
                f"{currency.upper()} has {places} decimal{'s' if places != 1 else ''}: {value} cannot be charged "
                "exactly"
            )
        if minor > MAX_MINOR_UNITS:
            raise InvalidInputError(f"amount {value} {currency.upper()} is out of range")
        return cls(int(minor), currency)

    @classmethod
    def parse(cls, text: str, default_currency: str | None = None) -> "Money":
        """``"19.99 EUR"``, ``"EUR 19.99"`` or, with a default currency, ``"19.99"``."""
        match = _AMOUNT.match(text)
        if not match or (match.group(1) and match.group(3)):
            raise InvalidInputError(f"cannot read the amount {text!r}: write it like '19.99 EUR'")
        currency = match.group(1) or match.group(3) or default_currency
        if not currency:
            raise InvalidInputError(f"the amount {text!r} has no currency: write it like '19.99 EUR'")
        return cls.of(match.group(2), currency)

    @property
    def exponent(self) -> int:
        return exponent(self.currency)

    def decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-self.exponent)

    def major(self) -> str:
        """The amount in major units with exactly the currency's decimals (``"19.99"``, ``"1000"``, ``"1.500"``)."""
        places = self.exponent
        if places == 0:
            return str(self.amount)
        whole, frac = divmod(self.amount, 10**places)
        return f"{whole}.{frac:0{places}d}"

    def with_amount(self, amount: int) -> "Money":
        return Money(amount, self.currency)

    def __str__(self) -> str:
        return f"{self.major()} {self.currency}"

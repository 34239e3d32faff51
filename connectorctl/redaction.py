"""Masking of secrets before anything is stored, printed or raised.

Two nets: values under a sensitive key (headers, form fields, JSON fields;
case-insensitive, configurable) and, everywhere, any literal secret the
pipeline knows it is using plus anything shaped like a payment card number.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

MASK = "***"
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _mask_cards(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        return f"{MASK}{digits[-4:]}" if _luhn_ok(digits) else match.group()

    return _CARD.sub(repl, text)


class Redactor:
    def __init__(self, fields: Iterable[str], secrets: Iterable[str] = ()) -> None:
        self.fields = frozenset(f.lower() for f in fields)
        self.secrets = tuple(sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True))

    def with_secrets(self, secrets: Iterable[str]) -> "Redactor":
        extra = tuple(s for s in secrets if s)
        if not extra:
            return self
        return Redactor(self.fields, self.secrets + extra)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        if any(ch.isdigit() for ch in value):
            value = _mask_cards(value)
        return value

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                k: (MASK if isinstance(k, str) and k.lower() in self.fields and v not in (None, "") else self.data(v))
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        if isinstance(value, bytes):
            return f"<{len(value)} bytes>"
        return value

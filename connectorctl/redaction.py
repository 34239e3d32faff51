"""Masking of secrets before anything is stored, printed or raised.

Two nets: values under a sensitive key (headers, form fields, JSON fields;
case-insensitive, configurable) and, everywhere, any secret the pipeline knows
it is using, in every form in which we send it (a vendor may echo any of them),
plus anything shaped like a payment card number.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from typing import Any, Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_DIGIT = re.compile(r"\d")  # what ``_CARD`` needs at least one of
_PLAIN = frozenset({int, float, bool, type(None)})  # values with nothing in them to mask


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


@functools.lru_cache(maxsize=256)
def encoded_forms(secret: str) -> frozenset[str]:
    """``secret`` as we may have sent it: raw, percent-encoded (URL, form body), JSON-escaped, and
    inside the base64 of HTTP Basic ``user:secret``.

    Base64 encodes 3-byte groups, so the characters for the groups lying wholly inside the secret
    depend only on the secret and on its offset modulo 3, never on the user name before it: those
    three core strings are found (and masked) in any ``base64(anything + secret + anything)``.
    """
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        quote(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }
    raw = secret.encode("utf-8")
    for offset in range(3):
        first = 0 if offset == 0 else 1  # the first group wholly inside the secret
        groups = (offset + len(raw)) // 3 - first
        if groups >= 1:
            encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
            forms.add(encoded[4 * first : 4 * (first + groups)])
    return frozenset(f for f in forms if len(f) >= 4)


class Redactor:
    def __init__(self, fields: Iterable[str], secrets: Iterable[str] = ()) -> None:
        self.fields = frozenset(f.lower() for f in fields)
        forms = {form for s in secrets if s and len(s) >= 4 for form in encoded_forms(s)}
        self.secrets = tuple(sorted(forms, key=len, reverse=True))
        self._combined: dict[tuple[str, ...], Redactor] = {}

    def with_secrets(self, secrets: Iterable[str]) -> "Redactor":
        """This redactor plus ``secrets``; the same credentials come with every call of a vendor,
        so the combined redactor is remembered rather than rebuilt and re-sorted per call."""
        key = tuple(secrets)
        combined = self._combined.get(key)
        if combined is not None:
            return combined
        extra = Redactor((), key).secrets
        if not extra:
            return self
        combined = Redactor(())
        combined.fields = self.fields
        combined.secrets = tuple(sorted(set(self.secrets + extra), key=len, reverse=True))
        if len(self._combined) >= 256:  # a rotation-heavy process must not grow this without bound
            self._combined.clear()
        self._combined[key] = combined
        return combined

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        if _DIGIT.search(value):  # a regex scan, not a generator per character: bodies can be long
            value = _mask_cards(value)
        return value

    def data(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            fields, out = self.fields, {}
            for k, v in value.items():  # a loop, not a comprehension, and no call for a plain number: per call
                if isinstance(k, str) and k.lower() in fields and v not in (None, ""):
                    out[k] = MASK
                else:
                    out[k] = v if type(v) in _PLAIN else self.data(v)
            return out
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        if isinstance(value, bytes):
            return f"<{len(value)} bytes>"
        return value

"""Checks on caller input, made before any vendor is contacted."""

from __future__ import annotations

import functools
import os
from typing import BinaryIO

from connectorctl.errors import InvalidInputError

MIB = 1024 * 1024


def read_limited(source: str | os.PathLike[str] | BinaryIO, what: str, limit: int) -> bytes:
    """At most ``limit`` bytes of a file (or an open binary stream such as stdin).

    A path can name something that never ends (``/dev/zero``, a FIFO, ``/dev/urandom``):
    without a bound the read fills memory instead of failing.
    """
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as stream:
                data = stream.read(limit + 1)
        else:
            data = source.read(limit + 1)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} ({exc.strerror or exc.__class__.__name__})") from None
    if len(data) > limit:
        raise InvalidInputError(f"{what} is larger than {limit / MIB:g} MiB")
    return data


@functools.lru_cache(maxsize=4096)
def normalize_email(address: str) -> str:
    """Offline syntax check (no DNS); returns the normalised address.

    Cached: a bulk send checks each address when planning and again at the
    gateway; only successes are cached (an exception is never memoised).
    """
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInputError(f"invalid email address {address!r}: {exc}") from None


def is_valid_email(address: str) -> bool:
    try:
        normalize_email(address)
    except InvalidInputError:
        return False
    return True


def normalize_phone(number: str, default_region: str | None = None) -> str:
    """Parse and validate with phonenumbers; returns E.164 (``+14155550123``)."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(number, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInputError(f"invalid phone number {number!r}: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInputError(f"invalid phone number {number!r}: not a valid number for its region")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def describe_phone(number: str, default_region: str | None = None) -> dict[str, object]:
    """Offline phone facts in the shape of the SMS interface's ``validate_phone_number``."""
    import phonenumbers
    from phonenumbers import PhoneNumberType, geocoder, number_type

    try:
        parsed = phonenumbers.parse(number, default_region)
    except phonenumbers.NumberParseException as exc:
        return {"phone_number": number, "valid": False, "errors": [str(exc)]}
    valid = phonenumbers.is_valid_number(parsed)
    kind = number_type(parsed)
    kinds = {v: k.lower() for k, v in vars(PhoneNumberType).items() if isinstance(v, int)}
    return {
        "phone_number": phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) if valid else number,
        "valid": valid,
        "country_code": phonenumbers.region_code_for_number(parsed),
        "calling_country_code": parsed.country_code,
        "line_type": kinds.get(kind, "unknown"),
        "location": geocoder.description_for_number(parsed, "en") or None,
        "errors": [] if valid else ["INVALID"],
    }


MAX_REFERENCE_LENGTH = 200


def check_reference(reference: str) -> str:
    """A caller's business key (``order:123:charge``).

    The idempotency key of a money or label operation derives from it.
    """
    if not reference or not reference.strip():
        raise InvalidInputError("a reference is required (your business key, e.g. order:123:charge)")
    if len(reference) > MAX_REFERENCE_LENGTH or any(ord(ch) < 32 or ord(ch) == 127 for ch in reference):
        raise InvalidInputError(f"a reference is at most {MAX_REFERENCE_LENGTH} printable characters")
    return reference

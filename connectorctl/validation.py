"""Checks on caller input, made before any vendor is contacted."""

from __future__ import annotations

import functools

from connectorctl.errors import InvalidInputError


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

"""``shipment.yaml`` -> :class:`Shipment`, with one clear error naming the file and the key.

The documented example is ``docs/shipment.yaml``.  Postal codes and phone
numbers must be quoted strings: YAML reads ``02134`` as the octal number 1116
and ``+14155550100`` as an integer, and a label printed for either would
go to the wrong place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from connectorctl.domain.shipping import ADDRESS_FIELDS, Address, Parcel, Shipment
from connectorctl.errors import InvalidInputError

PARCEL_FIELDS = ("length", "width", "height", "distance_unit", "weight", "mass_unit")
MAX_FILE_BYTES = 1024 * 1024


def load_shipment(path: Path) -> Shipment:
    import yaml

    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInputError(
            f"{path}: cannot read the shipment file ({exc.strerror or type(exc).__name__})"
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise InvalidInputError(f"{path}: a shipment file is at most {MAX_FILE_BYTES} bytes")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InvalidInputError(
            f"{path}{f':{mark.line + 1}' if mark else ''}: malformed YAML: {getattr(exc, 'problem', None) or exc}"
        ) from None
    try:
        return shipment_from(data)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}: {exc.message}") from None


def shipment_from(data: Any) -> Shipment:
    if not isinstance(data, Mapping):
        raise InvalidInputError("expected a mapping with from, to and parcels (see docs/shipment.yaml)")
    unknown = set(data) - {"from", "to", "parcels", "reference"}
    if unknown:
        raise InvalidInputError(f"unknown key {sorted(map(str, unknown))[0]!r} (known: from, to, parcels, reference)")
    sender, recipient = address_from(data.get("from"), "from"), address_from(data.get("to"), "to")
    parcels = data.get("parcels")
    if not isinstance(parcels, list) or not parcels:
        raise InvalidInputError("parcels: expected a list with at least one parcel")
    reference = data.get("reference")
    if reference is not None and not isinstance(reference, (str, int)):
        raise InvalidInputError("reference: expected a string")
    return Shipment(
        sender,
        recipient,
        tuple(parcel_from(p, f"parcels[{i}]") for i, p in enumerate(parcels)),
        str(reference) if reference is not None else None,
    )


def address_from(data: Any, key: str) -> Address:
    fields = _fields(data, key, ADDRESS_FIELDS)
    for name in ("zip", "phone"):
        if name in fields and not isinstance(fields[name], str):
            raise InvalidInputError(
                f'{key}.{name}: quote it ("{fields[name]}"): YAML turns unquoted digits into a number'
            )
    for name, value in fields.items():
        if not isinstance(value, str) or any(ord(ch) < 32 for ch in value):
            raise InvalidInputError(f"{key}.{name}: expected one line of text")
    try:
        return Address(**fields)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{key}: {exc.message}") from None


def parcel_from(data: Any, key: str) -> Parcel:
    fields = _fields(data, key, PARCEL_FIELDS)
    missing = [f for f in PARCEL_FIELDS if f not in fields]
    if missing:
        raise InvalidInputError(f"{key}: missing {', '.join(missing)} (weights and lengths need their units)")
    try:
        return Parcel.of(**fields)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{key}: {exc.message}") from None


def _fields(data: Any, key: str, known: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"{key}: expected a mapping")
    unknown = [str(k) for k in data if k not in known]
    if unknown:
        raise InvalidInputError(f"{key}.{unknown[0]}: unknown key (known: {', '.join(known)})")
    return {str(k): v for k, v in data.items() if v is not None}

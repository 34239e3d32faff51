"""Reading a recipients CSV and rendering each row's message.

Email files need an ``email`` column; SMS files a ``phone`` (or ``number`` /
``to``) column.  Every other column is a substitution: ``{{name}}`` in the
subject or body becomes that row's value.  Placeholders are checked against
the header before anything is sent (a typo would fail every row).  A row that
cannot be used (bad address, empty cell) becomes a failed result for that row
only; only a file that cannot be read at all is an error.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from connectorctl.domain.messages import PLACEHOLDER, fill
from connectorctl.errors import InvalidInputError

ADDRESS_COLUMNS = {"email": ("email",), "sms": ("phone", "number", "to")}


@dataclass(frozen=True)
class Row:
    number: int  # 1-based data row (the header is row 0)
    address: str
    fields: Mapping[str, str] = field(default_factory=dict)


def read_file(path: Path) -> bytes:
    from connectorctl.validation import MIB, read_limited

    return read_limited(path, f"--to-file {path}", 256 * MIB)  # millions of rows; /dev/zero is refused


def parse_rows(content: bytes, channel: str, source: str) -> list[Row]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{source}: not UTF-8 text") from None
    # strict: an unterminated or stray quote is an error, not a value that swallows the following lines
    reader = csv.DictReader(io.StringIO(text), strict=True)
    try:
        headers = [h.strip().lower() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise InvalidInputError(f"{source}: malformed CSV after line {reader.line_num}: {exc}") from None
    duplicates = sorted({h for h in headers if h and headers.count(h) > 1})
    if duplicates:  # DictReader would silently keep only the last column of each name
        raise InvalidInputError(f"{source}: column {', '.join(duplicates)} appears more than once")
    column = next((c for c in ADDRESS_COLUMNS[channel] if c in headers), None)
    if column is None:
        other = next((d for d in (";", "\t", "|") if len(headers) == 1 and d in headers[0]), None)
        raise InvalidInputError(
            f"{source}: needs a column named {' or '.join(ADDRESS_COLUMNS[channel])} (found: "
            f"{', '.join(headers) or 'no header'})",
            hint=f"the file must be comma-separated, this one looks {other!r}-separated" if other else None,
        )
    rows = []
    try:
        for n, raw in enumerate(reader, start=1):
            if raw.get(None):  # an unquoted comma shifted the cells: sending would use the wrong values
                raise InvalidInputError(
                    f"{source}: line {reader.line_num} has {len(headers) + len(raw[None])} cells but the header has "
                    f"{len(headers)}",
                    hint="quote values that contain a comma",
                )
            values = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
            if not any(values.values()):
                continue  # blank line
            rows.append(Row(n, values.get(column, ""), values))
    except csv.Error as exc:
        raise InvalidInputError(f"{source}: malformed CSV after line {reader.line_num}: {exc}") from None
    if not rows:
        raise InvalidInputError(f"{source}: no recipients")
    return rows


def check_placeholders(templates: Iterable[str | None], rows: Sequence[Row], source: str) -> None:
    """Refuse a ``{{placeholder}}`` that names no column, naming the columns there are."""
    import difflib

    known = list(rows[0].fields) if rows else []
    unknown = sorted({m.group(1).lower() for t in templates if t for m in PLACEHOLDER.finditer(t)} - set(known))
    if not unknown:
        return
    guesses = [f"{{{{{g[0]}}}}}" for name in unknown if (g := difflib.get_close_matches(name, known, n=1))]
    raise InvalidInputError(
        f"{source}: no column for placeholder {', '.join(f'{{{{{n}}}}}' for n in unknown)} (columns: "
        f"{', '.join(known)})",
        hint=f"did you mean {' / '.join(guesses)}?" if guesses else None,
    )


def render(template: str | None, fields: Mapping[str, str]) -> str | None:
    """``{{column}}`` -> the row's value (:func:`check_placeholders` has vetted the names)."""
    return fill(template, fields)

"""ULIDs cheap enough for the per-call hot path.

python-ulid reads ``os.urandom`` and validates on every id, and the stdlib's
base32 encoder is a Python loop; right after network I/O (cold caches) either
costs a measurable share of a logged call.  This produces the same 128-bit
layout (48-bit millisecond timestamp + 80 random bits, Crockford base32) from
the ``random`` module, which CPython re-seeds after ``fork``, and encodes ten
bits per table lookup.  A call takes two ids within the same millisecond (its
correlation id and its log row's id), so the timestamp's ten characters are
kept for the next id of that millisecond.  These are identifiers, not secrets;
the tests check that a ULID library parses them back to the right time.
"""

from __future__ import annotations

import random
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits -> 2 digits
_random_bits = random.getrandbits
_last_ms: tuple[int, str] = (-1, "")  # replaced whole, never mutated: safe across threads


def new_ulid(timestamp: float | None = None) -> str:
    """A ULID for ``timestamp`` (epoch seconds; default now)."""
    global _last_ms
    ms = int((time.time() if timestamp is None else timestamp) * 1000)
    p = _PAIRS
    last = _last_ms
    if last[0] != ms:  # 48 bits (+2 zero bits on top) -> 10 digits
        last = _last_ms = (
            ms,
            f"{p[ms >> 40]}{p[(ms >> 30) & 1023]}{p[(ms >> 20) & 1023]}{p[(ms >> 10) & 1023]}{p[ms & 1023]}",
        )
    r = _random_bits(80)  # 80 bits -> 16 digits, unrolled: a comprehension costs a frame per id
    return (
        f"{last[1]}{p[r >> 70]}{p[(r >> 60) & 1023]}{p[(r >> 50) & 1023]}{p[(r >> 40) & 1023]}"
        f"{p[(r >> 30) & 1023]}{p[(r >> 20) & 1023]}{p[(r >> 10) & 1023]}{p[r & 1023]}"
    )

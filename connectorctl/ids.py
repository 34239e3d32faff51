"""ULIDs cheap enough for the per-call hot path.

python-ulid reads ``os.urandom`` and validates on every id, and the stdlib's
base32 encoder is a Python loop; right after network I/O (cold caches) either
cost ~15-20 µs per call in the pipeline benchmark.  This produces the same
128-bit layout (48-bit millisecond timestamp + 80 random bits, Crockford
base32) from the ``random`` module, which CPython re-seeds after ``fork``, and
encodes ten bits per table lookup.  These are identifiers, not secrets; the
tests check that a ULID library parses them back to the right time.
"""

from __future__ import annotations

import random
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # 10 bits -> 2 digits
_SHIFTS = tuple(range(120, -1, -10))  # 13 pairs = 26 digits = 130 bits (the top 2 are zero)
_random_bits = random.getrandbits


def new_ulid(timestamp: float | None = None) -> str:
    """A ULID for ``timestamp`` (epoch seconds; default now)."""
    ms = int((time.time() if timestamp is None else timestamp) * 1000)
    value = (ms << 80) | _random_bits(80)
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in _SHIFTS])

"""Our hot-path ULIDs are real ULIDs: any ULID library parses them back to the right instant."""

from __future__ import annotations

import time

from ulid import ULID

from connectorctl.ids import new_ulid


def test_ids_parse_as_ulids_with_the_right_timestamp_and_are_unique() -> None:
    ids = [new_ulid() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:200]:
        parsed = ULID.from_str(value)
        assert str(parsed) == value and abs(parsed.timestamp - time.time()) < 5
    fixed = 1_800_000_000.123
    assert abs(ULID.from_str(new_ulid(fixed)).timestamp - fixed) < 0.001
    assert new_ulid(fixed)[:10] == new_ulid(fixed)[:10] and new_ulid(fixed) < new_ulid(fixed + 1)


def test_ids_of_alternating_milliseconds_each_carry_their_own_time() -> None:
    """The timestamp digits kept for the next id of the same millisecond never leak into another one."""
    times = [1_800_000_000.123, 1_800_000_000.124, 1_800_000_000.123, 0.001, 281_474_976_710.655, time.time()]
    for t in times * 3:
        assert ULID.from_str(new_ulid(t)).milliseconds == int(t * 1000)

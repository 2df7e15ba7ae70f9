"""How the cache file stores times: UTC epoch integers, never floats or text.

The box's own state (holds, redemptions, events, print jobs, stored answers) keeps
microseconds, exactly (``to_us``/``from_us``: an event's time round-trips to the microsecond).
HQ's data (code issue and expiry times, as the snapshot carries them) keeps seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(at: datetime) -> int:
    """Aware datetime to UTC epoch microseconds, exactly (no float rounding)."""
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def from_epoch_s(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def to_epoch_s(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())

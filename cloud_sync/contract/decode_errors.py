"""The typed errors of every decoder of the wire contract: events and the link's messages.

The event envelope (``event_envelope.py``) and the link's messages (``message_codec.py``) run
the same checks in the same order, so they refuse with the same classes: one tree, one stable
``reason`` per fault (what HQ records beside a quarantined payload, what a box logs of a refused
ack) and the ``field`` concerned, if one is. A batch reports an event that fails as a
``BadEventError`` carrying the event's index, with the event's own error as its ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar


class DecodeError(ValueError):
    """A payload that is not a readable event or message of the link.

    DecodeError
    ├── OversizeError           more bytes than the message's bound (``limit``)
    ├── MalformedError          not UTF-8 JSON, not one object, a key twice, too deep
    ├── UnknownVersionError     a schema_version this end does not read (``version``)
    ├── UnknownFieldError       a key the version does not define
    ├── MissingFieldError       a field the version requires is absent
    ├── WrongTypeError          a field of the wrong JSON type (``expected``)
    ├── BadValueError           the right type, an impossible value
    └── BadEventError           an event of a batch is no valid envelope of it (``index``;
                                the envelope's own error is ``__cause__``)
    """

    reason: ClassVar[str] = "undecodable"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class OversizeError(DecodeError):
    reason = "oversize"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes is over the bound of {limit}")
        self.size = size
        self.limit = limit


class MalformedError(DecodeError):
    reason = "malformed"


class UnknownVersionError(DecodeError):
    reason = "unknown_version"

    def __init__(self, version: int, readable: Iterable[int]) -> None:
        known = ", ".join(map(str, sorted(readable)))
        super().__init__(
            f"schema_version {version} is not one this end reads ({known})",
            field="schema_version",
        )
        self.version = version


class UnknownFieldError(DecodeError):
    reason = "unknown_field"


class MissingFieldError(DecodeError):
    reason = "missing_field"


class WrongTypeError(DecodeError):
    reason = "wrong_type"

    def __init__(self, name: str, expected: str) -> None:
        super().__init__(f"{name} must be {expected}", field=name)
        self.expected = expected


class BadValueError(DecodeError):
    reason = "bad_value"


class BadEventError(DecodeError):
    reason = "bad_event"

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(f"events[{index}]: {message}", field="events")
        self.index = index

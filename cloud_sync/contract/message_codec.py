"""What every message of the sync link shares: its typed errors and its strict field check.

The link's messages (``batch``, ``ack``, ``resend``, ``state``, ``health``: see ``topics.py``
for where each travels) are flat JSON objects, each with its own ``schema_version`` and a
closed table of fields. Decoding one runs the same checks in the same order as the event
envelope's (``event_envelope.py``), and the first failure is reported:

    0. no more bytes than the message's bound, before anything is parsed ..... OversizeError
    1. UTF-8 JSON text holding one object, no key twice ........... MalformedMessageError
    2. ``schema_version`` present (these messages have no unversioned past)  MissingFieldError
       an integer ...................................................... WrongTypeError
       that this end reads ......................................... UnknownVersionError
    3. no key the version does not define .......................... UnknownFieldError
    4. each field, in the table's order: present ................... MissingFieldError
       and of its JSON type (a bool is not an int) .................... WrongTypeError
    5. then each message's own rules on the values ..................... BadValueError
       (a batch: each event a valid envelope of its store and box ...... BadEventError)

Every error has a stable ``reason`` (what HQ records beside a quarantined message, and what a
box logs of a refused ack) and the ``field`` concerned, if one is. HQ is upgraded before the
boxes and a box before HQ sends it anything new, so an unknown version is refused, never
guessed at.

The tree mirrors the envelope's (``EnvelopeError``) rather than sharing its classes: an
envelope error describes one event, and a batch reports it as a ``BadEventError`` with the
event's index and the envelope's error as its cause, so a decoder of the link raises only
``MessageError`` and the envelope's reasons keep their meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeGuard

from cloud_sync.contract import wire_json


class MessageError(ValueError):
    """A payload that is not a readable message of the link.

    MessageError
    ├── OversizeError           more bytes than the message's bound (``limit``)
    ├── MalformedMessageError   not UTF-8 JSON, not one object, a key twice, too deep
    ├── UnknownVersionError     a schema_version this end does not read (``version``)
    ├── UnknownFieldError       a key the version does not define
    ├── MissingFieldError       a field the version requires is absent
    ├── WrongTypeError          a field of the wrong JSON type (``expected``)
    ├── BadValueError           the right type, an impossible value
    └── BadEventError           an event of a batch is no valid envelope of it (``index``;
                                the envelope's own error is ``__cause__``)
    """

    reason: ClassVar[str] = "bad_message"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class OversizeError(MessageError):
    reason = "oversize"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes is over the bound of {limit}")
        self.size = size
        self.limit = limit


class MalformedMessageError(MessageError):
    reason = "malformed"


class UnknownVersionError(MessageError):
    reason = "unknown_version"

    def __init__(self, version: int, readable: frozenset[int]) -> None:
        known = ", ".join(map(str, sorted(readable)))
        super().__init__(
            f"schema_version {version} is not one this end reads ({known})",
            field="schema_version",
        )
        self.version = version


class UnknownFieldError(MessageError):
    reason = "unknown_field"


class MissingFieldError(MessageError):
    reason = "missing_field"


class WrongTypeError(MessageError):
    reason = "wrong_type"

    def __init__(self, name: str, expected: str) -> None:
        super().__init__(f"{name} must be {expected}", field=name)
        self.expected = expected


class BadValueError(MessageError):
    reason = "bad_value"


class BadEventError(MessageError):
    reason = "bad_event"

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(f"events[{index}]: {message}", field="events")
        self.index = index


class Kind(StrEnum):
    """The JSON types a field may have; the value is how an error names it. A string is
    valid UTF-8 text (``is_text``)."""

    INT = "an integer"
    OPT_INT = "an integer or null"
    STR = "a string"
    OPT_STR = "a string or null"
    LIST = "an array"


def is_text(value: object) -> TypeGuard[str]:
    """A string that is valid UTF-8: JSON's ``"\\ud800"`` escape parses to a lone surrogate,
    which no database column or hash input takes (``str.encode`` raises on it)."""
    if not isinstance(value, str):
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is(value: object, kind: Kind) -> bool:
    if kind in (Kind.INT, Kind.OPT_INT):
        # JSON true/false parse as bool, a subclass of int
        return type(value) is int or (kind is Kind.OPT_INT and value is None)
    if kind is Kind.LIST:
        return isinstance(value, list)
    return is_text(value) or (kind is Kind.OPT_STR and value is None)


def read(
    data: str | bytes,
    *,
    max_bytes: int,
    fields: Mapping[int, Mapping[str, Kind]],
) -> tuple[int, dict[str, Any]]:
    """Steps 0-4 of the docstring: the version and the document, its fields all typed.

    ``fields`` maps each readable version to its table, ``schema_version`` first.
    """
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > max_bytes:
        raise OversizeError(size, max_bytes)
    doc = wire_json.load(data, malformed=MalformedMessageError)
    if not isinstance(doc, dict):
        raise MalformedMessageError("a message is a JSON object")
    if "schema_version" not in doc:
        raise MissingFieldError("schema_version is missing", field="schema_version")
    version = doc["schema_version"]
    if type(version) is not int:
        raise WrongTypeError("schema_version", Kind.INT)
    table = fields.get(version)
    if table is None:
        raise UnknownVersionError(version, frozenset(fields))
    unknown = sorted(doc.keys() - table.keys())
    if unknown:
        name = unknown[0]
        raise UnknownFieldError(f"{name} is not a field of version {version}", field=name)
    for name, kind in table.items():
        if name not in doc:
            raise MissingFieldError(f"{name} is missing", field=name)
        if not _is(doc[name], kind):
            raise WrongTypeError(name, kind)
    return version, doc


def require(ok: bool, name: str, value: object, why: str) -> None:
    """Step 5: ``BadValueError`` on ``name`` unless ``ok``."""
    if not ok:
        raise BadValueError(f"{name} {value!r}: {why}", field=name)


def utc_time(name: str, text: str) -> datetime:
    """An ISO 8601 time with its UTC offset, in UTC; ``BadValueError`` on ``name`` if not."""
    try:
        at = datetime.fromisoformat(text)
        if at.tzinfo is None:
            raise ValueError("no UTC offset")
        return at.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise BadValueError(f"{name} {text!r}: {exc}", field=name) from None


def canonical(value: object) -> str:
    """The one text of a message (or of any JSON value in it): sorted keys, no whitespace,
    ASCII only (``wire_json.CANONICAL``)."""
    return wire_json.CANONICAL.encode(value)

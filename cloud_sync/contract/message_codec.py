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

The classes are the envelope's too (``decode_errors.py``, ``MessageError`` is their base): a
batch reports an event that fails as a ``BadEventError`` with the event's index and the
envelope's error as its cause, so a decoder of the link raises only ``MessageError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeGuard

from cloud_sync.contract import wire_json
from cloud_sync.contract.decode_errors import (
    BadValueError,
    DecodeError,
    MalformedError,
    MissingFieldError,
    OversizeError,
    UnknownFieldError,
    UnknownVersionError,
    WrongTypeError,
)

# The tree is shared with the event envelope (``decode_errors.py``); these names are the ones
# this module's callers and the link's documentation use.
MessageError = DecodeError
MalformedMessageError = MalformedError


class Kind(StrEnum):
    """The JSON types a field may have; the value is how an error names it. A string is
    valid UTF-8 text (``is_text``)."""

    INT = "an integer"
    OPT_INT = "an integer or null"
    STR = "a string"
    OPT_STR = "a string or null"
    LIST = "an array"
    BOOL = "true or false"
    OBJECT = "an object"


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
    if kind is Kind.BOOL:
        return type(value) is bool
    if kind is Kind.OBJECT:
        return isinstance(value, dict)
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

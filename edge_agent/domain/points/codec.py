"""A ledger event as a JSON-ready object, and back: what travels from a till to HQ and is stored.

Theory of operation
-------------------
The box books an event (an earn at a checkout, a burn, a refund return) and sends it to HQ
inside a ``points.posted`` event envelope (``cloud_sync/contract/event_envelope.py``), as
``details.ledger``; HQ stores the same object as the entry's body. Both ends call this module,
so there is one definition of the shape (schema version 1)::

    event_id    str     1..128 characters, no NUL: the idempotency key across the programme
    kind        str     an ``EventKind`` value
    at          str     ISO 8601 with its UTC offset, written in UTC
    programme   str     1..64 characters
    origin      object  {"channel": a ``Channel`` value, "store": str|null, "till": str|null}
    campaign    str|null
    postings    [obj]   1..MAX_POSTINGS of {"account": ACCOUNT, "side": "credit"|"debit",
                        "points": int >= 0 (never a bool)}

    ACCOUNT     {"member": str, "category": a ``Category`` value}  a member's account, or
                {"programme_account": "liability"|"breakage"}     the programme's own

An account's programme is the event's: an event never posts across programmes
(``ForeignAccountError``), so writing it once per posting would only add a way to be wrong.

``decode`` takes what came off the network or out of a database. Every way it can be wrong is a
``LedgerCodecError`` with a stable ``reason`` (``malformed``, ``missing_field``,
``unknown_field``, ``wrong_type``, ``bad_value``) and the ``field`` concerned
(``postings[2].points``); the object is closed (an unknown key is refused, not ignored), and
then the event is built, so an unbalanced or otherwise impossible event is refused with the
ledger's own error as the cause (``bad_value``). Never another exception.

``encode(decode(doc)) == doc`` for every doc ``decode`` accepts that ``encode`` wrote, so HQ
can compare a resent event with the one it stored by value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, TypeVar

from edge_agent.domain.points.accounts import (
    Account,
    Category,
    MemberAccount,
    ProgrammeAccount,
    ProgrammeAccountKind,
)
from edge_agent.domain.points.errors import LedgerError
from edge_agent.domain.points.event import (
    Channel,
    EventKind,
    LedgerEvent,
    Origin,
    Posting,
    Side,
)

SCHEMA_VERSION: Final = 1
MAX_POSTINGS: Final = 10_000  # a bulk award's accounts per event; the box books 2 to 4
MAX_ID: Final = 128
MAX_NAME: Final = 64
_FIELDS: Final = ("event_id", "kind", "at", "programme", "origin", "campaign", "postings")
_ORIGIN_FIELDS: Final = ("channel", "store", "till")
_POSTING_FIELDS: Final = ("account", "side", "points")
_MAX_INT: Final = 2**63 - 1  # what every store's integer column holds
E = TypeVar("E", EventKind, Channel, Side, Category, ProgrammeAccountKind)


class LedgerCodecError(LedgerError, ValueError):
    """A ledger event document that cannot be read; ``reason`` is stable, ``field`` names where."""

    reason: ClassVar[str] = "malformed"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message if field is None else f"{field}: {message}")
        self.field = field


class MissingLedgerFieldError(LedgerCodecError):
    reason = "missing_field"


class UnknownLedgerFieldError(LedgerCodecError):
    reason = "unknown_field"


class WrongLedgerTypeError(LedgerCodecError):
    reason = "wrong_type"


class BadLedgerValueError(LedgerCodecError):
    reason = "bad_value"


# -- encoding --------------------------------------------------------------------------------


def account_doc(account: Account) -> dict[str, str]:
    if isinstance(account, MemberAccount):
        return {"member": account.member, "category": account.category.value}
    return {"programme_account": account.kind.value}


def encode(event: LedgerEvent) -> dict[str, Any]:
    """The event as the module docstring's object (JSON values only)."""
    return {
        "event_id": event.event_id,
        "kind": event.kind.value,
        "at": event.at.astimezone(UTC).isoformat(),
        "programme": event.programme,
        "origin": {
            "channel": event.origin.channel.value,
            "store": event.origin.store,
            "till": event.origin.till,
        },
        "campaign": event.campaign,
        "postings": [
            {"account": account_doc(p.account), "side": p.side.value, "points": p.points}
            for p in event.postings
        ],
    }


# -- decoding --------------------------------------------------------------------------------


def decode(doc: object) -> LedgerEvent:
    """The event ``doc`` describes, or ``LedgerCodecError`` (module docstring)."""
    obj = _object(doc, None, _FIELDS)
    event_id = _text(obj, "event_id", None, limit=MAX_ID)
    kind = _enum(EventKind, _text(obj, "kind", None, limit=MAX_NAME), "kind")
    at = _time(_text(obj, "at", None, limit=MAX_NAME), "at")
    programme = _text(obj, "programme", None, limit=MAX_NAME)
    origin_doc = _object(obj["origin"], "origin", _ORIGIN_FIELDS)
    origin = Origin(
        channel=_enum(Channel, _text(origin_doc, "channel", "origin", limit=MAX_NAME), "origin"),
        store=_optional_text(origin_doc, "store", "origin", limit=MAX_ID),
        till=_optional_text(origin_doc, "till", "origin", limit=MAX_ID),
    )
    campaign = _optional_text(obj, "campaign", None, limit=MAX_ID)
    raw = obj["postings"]
    if not isinstance(raw, list):
        raise WrongLedgerTypeError("must be a list", field="postings")
    if not 1 <= len(raw) <= MAX_POSTINGS:
        raise BadLedgerValueError(f"needs 1 to {MAX_POSTINGS} postings", field="postings")
    postings = tuple(_posting(item, f"postings[{i}]", programme) for i, item in enumerate(raw))
    try:
        return LedgerEvent(
            event_id=event_id,
            kind=kind,
            at=at,
            programme=programme,
            origin=origin,
            postings=postings,
            campaign=campaign,
        )
    except LedgerError as exc:  # unbalanced, and whatever else the event itself refuses
        raise BadLedgerValueError(str(exc), field="postings") from exc


def _posting(doc: object, where: str, programme: str) -> Posting:
    obj = _object(doc, where, _POSTING_FIELDS)
    side = _enum(Side, _text(obj, "side", where, limit=MAX_NAME), f"{where}.side")
    points = obj["points"]
    if type(points) is not int:
        raise WrongLedgerTypeError("must be an integer", field=f"{where}.points")
    if not 0 <= points <= _MAX_INT:
        raise BadLedgerValueError(f"{points} is out of range", field=f"{where}.points")
    return Posting(_account(obj["account"], f"{where}.account", programme), side, points)


def _account(doc: object, where: str, programme: str) -> Account:
    if isinstance(doc, dict) and "programme_account" in doc:
        obj = _object(doc, where, ("programme_account",))
        kind = _text(obj, "programme_account", where, limit=MAX_NAME)
        return ProgrammeAccount(programme, _enum(ProgrammeAccountKind, kind, where))
    obj = _object(doc, where, ("member", "category"))
    member = _text(obj, "member", where, limit=MAX_ID)
    category = _enum(Category, _text(obj, "category", where, limit=MAX_NAME), where)
    return MemberAccount(programme, member, category)


def _object(doc: object, where: str | None, fields: tuple[str, ...]) -> Mapping[str, object]:
    if not isinstance(doc, dict):
        raise WrongLedgerTypeError("must be an object", field=where)
    for name in doc:
        if name not in fields:
            raise UnknownLedgerFieldError(f"{name!r} is not a field", field=_path(where, name))
    for name in fields:
        if name not in doc:
            raise MissingLedgerFieldError("is missing", field=_path(where, name))
    return doc


def _text(obj: Mapping[str, object], name: str, where: str | None, *, limit: int) -> str:
    value = obj[name]
    field = _path(where, name)
    if not isinstance(value, str):
        raise WrongLedgerTypeError("must be a string", field=field)
    if not 1 <= len(value) <= limit or "\x00" in value:
        raise BadLedgerValueError(f"must be 1 to {limit} characters, no NUL", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, from a JSON escape
        raise BadLedgerValueError("is not valid Unicode text", field=field) from exc
    return value


def _optional_text(
    obj: Mapping[str, object], name: str, where: str | None, *, limit: int
) -> str | None:
    return None if obj[name] is None else _text(obj, name, where, limit=limit)


def _enum(kind: type[E], value: str, field: str) -> E:
    try:
        return kind(value)
    except ValueError as exc:
        raise BadLedgerValueError(f"{value!r} is not a {kind.__name__}", field=field) from exc


def _time(value: str, field: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadLedgerValueError(f"{value!r} is not an ISO 8601 time", field=field) from exc
    if at.tzinfo is None:
        raise BadLedgerValueError("needs a UTC offset", field=field)
    return at.astimezone(UTC)


def _path(where: str | None, name: str) -> str:
    return name if where is None else f"{where}.{name}"

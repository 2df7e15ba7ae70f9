"""What a box made of the last config HQ pushed it (``.../{box}/config_result``, retained).

Theory of operation
-------------------
Every config document a box receives ends in one outcome, and the box says which on its
retained ``config_result`` topic, so HQ (``storeside-hq config status``) reads every box's last
word at once, whenever it looks, without a service that must have been listening:

    applied        every change was made live and the health check after it passed
    unchanged      the config asks for what the box already runs
    rejected       not taken: unsigned or signed by a key the box does not trust, another
                   store's, not newer than the last one taken (a replay), or a schema error;
                   ``errors`` has every fault, each with its key path
    needs_restart  valid, but a field it changes can only change with a restart (the store's
                   identity, the cache file, the API's socket): nothing applied, the fields named
    rolled_back    applied, then the health check failed (the POS API, the printer, the broker):
                   the last good config is back, ``errors`` says what failed

``version`` is the version the outcome is about (null when the document could not be read
far enough to know it: a bad signature is never read beyond its envelope), ``running`` the
version the box runs now (null: none of HQ's, only its own file). A box that restarts
publishes its last result again after it connects.

A flat JSON object, schema version 1, decoded with ``message_codec``'s checks::

    store_id  str        the box's store (a topic level)
    box_id    str        the box (a topic level)
    version   int|null   >= 1: the pushed version the outcome is about
    running   int|null   >= 1: the pushed version the box runs
    outcome   str        one of ``Outcome``
    errors    array      at most MAX_ERRORS objects {"path": str, "message": str}; path is
                         the dotted key ("api.tills.0.token_sha256") or "" for the document
    at        str        ISO 8601 with offset: when the outcome was reached
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from cloud_sync.contract import message_codec
from cloud_sync.contract.decode_errors import BadValueError
from cloud_sync.contract.message_codec import Kind, is_text, require, utc_time
from cloud_sync.contract.topics import level_fault

SCHEMA_VERSION: Final = 1
MAX_RESULT_BYTES: Final = 64 * 1024
MAX_ERRORS: Final = 100
MAX_PATH_CHARS: Final = 200
MAX_MESSAGE_CHARS: Final = 500
MAX_VERSION: Final = 2**63 - 1
FIELDS: Final = {
    SCHEMA_VERSION: {
        "schema_version": Kind.INT,
        "store_id": Kind.STR,
        "box_id": Kind.STR,
        "version": Kind.OPT_INT,
        "running": Kind.OPT_INT,
        "outcome": Kind.STR,
        "errors": Kind.LIST,
        "at": Kind.STR,
    }
}


class Outcome(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    NEEDS_RESTART = "needs_restart"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str  # dotted key path into the config; "" for the document as a whole
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigResult:
    store_id: str
    box_id: str
    version: int | None
    running: int | None
    outcome: Outcome
    errors: tuple[FieldError, ...]
    at: datetime


def bounded(errors: list[FieldError] | tuple[FieldError, ...]) -> tuple[FieldError, ...]:
    """``errors`` cut to what a result carries: MAX_ERRORS of them (the last one saying how
    many more there were), each path and message at most their bound."""
    shown = list(errors)
    if len(shown) > MAX_ERRORS:
        rest = len(shown) - (MAX_ERRORS - 1)
        shown = [*shown[: MAX_ERRORS - 1], FieldError("", f"and {rest} more errors")]
    return tuple(FieldError(e.path[:MAX_PATH_CHARS], e.message[:MAX_MESSAGE_CHARS]) for e in shown)


def encode(result: ConfigResult) -> bytes:
    """The payload (``errors`` must be ``bounded``: a longer list is the caller's bug)."""
    if len(result.errors) > MAX_ERRORS:
        raise ValueError(f"{len(result.errors)} errors: at most {MAX_ERRORS} (use bounded)")
    return message_codec.canonical(
        {
            "schema_version": SCHEMA_VERSION,
            "store_id": result.store_id,
            "box_id": result.box_id,
            "version": result.version,
            "running": result.running,
            "outcome": result.outcome.value,
            "errors": [{"path": e.path, "message": e.message} for e in result.errors],
            "at": result.at.astimezone(UTC).isoformat(),
        }
    ).encode("ascii")


def _error(index: int, item: object) -> FieldError:
    where = f"errors[{index}]"
    if not isinstance(item, dict) or set(item) != {"path", "message"}:
        raise BadValueError(f"{where}: an object of path and message", field="errors")
    path, message = item["path"], item["message"]
    if not (is_text(path) and is_text(message)):
        raise BadValueError(f"{where}: path and message are strings", field="errors")
    if len(path) > MAX_PATH_CHARS or len(message) > MAX_MESSAGE_CHARS:
        raise BadValueError(f"{where}: path or message too long", field="errors")
    return FieldError(path, message)


def decode(data: str | bytes) -> ConfigResult:
    """The result in ``data``; a ``MessageError`` naming the first fault if there is none."""
    _, doc = message_codec.read(data, max_bytes=MAX_RESULT_BYTES, fields=FIELDS)
    for name in ("store_id", "box_id"):
        fault = level_fault(doc[name])
        require(fault is None, name, doc[name], f"not a topic level ({fault})")
    for name in ("version", "running"):
        value = doc[name]
        require(value is None or 1 <= value <= MAX_VERSION, name, value, "a version is >= 1")
    outcomes = {o.value: o for o in Outcome}
    outcome = doc["outcome"]
    require(outcome in outcomes, "outcome", outcome, f"not one of {', '.join(outcomes)}")
    errors = doc["errors"]
    require(len(errors) <= MAX_ERRORS, "errors", len(errors), f"at most {MAX_ERRORS}")
    return ConfigResult(
        store_id=doc["store_id"],
        box_id=doc["box_id"],
        version=doc["version"],
        running=doc["running"],
        outcome=outcomes[outcome],
        errors=tuple(_error(i, e) for i, e in enumerate(errors)),
        at=utc_time("at", doc["at"]),
    )

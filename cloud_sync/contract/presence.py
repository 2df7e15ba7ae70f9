"""A box's presence: its retained state (``.../{box}/state``) and health (``.../{box}/health``).

Theory of operation
-------------------
``state`` follows Sparkplug B's birth and death: when the box connects it sets its last will
to a retained ``offline`` and, once connected, publishes a retained ``online``; the broker
publishes the will when the connection dies without a DISCONNECT, and a clean shutdown
publishes ``offline`` itself. Retained, so HQ (and a fleet view started later) reads each box's
last state at once. Both carry the box's ``session``, a number that grows with every connect
(Sparkplug's bdSeq): a will can reach the broker after the next session's birth (the broker
notices a dead connection late), so HQ ignores a state whose session is below the last it saw
from that box, and an ``offline`` ends only its own session.

``health`` is a retained summary the box publishes after each connect, periodically, and at
once after each config push is answered: how far behind it is (outbox depth, oldest unsent
event, the last ack), what it runs (agent version, cache data version, the version of HQ's
config and what came of the last push), its printer, and its clock's offset from HQ's. HQ's
fleet view reads it; nothing depends on it for correctness, so it is a snapshot, never a log.

Both are flat JSON objects decoded with ``message_codec``'s checks; state is schema version 1,
health version 3 (version 1 is version 2 without the four ``config_`` fields, version 2 is
version 3 without ``devices_state``: boxes and HQ upgrade separately, so HQ reads all three; a
version 1 health has ``ConfigHealth()``, versions 1 and 2 no devices state)::

    State   store_id, box_id, state ("online" | "offline"), session (int >= 1)
    Health  store_id, box_id, session, at (ISO 8601 with offset: when it was measured),
            agent_version (str), cache_version (str | null: no snapshot loaded),
            printer_state (str), outbox_depth (int >= 0), oldest_unsent_at (time | null),
            next_seq (int >= 1: the seq the next event will get), acked_through (int >= 0),
            last_ack_at (time | null), oldest_retained_seq (int | null: the first seq the
            box can still resend), clock_offset_ms (int | null: box minus HQ, unknown: null)
      v2 +  config_version (int >= 1 | null: the pushed config the box runs; null: its file's
            alone), config_outcome (a ``config_result.Outcome`` | null: no push answered
            yet), config_outcome_version (int >= 1 | null: the version that outcome is about,
            null when the push could not be read that far), config_outcome_at (time | null:
            when; null exactly when config_outcome is)
      v3 +  devices_state (str | null: the in-store devices, one short clause each, e.g.
            "ble coffee-scanner scanning; nfc till-1-reader absent: not_found"; null: the box
            has none configured)

The config fields summarise the box's retained ``config_result`` (whose ``running`` is
``config_version``; its errors stay there), so one look at the fleet shows which box runs
which config and which refused the last one. HQ computes a box's lag as
``next_seq - 1 - stored_through``, from its own store and this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from cloud_sync.contract import message_codec
from cloud_sync.contract.config_result import MAX_VERSION, Outcome
from cloud_sync.contract.decode_errors import (
    BadValueError,
)
from cloud_sync.contract.message_codec import (
    Kind,
    require,
    utc_time,
)
from cloud_sync.contract.topics import level_fault

SCHEMA_VERSION: Final = 1  # the state's
HEALTH_VERSION: Final = 3  # what a box writes; HQ reads 1 and 2 too (HEALTH_FIELDS)
MAX_STATE_BYTES: Final = 1024
MAX_HEALTH_BYTES: Final = 4096
MAX_TEXT_CHARS: Final = 200  # versions and printer states are short words, not logs
MAX_DEVICES_CHARS: Final = 600  # a clause per scanner and reader (at most 8 + 16)


class BoxState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    store_id: str
    box_id: str
    state: BoxState
    session: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigHealth:
    """HQ's config on the box, as its health says it (the ``config_`` fields): all None for
    a box no push has reached, and for a version 1 health."""

    version: int | None = None  # the pushed version it runs
    outcome: Outcome | None = None  # what came of the last push
    outcome_version: int | None = None  # the version that outcome is about
    outcome_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    store_id: str
    box_id: str
    session: int
    at: datetime
    agent_version: str
    cache_version: str | None
    printer_state: str
    outbox_depth: int
    oldest_unsent_at: datetime | None
    next_seq: int
    acked_through: int
    last_ack_at: datetime | None
    oldest_retained_seq: int | None
    clock_offset_ms: int | None
    config: ConfigHealth = ConfigHealth()
    devices_state: str | None = None  # BLE scanners and NFC readers (v3); None: none


_IDS: Final = {
    "schema_version": Kind.INT,
    "store_id": Kind.STR,
    "box_id": Kind.STR,
    "session": Kind.INT,
}
STATE_FIELDS: Final = {SCHEMA_VERSION: {**_IDS, "state": Kind.STR}}
_HEALTH_V1: Final = {
    **_IDS,
    "at": Kind.STR,
    "agent_version": Kind.STR,
    "cache_version": Kind.OPT_STR,
    "printer_state": Kind.STR,
    "outbox_depth": Kind.INT,
    "oldest_unsent_at": Kind.OPT_STR,
    "next_seq": Kind.INT,
    "acked_through": Kind.INT,
    "last_ack_at": Kind.OPT_STR,
    "oldest_retained_seq": Kind.OPT_INT,
    "clock_offset_ms": Kind.OPT_INT,
}
_HEALTH_V2: Final = {
    **_HEALTH_V1,
    "config_version": Kind.OPT_INT,
    "config_outcome": Kind.OPT_STR,
    "config_outcome_version": Kind.OPT_INT,
    "config_outcome_at": Kind.OPT_STR,
}
HEALTH_FIELDS: Final = {
    1: _HEALTH_V1,
    2: _HEALTH_V2,
    HEALTH_VERSION: {**_HEALTH_V2, "devices_state": Kind.OPT_STR},
}
_STATES: Final = {s.value: s for s in BoxState}
_OUTCOMES: Final = {o.value: o for o in Outcome}


def _time_text(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def encode_state(state: State) -> bytes:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "store_id": state.store_id,
        "box_id": state.box_id,
        "state": state.state.value,
        "session": state.session,
    }
    return message_codec.canonical(doc).encode("ascii")


def encode_health(health: Health) -> bytes:
    config = health.config
    doc = {
        "schema_version": HEALTH_VERSION,
        "store_id": health.store_id,
        "box_id": health.box_id,
        "session": health.session,
        "at": _time_text(health.at),
        "agent_version": health.agent_version,
        "cache_version": health.cache_version,
        "printer_state": health.printer_state,
        "outbox_depth": health.outbox_depth,
        "oldest_unsent_at": _time_text(health.oldest_unsent_at),
        "next_seq": health.next_seq,
        "acked_through": health.acked_through,
        "last_ack_at": _time_text(health.last_ack_at),
        "oldest_retained_seq": health.oldest_retained_seq,
        "clock_offset_ms": health.clock_offset_ms,
        "config_version": config.version,
        "config_outcome": None if config.outcome is None else config.outcome.value,
        "config_outcome_version": config.outcome_version,
        "config_outcome_at": _time_text(config.outcome_at),
        "devices_state": health.devices_state,
    }
    return message_codec.canonical(doc).encode("ascii")


def decode_state(data: str | bytes) -> State:
    """The state in ``data``; a ``MessageError`` naming the first fault if there is none."""
    _, doc = message_codec.read(data, max_bytes=MAX_STATE_BYTES, fields=STATE_FIELDS)
    _common(doc)
    found = _STATES.get(doc["state"])
    if found is None:
        raise BadValueError(f"state {doc['state']!r}: not online or offline", field="state")
    return State(
        store_id=doc["store_id"], box_id=doc["box_id"], state=found, session=doc["session"]
    )


def decode_health(data: str | bytes) -> Health:
    """The health summary in ``data`` (version 1, 2 or 3); a ``MessageError`` naming the first
    fault if none."""
    version, doc = message_codec.read(data, max_bytes=MAX_HEALTH_BYTES, fields=HEALTH_FIELDS)
    _common(doc)
    devices = doc.get("devices_state")
    require(devices is None or len(devices) <= MAX_DEVICES_CHARS, "devices_state", devices,
            "too long")  # fmt: skip
    for name in ("agent_version", "cache_version", "printer_state"):
        value = doc[name]
        require(value is None or len(value) <= MAX_TEXT_CHARS, name, value, "too long")
    for name in ("outbox_depth", "acked_through"):
        require(doc[name] >= 0, name, doc[name], "a count is >= 0")
    for name in ("next_seq", "oldest_retained_seq"):
        value = doc[name]
        require(value is None or value >= 1, name, value, "a seq is >= 1")
    return Health(
        store_id=doc["store_id"],
        box_id=doc["box_id"],
        session=doc["session"],
        at=utc_time("at", doc["at"]),
        agent_version=doc["agent_version"],
        cache_version=doc["cache_version"],
        printer_state=doc["printer_state"],
        outbox_depth=doc["outbox_depth"],
        oldest_unsent_at=_optional_time(doc, "oldest_unsent_at"),
        next_seq=doc["next_seq"],
        acked_through=doc["acked_through"],
        last_ack_at=_optional_time(doc, "last_ack_at"),
        oldest_retained_seq=doc["oldest_retained_seq"],
        clock_offset_ms=doc["clock_offset_ms"],
        config=ConfigHealth() if version == 1 else _config_health(doc),
        devices_state=devices,
    )


def _config_health(doc: dict[str, Any]) -> ConfigHealth:
    for name in ("config_version", "config_outcome_version"):
        value = doc[name]
        require(value is None or 1 <= value <= MAX_VERSION, name, value, "a version is >= 1")
    outcome, at = doc["config_outcome"], doc["config_outcome_at"]
    known = outcome is None or outcome in _OUTCOMES
    require(known, "config_outcome", outcome, f"not one of {', '.join(_OUTCOMES)}")
    # An outcome and its time come together: one without the other is a box's bug.
    require(outcome is not None or at is None, "config_outcome", outcome,
            "null, yet config_outcome_at is set")  # fmt: skip
    require(outcome is None or at is not None, "config_outcome_at", at,
            "an outcome is reached at a time")  # fmt: skip
    about = doc["config_outcome_version"]
    require(outcome is not None or about is None, "config_outcome_version", about,
            "only with a config_outcome")  # fmt: skip
    return ConfigHealth(
        version=doc["config_version"],
        outcome=None if outcome is None else _OUTCOMES[outcome],
        outcome_version=doc["config_outcome_version"],
        outcome_at=_optional_time(doc, "config_outcome_at"),
    )


def _common(doc: dict[str, Any]) -> None:
    for name in ("store_id", "box_id"):
        fault = level_fault(doc[name])
        require(fault is None, name, doc[name], f"not a topic level ({fault})")
    require(doc["session"] >= 1, "session", doc["session"], "a session is >= 1")


def _optional_time(doc: dict[str, Any], name: str) -> datetime | None:
    text = doc[name]
    return None if text is None else utc_time(name, text)

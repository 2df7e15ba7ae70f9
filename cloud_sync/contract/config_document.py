"""A config push: the part of a store's config HQ sets, signed, on each box's ``config`` topic.

Theory of operation
-------------------
HQ sets config in two layers, the fleet's and each store's, each a partial ``AgentConfig``
(the sections and fields to set, an *overlay*) with a version taken from one HQ-wide counter.
What a box receives is the effective overlay of its store: the fleet's, deep-merged with the
store's (the store's wins), stamped with the newer of the two versions, so one retained
message per box says everything HQ sets there, and a box that was away for a month needs
only the last one. The body travels inside an ``hq_document`` of kind ``config``, so only
HQ's key can make one; the box checks, in this order (``edge_agent/config_push/``):

1. the signature (``HqTrust.open``, kind ``config``),
2. this decoder: the fields below, closed,
3. ``store_id`` is the box's own store,
4. ``version`` is newer than every config the box has taken (an old config signed by HQ and
   replayed is refused, across restarts: the box keeps what it saw in its cache),
5. the overlay against the closed config schema (``config/overlay.py``), every error with its
   key path, and no field the box keeps to itself or that needs a restart.

The overlay is not checked here beyond being a JSON object: the schema is config's, not the
wire's, and the box reports each of its errors rather than the first.

A flat JSON object, schema version 1, decoded with ``message_codec``'s checks::

    store_id        str         the store it is for (a topic level)
    version         int         >= 1: HQ-wide, grows with every push (fleet or store)
    fleet_version   int|null    the fleet push merged in (null: none)
    store_version   int|null    the store push merged in (null: none)
    issued_at       str         ISO 8601 with offset: when HQ composed it
    overlay         object      the partial config: {"section": {"field": value, ...}, ...}

``version`` is ``max(fleet_version, store_version)``: the newer push made this document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from cloud_sync.contract import message_codec
from cloud_sync.contract.message_codec import Kind, require, utc_time
from cloud_sync.contract.topics import level_fault

SCHEMA_VERSION: Final = 1
MAX_CONFIG_BYTES: Final = 256 * 1024  # a config file is a few KB; tills lists grow it most
MAX_VERSION: Final = 2**63 - 1
FIELDS: Final = {
    SCHEMA_VERSION: {
        "schema_version": Kind.INT,
        "store_id": Kind.STR,
        "version": Kind.INT,
        "fleet_version": Kind.OPT_INT,
        "store_version": Kind.OPT_INT,
        "issued_at": Kind.STR,
        "overlay": Kind.OBJECT,
    }
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigDocument:
    store_id: str
    version: int
    fleet_version: int | None
    store_version: int | None
    issued_at: datetime
    overlay: dict[str, Any] = field(default_factory=dict)


def encode(document: ConfigDocument) -> str:
    """The canonical text HQ signs as the body of a ``config`` document."""
    return message_codec.canonical(
        {
            "schema_version": SCHEMA_VERSION,
            "store_id": document.store_id,
            "version": document.version,
            "fleet_version": document.fleet_version,
            "store_version": document.store_version,
            "issued_at": document.issued_at.astimezone(UTC).isoformat(),
            "overlay": document.overlay,
        }
    )


def decode(data: str | bytes) -> ConfigDocument:
    """The config document in ``data``; a ``MessageError`` naming the first fault if none."""
    _, doc = message_codec.read(data, max_bytes=MAX_CONFIG_BYTES, fields=FIELDS)
    fault = level_fault(doc["store_id"])
    require(fault is None, "store_id", doc["store_id"], f"not a topic level ({fault})")
    version = doc["version"]
    require(1 <= version <= MAX_VERSION, "version", version, "a version is >= 1 (64-bit)")
    layers = [doc[name] for name in ("fleet_version", "store_version")]
    for name, value in zip(("fleet_version", "store_version"), layers, strict=True):
        require(value is None or 1 <= value <= version, name, value, "from 1 to version")
    require(
        version == max(v for v in [*layers, 0] if v is not None),
        "version",
        version,
        "not the newer of fleet_version and store_version",
    )
    return ConfigDocument(
        store_id=doc["store_id"],
        version=version,
        fleet_version=layers[0],
        store_version=layers[1],
        issued_at=utc_time("issued_at", doc["issued_at"]),
        overlay=doc["overlay"],
    )

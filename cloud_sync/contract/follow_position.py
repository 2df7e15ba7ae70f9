"""Where a box's cache stands in its store's delta stream (``.../{box}/position``).

Theory of operation
-------------------
HQ keeps every store's deltas (``delta.py``) in order, but only the box knows which of them its
cache holds: the box says so in a ``FollowPosition``, retained, after every connect and after a
delta it could not apply (a gap), and HQ's fan-out answers with the deltas that follow, seq
``watermark + 1`` on, on the box's ``delta`` topic. Retained, so a fan-out that starts reads
every box's last word at once and brings each up to date without waiting to be asked.

So a delta lost anywhere (HQ down, the broker restarted without its queue, a box whose session
expired) is asked for again, and the duplicates this can bring (a delta queued in the box's
session and resent too) are no-ops at the box. A box whose ``stream`` is not the store's
current one, or null (its cache follows none), or whose watermark is older than what HQ still
keeps, cannot be brought up by deltas: it needs a snapshot, and HQ says so.

A flat JSON object, schema version 1, decoded with ``message_codec``'s checks::

    store_id   str        the box's store (a topic level, as in the topic)
    box_id     str        the box (a topic level, as in the topic)
    stream     str|null   32 lowercase hex: the stream the cache follows; null for none
    watermark  int        >= 0: the seq of the last delta applied (0: none since the snapshot)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from cloud_sync.contract import message_codec
from cloud_sync.contract.message_codec import Kind, require
from cloud_sync.contract.topics import level_fault

SCHEMA_VERSION: Final = 1
MAX_POSITION_BYTES: Final = 1024
FIELDS: Final = {
    SCHEMA_VERSION: {
        "schema_version": Kind.INT,
        "store_id": Kind.STR,
        "box_id": Kind.STR,
        "stream": Kind.OPT_STR,
        "watermark": Kind.INT,
    }
}
_STREAM = re.compile(r"[0-9a-f]{32}")
MAX_INT64: Final = 2**63 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowPosition:
    store_id: str
    box_id: str
    stream: str | None
    watermark: int


def encode(position: FollowPosition) -> bytes:
    return message_codec.canonical(
        {
            "schema_version": SCHEMA_VERSION,
            "store_id": position.store_id,
            "box_id": position.box_id,
            "stream": position.stream,
            "watermark": position.watermark,
        }
    ).encode("ascii")


def decode(data: str | bytes) -> FollowPosition:
    """The position in ``data``; a ``MessageError`` naming the first fault if there is none."""
    _, doc = message_codec.read(data, max_bytes=MAX_POSITION_BYTES, fields=FIELDS)
    for name in ("store_id", "box_id"):
        fault = level_fault(doc[name])
        require(fault is None, name, doc[name], f"not a topic level ({fault})")
    stream = doc["stream"]
    require(stream is None or _STREAM.fullmatch(stream) is not None, "stream", stream, "not 32 hex")
    mark = doc["watermark"]
    require(0 <= mark <= MAX_INT64, "watermark", mark, "a seq is >= 0 (64-bit)")
    return FollowPosition(
        store_id=doc["store_id"], box_id=doc["box_id"], stream=stream, watermark=mark
    )

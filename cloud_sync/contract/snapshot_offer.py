"""A full snapshot for a box that deltas cannot bring up, offered by HQ and fetched in chunks.

Theory of operation
-------------------
A box whose cache follows no delta stream (a new box, a lost or set-aside cache), another
stream than its store's, or one whose missing deltas HQ no longer keeps, says so in its
position (``follow_position.py``) and HQ's fan-out answers with an **offer**: an HQ-signed
document (``hq_document.py``, kind "snapshot") naming a snapshot file HQ cut for the store at a
point of its delta stream, published retained on the box's ``snapshot`` topic, so a box that
connects later still finds it. Its body, a flat JSON object, schema version 1::

    store_id     str   the store the snapshot is for (a topic level)
    snapshot_id  str   32 lowercase hex: names this file, and the box's partial copy of it
    stream, seq        the delta stream and seq it is cut at: the box follows on from there
    size         int   the file's bytes, >= 1
    sha256       str   64 lowercase hex of the whole file
    chunk_bytes  int   how many bytes HQ sends a request, 1 .. ``MAX_CHUNK_BYTES``
    created_at   str   ISO 8601 with offset

The box **requests** chunks (``Request`` on its ``snapshot_request`` topic: the snapshot and an
offset) and HQ answers each with a **chunk** on the box's ``snapshot_chunk`` topic: one header
line of canonical JSON (``snapshot_id``, ``offset``, ``size``; ``missing`` true when HQ no longer
holds the file), a newline, then the bytes from ``offset``. The box writes them to a partial file
in order, so an interrupted fetch (the power, the link, the agent restarted) resumes from the
partial file's length; the signed ``sha256`` and ``size`` check the whole before anything of it is
loaded, so a chunk need not be signed: a corrupt or forged one fails the file, which is fetched
again from the start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cloud_sync.contract import message_codec
from cloud_sync.contract.message_codec import Kind, MalformedMessageError, require, utc_time
from cloud_sync.contract.topics import level_fault

SCHEMA_VERSION: Final = 1
MAX_CHUNK_BYTES: Final = 512 * 1024
MAX_SIZE: Final = 2**40  # a terabyte: far above any store's cache, below any overflow
MAX_OFFER_BYTES: Final = 2048
MAX_HEADER_BYTES: Final = 512
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
OFFER_FIELDS: Final = {
    SCHEMA_VERSION: {
        "schema_version": Kind.INT,
        "store_id": Kind.STR,
        "snapshot_id": Kind.STR,
        "stream": Kind.STR,
        "seq": Kind.INT,
        "size": Kind.INT,
        "sha256": Kind.STR,
        "chunk_bytes": Kind.INT,
        "created_at": Kind.STR,
    }
}
REQUEST_FIELDS: Final = {
    SCHEMA_VERSION: {
        "schema_version": Kind.INT,
        "store_id": Kind.STR,
        "box_id": Kind.STR,
        "snapshot_id": Kind.STR,
        "offset": Kind.INT,
    }
}
HEADER_FIELDS: Final = {
    SCHEMA_VERSION: {
        "schema_version": Kind.INT,
        "snapshot_id": Kind.STR,
        "offset": Kind.INT,
        "size": Kind.INT,
        "missing": Kind.BOOL,
    }
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    store_id: str
    snapshot_id: str
    stream: str
    seq: int
    size: int
    sha256: str
    chunk_bytes: int
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    store_id: str
    box_id: str
    snapshot_id: str
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    snapshot_id: str
    offset: int
    size: int  # the whole file's
    data: bytes
    missing: bool = False  # HQ holds no such file (any more): wait for a new offer


def encode_offer(offer: Offer) -> str:
    """The body HQ signs (the text of a kind "snapshot" document)."""
    return message_codec.canonical(
        {
            "schema_version": SCHEMA_VERSION,
            "store_id": offer.store_id,
            "snapshot_id": offer.snapshot_id,
            "stream": offer.stream,
            "seq": offer.seq,
            "size": offer.size,
            "sha256": offer.sha256,
            "chunk_bytes": offer.chunk_bytes,
            "created_at": offer.created_at.isoformat(),
        }
    )


def decode_offer(data: str | bytes) -> Offer:
    _, doc = message_codec.read(data, max_bytes=MAX_OFFER_BYTES, fields=OFFER_FIELDS)
    _level(doc, "store_id")
    _hex(doc, "snapshot_id", _HEX32)
    _hex(doc, "stream", _HEX32)
    _hex(doc, "sha256", _HEX64)
    require(0 <= doc["seq"] < 2**63, "seq", doc["seq"], "a seq is >= 0 (64-bit)")
    require(1 <= doc["size"] <= MAX_SIZE, "size", doc["size"], f"1 .. {MAX_SIZE} bytes")
    chunk = doc["chunk_bytes"]
    require(1 <= chunk <= MAX_CHUNK_BYTES, "chunk_bytes", chunk, f"1 .. {MAX_CHUNK_BYTES}")
    return Offer(
        store_id=doc["store_id"],
        snapshot_id=doc["snapshot_id"],
        stream=doc["stream"],
        seq=doc["seq"],
        size=doc["size"],
        sha256=doc["sha256"],
        chunk_bytes=chunk,
        created_at=utc_time("created_at", doc["created_at"]),
    )


def encode_request(request: Request) -> bytes:
    return message_codec.canonical(
        {
            "schema_version": SCHEMA_VERSION,
            "store_id": request.store_id,
            "box_id": request.box_id,
            "snapshot_id": request.snapshot_id,
            "offset": request.offset,
        }
    ).encode("ascii")


def decode_request(data: str | bytes) -> Request:
    _, doc = message_codec.read(data, max_bytes=MAX_OFFER_BYTES, fields=REQUEST_FIELDS)
    _level(doc, "store_id")
    _level(doc, "box_id")
    _hex(doc, "snapshot_id", _HEX32)
    require(0 <= doc["offset"] <= MAX_SIZE, "offset", doc["offset"], f"0 .. {MAX_SIZE}")
    return Request(
        store_id=doc["store_id"],
        box_id=doc["box_id"],
        snapshot_id=doc["snapshot_id"],
        offset=doc["offset"],
    )


def encode_chunk(chunk: Chunk) -> bytes:
    if len(chunk.data) > MAX_CHUNK_BYTES:
        raise ValueError(f"a chunk is at most {MAX_CHUNK_BYTES} bytes")
    header = message_codec.canonical(
        {
            "schema_version": SCHEMA_VERSION,
            "snapshot_id": chunk.snapshot_id,
            "offset": chunk.offset,
            "size": chunk.size,
            "missing": chunk.missing,
        }
    )
    return header.encode("ascii") + b"\n" + chunk.data


def decode_chunk(data: bytes) -> Chunk:
    """The chunk in ``data``; a ``MessageError`` naming the first fault if there is none."""
    head, newline, body = data[: MAX_HEADER_BYTES + 1].partition(b"\n")
    if not newline:
        raise MalformedMessageError("a chunk starts with a header line, within the bound")
    _, doc = message_codec.read(head, max_bytes=MAX_HEADER_BYTES, fields=HEADER_FIELDS)
    _hex(doc, "snapshot_id", _HEX32)
    size, offset = doc["size"], doc["offset"]
    require(0 <= size <= MAX_SIZE, "size", size, f"0 .. {MAX_SIZE} bytes")
    require(0 <= offset <= size, "offset", offset, "within the file")
    payload = body + data[MAX_HEADER_BYTES + 1 :]
    require(len(payload) <= MAX_CHUNK_BYTES, "data", len(payload), "over the chunk bound")
    require(offset + len(payload) <= size, "data", len(payload), "runs past the file's end")
    return Chunk(
        snapshot_id=doc["snapshot_id"],
        offset=offset,
        size=size,
        data=payload,
        missing=doc["missing"],
    )


def _level(doc: dict[str, Any], name: str) -> None:
    fault = level_fault(doc[name])
    require(fault is None, name, doc[name], f"not a topic level ({fault})")


def _hex(doc: dict[str, Any], name: str, pattern: re.Pattern[str]) -> None:
    value = doc[name]
    ok = isinstance(value, str) and pattern.fullmatch(value) is not None
    require(ok, name, value, f"not {pattern.pattern}")

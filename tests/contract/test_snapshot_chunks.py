"""Snapshot chunks: a header line and raw bytes. They round-trip, their header fits the
AsyncAPI schema, and anything else is a typed ``MessageError`` (fuzzed)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.contract import snapshot_offer
from cloud_sync.contract.message_codec import MessageError
from cloud_sync.contract.snapshot_offer import MAX_CHUNK_BYTES, Chunk
from tests.contract.test_asyncapi import PAYLOADS
from tests.contract.test_link_messages import hex32


@st.composite
def chunks(draw: st.DrawFn) -> Chunk:
    data = draw(st.binary(max_size=2048))
    offset = draw(st.integers(min_value=0, max_value=10**9))
    size = offset + len(data) + draw(st.integers(min_value=0, max_value=10**6))
    return Chunk(
        snapshot_id=draw(hex32), offset=offset, size=size, data=data, missing=draw(st.booleans())
    )


@settings(max_examples=200)
@given(chunks())
def test_a_chunk_round_trips_and_its_header_fits_the_schema(chunk: Chunk) -> None:
    encoded = snapshot_offer.encode_chunk(chunk)
    assert snapshot_offer.decode_chunk(encoded) == chunk
    header = json.loads(encoded.partition(b"\n")[0])
    assert PAYLOADS["SnapshotChunkHeader"].is_valid(header)


def test_a_chunk_holds_newlines_and_the_largest_size() -> None:
    data = b"\n\n" + bytes(range(256)) * (MAX_CHUNK_BYTES // 256 - 1)
    chunk = Chunk(snapshot_id="a" * 32, offset=0, size=len(data), data=data)
    assert snapshot_offer.decode_chunk(snapshot_offer.encode_chunk(chunk)) == chunk


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", None),
        (b"no header line", None),
        (b'{"schema_version": 1}\n', "snapshot_id"),
        (
            b'{"missing":false,"offset":5,"schema_version":1,"size":4,"snapshot_id":"'
            + b"a" * 32
            + b'"}\n',
            "offset",
        ),
        (
            b'{"missing":false,"offset":0,"schema_version":1,"size":2,"snapshot_id":"'
            + b"a" * 32
            + b'"}\nabc',
            "data",
        ),
        (
            b'{"missing":0,"offset":0,"schema_version":1,"size":2,"snapshot_id":"'
            + b"a" * 32
            + b'"}\n',
            "missing",
        ),
    ],
)
def test_a_bad_chunk_is_named(data: bytes, field: str | None) -> None:
    with pytest.raises(MessageError) as caught:
        snapshot_offer.decode_chunk(data)
    assert caught.value.field == field


@settings(max_examples=300)
@given(st.binary(max_size=1200) | chunks().map(snapshot_offer.encode_chunk), st.data())
def test_any_bytes_get_a_chunk_or_a_typed_error(data: bytes, draw: st.DataObject) -> None:
    if data and draw.draw(st.booleans()):
        at = draw.draw(st.integers(min_value=0, max_value=len(data) - 1))
        data = data[:at] + bytes([data[at] ^ 0x55]) + data[at + 1 :]
    try:
        chunk = snapshot_offer.decode_chunk(data)
    except MessageError:
        return
    assert chunk.offset + len(chunk.data) <= chunk.size

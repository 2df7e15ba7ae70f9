"""Event batches: what the box packs round-trips byte for byte within its bounds, its signing
bytes cover every field but the signature (through its digest), and every malformed batch gets
a typed reason."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.contract import batch as batches
from cloud_sync.contract import message_codec
from cloud_sync.contract.batch import Batch, SignedBatch
from cloud_sync.contract.chain import ChainLink, verify_chain
from cloud_sync.contract.decode_errors import (
    BadEventError,
    BadValueError,
    MissingFieldError,
    OversizeError,
    UnknownFieldError,
    UnknownVersionError,
    WrongTypeError,
)
from cloud_sync.contract.event_envelope import (
    MalformedEnvelopeError,
    encode,
)
from cloud_sync.contract.message_codec import (
    MessageError,
)
from tests.contract.streams import BOX, STORE, event, rows, stream

KEY_ID = "0a1b2c3d"
SIGNATURE = bytes(range(64))
FIELDS = tuple(batches.FIELDS[1])


def signed(count: int = 3, **kwargs: Any) -> SignedBatch:
    batch = batches.pack(
        store_id=STORE, box_id=BOX, key_id=KEY_ID, events=rows(stream(count)), **kwargs
    )
    return SignedBatch(batch=batch, signature=SIGNATURE)


def doc_of(item: SignedBatch) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(batches.encode(item))
    return doc


def again(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


@settings(max_examples=100)
@given(st.integers(min_value=1, max_value=30), st.integers(min_value=0, max_value=3000))
def test_a_packed_batch_round_trips_byte_for_byte(count: int, pad: int) -> None:
    events = stream(count, pad=pad)
    batch = batches.pack(store_id=STORE, box_id=BOX, key_id=KEY_ID, events=rows(events))
    data = batches.encode(SignedBatch(batch=batch, signature=SIGNATURE))
    back = batches.decode(data)
    assert back.signed == SignedBatch(batch=batch, signature=SIGNATURE)
    assert batches.encode(back.signed) == data
    assert back.events == tuple(events[: len(back.events)])
    assert verify_chain(back.events, anchor=ChainLink.start(BOX)).ok


@settings(max_examples=60)
@given(
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=0, max_value=2000),
    st.integers(min_value=2_000, max_value=40_000),
    st.integers(min_value=1, max_value=25),
)
def test_pack_takes_the_longest_run_within_both_bounds(
    count: int, pad: int, max_bytes: int, max_events: int
) -> None:
    events = stream(count, pad=pad)
    try:
        batch = batches.pack(
            store_id=STORE, box_id=BOX, key_id=KEY_ID, events=rows(events),
            max_bytes=max_bytes, max_events=max_events,
        )  # fmt: skip
    except ValueError:
        one = Batch(store_id=STORE, box_id=BOX, key_id=KEY_ID, first_seq=1, texts=(events[0].text,))
        # pack counts last_seq at its widest (20 characters), so a lone event that fits by
        # fewer bytes than that is refused too: never over the bound, perhaps a little under.
        assert len(batches.encode(SignedBatch(batch=one, signature=SIGNATURE))) > max_bytes - 40
        return
    n = len(batch.texts)
    assert batch.texts == tuple(s.text for s in events[:n]) and n <= max_events
    assert len(batches.encode(SignedBatch(batch=batch, signature=SIGNATURE))) <= max_bytes
    if n < min(count, max_events):  # one more would not have fitted
        more = Batch(
            store_id=STORE,
            box_id=BOX,
            key_id=KEY_ID,
            first_seq=1,
            texts=tuple(s.text for s in events[: n + 1]),
        )
        size = len(batches.encode(SignedBatch(batch=more, signature=SIGNATURE)))
        assert size > max_bytes - 40  # counted with last_seq at its widest


def test_the_default_bounds_hold_a_full_outbox_turn() -> None:
    big = signed(600)  # ~500-byte events: the bytes bound, not the count, ends the batch
    assert 400 < len(big.batch.texts) < 600
    assert len(batches.encode(big)) <= batches.MAX_BATCH_BYTES
    assert len(signed(1200, max_bytes=10**9).batch.texts) == batches.MAX_BATCH_EVENTS


def test_signing_bytes_are_the_context_and_the_digest_of_every_field_but_the_signature() -> None:
    item = signed()
    data = batches.signing_bytes(item.batch)
    unsigned = {k: v for k, v in doc_of(item).items() if k != "signature"}
    digest = hashlib.sha256(message_codec.canonical(unsigned).encode()).digest()
    assert data == batches.SIGNING_CONTEXT + digest
    # A field changed is another digest: the signature covers every one of them.
    for changed in (
        replace(item.batch, first_seq=item.batch.first_seq + 1),
        replace(item.batch, texts=(*item.batch.texts[:-1], item.batch.texts[-1] + " ")),
        replace(item.batch, key_id="ffffffff"),
        replace(item.batch, box_id="box-2"),
        replace(item.batch, store_id="S9"),
    ):
        assert batches.signing_bytes(changed) != data


ids = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)


@settings(max_examples=300)
@given(
    store_id=ids,
    box_id=ids,
    key_id=ids,
    first_seq=st.integers(1, 2**63),
    texts=st.lists(st.text(st.characters(codec="utf-8")), min_size=1, max_size=6),
    signature=st.none() | st.binary(min_size=64, max_size=64),
)
def test_the_encoding_built_from_parts_is_the_canonical_json_of_the_batch(
    *,
    store_id: str,
    box_id: str,
    key_id: str,
    first_seq: int,
    texts: list[str],
    signature: bytes | None,
) -> None:
    """The payload and the signed text are built piece by piece (so no one call holds the
    GIL for a whole batch); they must be exactly the canonical JSON of the document."""
    batch = Batch(
        store_id=store_id, box_id=box_id, key_id=key_id, first_seq=first_seq, texts=tuple(texts)
    )
    doc: dict[str, Any] = {
        "schema_version": batches.SCHEMA_VERSION,
        "store_id": store_id,
        "box_id": box_id,
        "first_seq": first_seq,
        "last_seq": batch.last_seq,
        "events": texts,
        "key_id": key_id,
    }
    unsigned = message_codec.canonical(doc).encode("ascii")
    assert batches.signing_bytes(batch) == (
        batches.SIGNING_CONTEXT + hashlib.sha256(unsigned).digest()
    )
    if signature is not None:
        whole = message_codec.canonical({**doc, "signature": signature.hex()})
        assert batches.encode(SignedBatch(batch=batch, signature=signature)) == whole.encode()


def test_an_event_is_carried_as_its_exact_stored_text() -> None:
    item = signed()
    assert doc_of(item)["events"][0] == item.batch.texts[0] == encode(stream(1)[0].event)
    assert b"\\u00e9" in batches.encode(item)  # the payload is ASCII; the text is intact


@settings(max_examples=200)
@given(st.sampled_from(FIELDS))
def test_a_missing_field_is_named(name: str) -> None:
    doc = doc_of(signed())
    del doc[name]
    with pytest.raises(MissingFieldError) as err:
        batches.decode(again(doc))
    assert err.value.field == name


@pytest.mark.parametrize("name", FIELDS)
@pytest.mark.parametrize("value", [None, True, 1.5, "7", [], {}])
def test_a_field_of_the_wrong_type_is_named(name: str, value: object) -> None:
    doc = doc_of(signed())
    if type(value) is type(doc[name]):
        return
    doc[name] = value
    with pytest.raises(WrongTypeError) as err:
        batches.decode(again(doc))
    assert err.value.field == name


def test_an_unknown_version_and_an_unknown_field_are_refused() -> None:
    doc = doc_of(signed())
    with pytest.raises(UnknownVersionError):
        batches.decode(again({**doc, "schema_version": 2}))
    with pytest.raises(UnknownFieldError) as err:
        batches.decode(again({**doc, "sent_at": "now"}))
    assert err.value.field == "sent_at"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("store_id", "a/b"),
        ("box_id", "+"),
        ("key_id", "0A1B2C3D"),
        ("key_id", "0a1b2c"),
        ("signature", "00" * 63),
        ("first_seq", 0),
        ("last_seq", 4),
        ("events", []),
    ],
)
def test_an_impossible_value_is_named(name: str, value: object) -> None:
    doc = doc_of(signed())
    doc[name] = value
    with pytest.raises(BadValueError) as err:
        batches.decode(again(doc))
    assert err.value.field == name and err.value.reason == "bad_value"


def test_each_event_must_be_a_valid_event_of_this_box_in_its_place() -> None:
    doc = doc_of(signed())
    cases = {
        "{": MalformedEnvelopeError,
        encode(event(2, prev_hash=None, box="box-002")): None,
        encode(event(2, prev_hash=None, store="store-002")): None,
        encode(event(7, prev_hash=None)): None,
    }
    for text, cause in cases.items():
        events = list(doc["events"])
        events[1] = text
        with pytest.raises(BadEventError) as err:
            batches.decode(again({**doc, "events": events}))
        assert err.value.index == 1 and err.value.reason == "bad_event"
        assert cause is None or isinstance(err.value.__cause__, cause)
    with pytest.raises(WrongTypeError):
        batches.decode(again({**doc, "events": [doc["events"][0], 5, doc["events"][2]]}))
    with pytest.raises(WrongTypeError):  # a lone surrogate is no text to hash
        batches.decode(again({**doc, "events": ["\ud800", *doc["events"][1:]]}))


def test_oversize_is_refused_before_parsing() -> None:
    data = b" " * (batches.MAX_BATCH_BYTES + 1)
    with pytest.raises(OversizeError) as err:
        batches.decode(data)
    assert err.value.limit == batches.MAX_BATCH_BYTES and err.value.reason == "oversize"


def test_encoding_refuses_a_signature_that_is_not_ed25519() -> None:
    with pytest.raises(ValueError):
        batches.encode(SignedBatch(batch=signed().batch, signature=b"short"))


def test_every_error_is_a_message_error_with_a_reason() -> None:
    for cls in (BadEventError, BadValueError, MissingFieldError, OversizeError):
        assert issubclass(cls, MessageError) and cls.reason != MessageError.reason


def test_pack_refuses_what_is_not_one_box_run_in_order() -> None:
    events = rows(stream(3))
    for wrong in ([events[0], events[2]], [events[1], events[0]], [events[0], events[0]]):
        with pytest.raises(ValueError):
            batches.pack(store_id=STORE, box_id=BOX, key_id=KEY_ID, events=wrong)

"""Fuzzing the event envelope both ends share: valid events round-trip byte for byte, and any
other input gets a typed ``EnvelopeError`` naming its reason and field, never another
exception. A failing example is printed by Hypothesis with its seed (``--hypothesis-seed``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract.event_envelope import (
    Attribution,
    BadValueError,
    EnvelopeError,
    EventEnvelope,
    EventType,
    MalformedEnvelopeError,
    MissingFieldError,
    UnknownFieldError,
    UnknownVersionError,
    WrongTypeError,
    decode,
    encode,
    event_hash,
)
from edge_agent.cache.code_cache import CodeCache
from edge_agent.events import event_log
from tests.cache.factories import NOW, STORE, open_cache

FIELDS_V1 = (
    "schema_version", "event_id", "box_id", "seq", "type", "occurred_at", "code", "store_id",
    "till_id", "cashier_id", "transaction_id", "member_id", "campaign_id", "variant",
    "channel", "amount", "details",
)  # fmt: skip
FIELDS = (*FIELDS_V1, "prev_hash")  # version 2
NULLABLE = {"code", "transaction_id", "member_id", "campaign_id", "variant", "channel"}
INTEGERS = {"schema_version", "seq", "amount"}

finite = st.floats(allow_nan=False, allow_infinity=False)
json_scalars = st.none() | st.booleans() | st.integers() | finite | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
times = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(9998, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
)
optional_text = st.none() | st.text(max_size=12)
EVENT = EventEnvelope(
    event_id=envelope.event_id(NOW, bytes(10)),
    box_id="b" * 32,
    seq=1,
    type=EventType.REDEEMED,
    occurred_at=NOW,
    code="SSK7HQ2P9XM",
    attribution=Attribution(store_id=STORE, till_id="till-1", cashier_id="c-1"),
    amount=500,
    details={"lines": [["milk", 250]]},
    prev_hash=envelope.GENESIS_HASH,
)
hashes = st.binary(min_size=32, max_size=32).map(bytes.hex)


@st.composite
def envelopes(draw: st.DrawFn, *, chained: bool | None = True) -> EventEnvelope:
    """Version 2 events (``chained``), version 1 history (False), or either (None)."""
    if chained is None:
        chained = draw(st.booleans())
    at = draw(times)
    return EventEnvelope(
        event_id=envelope.event_id(at, draw(st.binary(min_size=10, max_size=10))),
        box_id=draw(st.text(min_size=1, max_size=32)),
        seq=draw(st.integers(min_value=1, max_value=2**63 - 1)),
        type=draw(st.sampled_from(EventType)),
        occurred_at=at,
        code=draw(optional_text),
        attribution=Attribution(
            store_id=draw(st.text(min_size=1, max_size=12)),
            till_id=draw(st.text(max_size=12)),
            cashier_id=draw(st.text(max_size=12)),
            transaction_id=draw(optional_text),
            member_id=draw(optional_text),
            campaign_id=draw(optional_text),
            variant=draw(optional_text),
            channel=draw(optional_text),
        ),
        amount=draw(st.integers(min_value=-(2**63), max_value=2**63 - 1)),
        details=draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4)),
        prev_hash=draw(hashes) if chained else None,
    )


def typed(data: str | bytes) -> EventEnvelope | EnvelopeError:
    """decode's answer: an envelope or a typed error, and nothing else may escape."""
    try:
        return decode(data)
    except EnvelopeError as exc:
        assert exc.reason and str(exc)
        return exc


def doc_of(event: EventEnvelope) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(encode(event))
    return doc


@settings(max_examples=300)
@given(envelopes(chained=None))
def test_every_event_round_trips_byte_for_byte(event: EventEnvelope) -> None:
    text = encode(event)
    assert decode(text) == event
    assert decode(text.encode()) == event
    assert encode(decode(text)) == text  # canonical: one text per event
    doc = json.loads(text)
    chained = event.prev_hash is not None
    assert list(doc) == sorted(FIELDS if chained else FIELDS_V1)
    assert doc["schema_version"] == event.schema_version == (2 if chained else 1)
    assert text == json.dumps(doc, separators=(",", ":"), sort_keys=True)


@settings(max_examples=200)
@given(envelopes(chained=False))
def test_a_document_without_a_version_is_version_one(event: EventEnvelope) -> None:
    doc = doc_of(event)
    del doc["schema_version"]
    assert envelope.from_dict(doc) == event


@settings(max_examples=100)
@given(envelopes())
def test_only_version_one_may_omit_its_version(event: EventEnvelope) -> None:
    # A chained event without its version reads as version 1, which has no prev_hash.
    doc = doc_of(event)
    del doc["schema_version"]
    with pytest.raises(UnknownFieldError) as err:
        envelope.from_dict(doc)
    assert err.value.field == "prev_hash"


@settings(max_examples=100)
@given(envelopes(chained=False), hashes)
def test_version_one_has_no_prev_hash(event: EventEnvelope, prev: str) -> None:
    doc = {**doc_of(event), "prev_hash": prev}
    with pytest.raises(UnknownFieldError):
        envelope.from_dict(doc)
    assert envelope.from_dict({**doc, "schema_version": 2}).prev_hash == prev


def test_the_hash_is_sha256_of_the_stored_utf8_bytes() -> None:
    text = encode(replace(EVENT, code="café"))
    assert event_hash(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert envelope.GENESIS_HASH == "0" * 64


@settings(max_examples=300)
@given(envelopes(), st.sampled_from(FIELDS[1:]))
def test_a_missing_field_is_named(event: EventEnvelope, name: str) -> None:
    doc = doc_of(event)
    del doc[name]
    with pytest.raises(MissingFieldError) as err:
        envelope.from_dict(doc)
    assert err.value.field == name and err.value.reason == "missing_field"


def _accepted(name: str, value: object) -> bool:
    if name in INTEGERS:
        return type(value) is int
    if name == "details":
        return isinstance(value, dict)
    if name == "prev_hash":
        return isinstance(value, str)
    return isinstance(value, str) or (name in NULLABLE and value is None)


@settings(max_examples=500)
@given(envelopes(), st.sampled_from(FIELDS), json_values)
def test_a_field_of_the_wrong_type_is_named(event: EventEnvelope, name: str, value: object) -> None:
    if _accepted(name, value):
        return
    doc = doc_of(event)
    doc[name] = value
    with pytest.raises(WrongTypeError) as err:
        envelope.from_dict(doc)
    assert err.value.field == name and err.value.reason == "wrong_type"


@settings(max_examples=200)
@given(envelopes(), st.integers().filter(lambda v: v not in envelope.READABLE_VERSIONS))
def test_an_unknown_version_is_refused_before_anything_else(
    event: EventEnvelope, version: int
) -> None:
    doc = doc_of(event)
    doc["schema_version"] = version
    del doc["box_id"]  # the version decides the shape, so it is checked first
    with pytest.raises(UnknownVersionError) as err:
        envelope.from_dict(doc)
    assert err.value.version == version and err.value.reason == "unknown_version"


@settings(max_examples=200)
@given(envelopes(), st.text().filter(lambda k: k not in FIELDS), json_values)
def test_a_field_the_version_does_not_define_is_refused(
    event: EventEnvelope, key: str, value: object
) -> None:
    doc = doc_of(event)
    doc[key] = value
    with pytest.raises(UnknownFieldError) as err:
        envelope.from_dict(doc)
    assert err.value.field == key


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("event_id", "0" * 32),  # not UUIDv7 layout
        ("event_id", "X" * 32),
        ("box_id", ""),
        ("seq", 0),
        ("type", "code.teleported"),
        ("occurred_at", "2025-03-01T12:00:00"),  # no offset: whose noon?
        ("occurred_at", "yesterday"),
        ("occurred_at", "0001-01-01T00:00:00+05:30"),  # before year 1 in UTC
        ("store_id", ""),
        ("prev_hash", "0" * 63),
        ("prev_hash", "A" * 64),  # lowercase only: one text per hash
        ("prev_hash", ""),
    ],
)
def test_an_impossible_value_is_named(name: str, value: object) -> None:
    doc = doc_of(EVENT)
    doc[name] = value
    with pytest.raises(BadValueError) as err:
        envelope.from_dict(doc)
    assert err.value.field == name and err.value.reason == "bad_value"


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe{}",  # not UTF-8
        "",
        "[]",
        "null",
        '"an event"',
        "{",
        '{"seq": NaN}',
        "[" * 100_000 + "]" * 100_000,  # deeper than the parser's stack
    ],
)
def test_what_is_not_one_json_object_is_malformed(data: str | bytes) -> None:
    assert isinstance(typed(data), MalformedEnvelopeError)


def test_a_key_given_twice_is_malformed() -> None:
    # Readers disagree on which one counts (first or last): the envelope refuses both.
    text = encode(EVENT)
    twice = text[:-1] + ',"seq":2}'
    assert isinstance(typed(twice), MalformedEnvelopeError)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_bytes_get_a_typed_answer(data: bytes) -> None:
    typed(data)


@settings(max_examples=300)
@given(json_values)
def test_any_json_document_gets_a_typed_answer(value: object) -> None:
    typed(json.dumps(value))


@settings(max_examples=300)
@given(envelopes(), st.data())
def test_mangled_encodings_get_a_typed_answer(event: EventEnvelope, data: st.DataObject) -> None:
    text = encode(event)
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    char = data.draw(st.characters())
    assert isinstance(typed(text[:cut]), EnvelopeError) or cut == len(text)
    typed(text[:cut] + char + text[cut + 1 :])


def test_encoding_refuses_what_json_cannot_say() -> None:
    with pytest.raises(ValueError):
        encode(replace(EVENT, details={"x": float("nan")}))


# -- the box's tables ------------------------------------------------------------------------

# An event as the box stored it before the envelope carried its version: the text the agent
# of that time (commit 24c2e7a, ``LedgerEvent.to_json``) wrote for these arguments.
LEGACY_ID = "01955193de0070008203040506070809"
LEGACY_BODY = (
    '{"amount":500,"box_id":"0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f","campaign_id":"C1",'
    '"cashier_id":"k","channel":"app","code":"SSK7HQ2P9XMR","details":{"lines":[["SKU1",500]]},'
    '"event_id":"01955193de0070008203040506070809","member_id":"M1",'
    '"occurred_at":"2025-03-01T12:00:00+00:00","seq":1,"store_id":"S1","till_id":"till-1",'
    '"transaction_id":"T-1","type":"code.redeemed","variant":"A"}'
)


def test_box_stores_every_new_event_with_its_version_in_both_tables(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    with cache.transaction() as conn:
        written = _append(cache)
        assert conn is cache.conn
    (body,) = cache.conn.execute("SELECT body FROM events").fetchone()
    [pending] = cache.pending_outbox()
    assert pending.payload == body == encode(written)
    assert json.loads(body)["schema_version"] == 2
    assert written.prev_hash == envelope.GENESIS_HASH  # the first event of a fresh box
    assert decode(pending.payload) == written
    cache.close()


def test_rows_written_before_the_version_are_read_and_sent_as_version_one(
    tmp_path: Path,
) -> None:
    cache = open_cache(tmp_path / "c.db")
    with cache.transaction() as conn:  # as the old agent appended it
        conn.execute("UPDATE meta SET value = 2 WHERE key = 'next_seq'")
        conn.execute(
            "INSERT INTO events VALUES (1, ?, 'code.redeemed', 'SSK7HQ2P9XMR', 0, ?)",
            (LEGACY_ID, LEGACY_BODY),
        )
        conn.execute("INSERT INTO outbox VALUES (1, ?)", (LEGACY_BODY,))
        # where migration v9 starts the chain on a file holding this event
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'chain_head'", (event_hash(LEGACY_BODY),)
        )
    with cache.transaction():
        new = _append(cache)
    old_row, new_row = cache.pending_outbox()
    assert old_row.payload == LEGACY_BODY  # sent exactly as it was written
    old = decode(old_row.payload)
    assert old == EventEnvelope(
        event_id=LEGACY_ID,
        box_id="0f" * 16,
        seq=1,
        type=EventType.REDEEMED,
        occurred_at=NOW,
        code="SSK7HQ2P9XMR",
        attribution=Attribution(
            store_id="S1",
            till_id="till-1",
            cashier_id="k",
            transaction_id="T-1",
            member_id="M1",
            campaign_id="C1",
            variant="A",
            channel="app",
        ),
        amount=500,
        details={"lines": [["SKU1", 500]]},
        prev_hash=None,  # history: unchained
    )
    assert old.schema_version == 1
    # Re-encoded (as HQ may store it), it is the same event with its version said.
    assert json.loads(encode(old)) == {**json.loads(LEGACY_BODY), "schema_version": 1}
    assert decode(new_row.payload) == new and new.seq == 2
    assert new.prev_hash == event_hash(LEGACY_BODY)  # the chain pins the stored bytes
    cache.close()


def _append(cache: CodeCache) -> EventEnvelope:
    return event_log.append(
        cache.conn,
        box_id=cache.box_id,
        type=EventType.LINKED,
        occurred_at=NOW,
        code="SSK7HQ2P9XMR",
        attribution=Attribution(store_id=STORE, till_id="till-1", cashier_id="c-1"),
        details={"mode": "auto"},
    )

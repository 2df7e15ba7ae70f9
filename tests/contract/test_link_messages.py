"""HQ's ack and resend request, the box's state and health: round trips and typed refusals;
a version 1 health (a box from before config push) still read by HQ."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.contract import ack, config_result, follow_position, presence, snapshot_offer
from cloud_sync.contract.ack import Ack, ResendRequest, SeqRange
from cloud_sync.contract.config_result import ConfigResult, FieldError, Outcome
from cloud_sync.contract.decode_errors import (
    BadValueError,
    MissingFieldError,
    OversizeError,
    UnknownFieldError,
    UnknownVersionError,
    WrongTypeError,
)
from cloud_sync.contract.follow_position import FollowPosition
from cloud_sync.contract.message_codec import (
    MessageError,
)
from cloud_sync.contract.presence import BoxState, ConfigHealth, Health, State
from cloud_sync.contract.snapshot_offer import Offer, Request
from tests.contract.test_topics import ids

seqs = st.integers(min_value=1, max_value=2**63 - 1)
times = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(9998, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]),
).map(lambda t: t.astimezone(UTC))
short = st.text(st.characters(codec="utf-8"), max_size=20)


@st.composite
def ranges(draw: st.DrawFn, *, above: int = 0, min_size: int = 0) -> tuple[SeqRange, ...]:
    """Ascending ranges above ``above`` with a gap between neighbours."""
    out = []
    floor = above
    for _ in range(draw(st.integers(min_value=min_size, max_value=6))):
        first = floor + 1 + draw(st.integers(min_value=0, max_value=1000))
        last = first + draw(st.integers(min_value=0, max_value=1000))
        out.append(SeqRange(first=first, last=last))
        floor = last + 1
    return tuple(out)


@st.composite
def acks(draw: st.DrawFn) -> Ack:
    through = draw(st.integers(min_value=0, max_value=2**40))
    return Ack(
        store_id=draw(ids),
        box_id=draw(ids),
        stored_through=through,
        missing=draw(ranges(above=through)),
    )


resends = st.builds(
    ResendRequest, store_id=ids, box_id=ids, ranges=ranges(min_size=1)
)  # fmt: skip
states = st.builds(
    State, store_id=ids, box_id=ids, state=st.sampled_from(BoxState), session=seqs
)  # fmt: skip


@st.composite
def config_healths(draw: st.DrawFn) -> ConfigHealth:
    """What a box's health may say of HQ's config: an outcome comes with its time."""
    running = draw(st.none() | seqs)
    if not draw(st.booleans()):
        return ConfigHealth(version=running)
    return ConfigHealth(
        version=running,
        outcome=draw(st.sampled_from(Outcome)),
        outcome_version=draw(st.none() | seqs),
        outcome_at=draw(times),
    )


healths = st.builds(
    Health,
    store_id=ids,
    box_id=ids,
    session=seqs,
    at=times,
    agent_version=short,
    cache_version=st.none() | short,
    printer_state=short,
    outbox_depth=st.integers(min_value=0, max_value=10**9),
    oldest_unsent_at=st.none() | times,
    next_seq=seqs,
    acked_through=st.integers(min_value=0, max_value=10**12),
    last_ack_at=st.none() | times,
    oldest_retained_seq=st.none() | seqs,
    clock_offset_ms=st.none() | st.integers(min_value=-(10**9), max_value=10**9),
    config=config_healths(),
)
positions = st.builds(
    FollowPosition,
    store_id=ids,
    box_id=ids,
    stream=st.none() | st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    watermark=st.integers(min_value=0, max_value=2**63 - 1),
)
hex32 = st.from_regex(r"[0-9a-f]{32}", fullmatch=True)
snapshot_offers = st.builds(
    Offer,
    store_id=ids,
    snapshot_id=hex32,
    stream=hex32,
    seq=st.integers(min_value=0, max_value=2**63 - 1),
    size=st.integers(min_value=1, max_value=snapshot_offer.MAX_SIZE),
    sha256=st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
    chunk_bytes=st.integers(min_value=1, max_value=snapshot_offer.MAX_CHUNK_BYTES),
    created_at=times,
)
snapshot_requests = st.builds(
    Request,
    store_id=ids,
    box_id=ids,
    snapshot_id=hex32,
    offset=st.integers(min_value=0, max_value=snapshot_offer.MAX_SIZE),
)


def encoded_offer(offer: Offer) -> bytes:
    return snapshot_offer.encode_offer(offer).encode("ascii")


config_results = st.builds(
    ConfigResult,
    store_id=ids,
    box_id=ids,
    version=st.none() | seqs,
    running=st.none() | seqs,
    outcome=st.sampled_from(Outcome),
    errors=st.lists(st.builds(FieldError, short, short), max_size=config_result.MAX_ERRORS).map(
        tuple
    ),
    at=times,
)

# Each message kind: (strategy, encoder, decoder, its field table).
KINDS: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], bytes], Callable[..., Any], Any]]
KINDS = {
    "ack": (acks(), ack.encode_ack, ack.decode_ack, ack.ACK_FIELDS),
    "resend": (resends, ack.encode_resend, ack.decode_resend, ack.RESEND_FIELDS),
    "state": (states, presence.encode_state, presence.decode_state, presence.STATE_FIELDS),
    "health": (healths, presence.encode_health, presence.decode_health, presence.HEALTH_FIELDS),
    "position": (
        positions,
        follow_position.encode,
        follow_position.decode,
        follow_position.FIELDS,
    ),
    "snapshot_offer": (
        snapshot_offers,
        encoded_offer,
        snapshot_offer.decode_offer,
        snapshot_offer.OFFER_FIELDS,
    ),
    "snapshot_request": (
        snapshot_requests,
        snapshot_offer.encode_request,
        snapshot_offer.decode_request,
        snapshot_offer.REQUEST_FIELDS,
    ),
    "config_result": (
        config_results,
        config_result.encode,
        config_result.decode,
        config_result.FIELDS,
    ),
}


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=150)
@given(data=st.data())
def test_every_message_round_trips_byte_for_byte(kind: str, data: st.DataObject) -> None:
    strategy, encode, decode, _ = KINDS[kind]
    message = data.draw(strategy)
    encoded = encode(message)
    assert decode(encoded) == message
    assert decode(encoded.decode()) == message
    assert encode(decode(encoded)) == encoded
    assert json.loads(encoded)["schema_version"] == max(KINDS[kind][3])  # the newest


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=100)
@given(data=st.data())
def test_missing_extra_and_mistyped_fields_and_versions_are_named(
    kind: str, data: st.DataObject
) -> None:
    strategy, encode, decode, fields = KINDS[kind]
    doc = json.loads(encode(data.draw(strategy)))
    newest = max(fields)
    name = data.draw(st.sampled_from(sorted(fields[newest])))
    with pytest.raises(MissingFieldError) as missing:
        decode(json.dumps({k: v for k, v in doc.items() if k != name}))
    assert missing.value.field == name
    with pytest.raises(UnknownFieldError):
        decode(json.dumps({**doc, "extra": 1}))
    with pytest.raises(UnknownVersionError):
        decode(json.dumps({**doc, "schema_version": newest + 1}))
    wrong: object = [] if not isinstance(doc[name], list) else "x"
    with pytest.raises(WrongTypeError) as mistyped:
        decode(json.dumps({**doc, name: wrong}))
    assert mistyped.value.field == name


BAD_VALUES = [
    ("ack", {"stored_through": -1}),
    ("ack", {"stored_through": 10, "missing": [[5, 6]]}),  # not above stored_through
    ("ack", {"missing": [[3, 2]]}),
    ("ack", {"missing": [[1, 2], [3, 4]]}),  # neighbours without a gap: not canonical
    ("ack", {"missing": [[5, 6], [1, 2]]}),
    ("ack", {"missing": [[1, True]]}),
    ("ack", {"missing": [[1]]}),
    ("ack", {"missing": [[1, 2.0]]}),
    ("ack", {"missing": [[2 * i + 1, 2 * i + 1] for i in range(101)]}),
    ("ack", {"store_id": ""}),
    ("ack", {"box_id": "a#b"}),
    ("resend", {"ranges": []}),
    ("resend", {"ranges": [[0, 1]]}),
    ("state", {"state": "sleeping"}),
    ("state", {"session": 0}),
    ("health", {"at": "yesterday"}),
    ("health", {"at": "2026-01-01T00:00:00"}),  # no offset
    ("health", {"last_ack_at": "2026-13-01T00:00:00+00:00"}),
    ("health", {"outbox_depth": -1}),
    ("health", {"next_seq": 0}),
    ("health", {"oldest_retained_seq": 0}),
    ("health", {"agent_version": "x" * 201}),
    ("health", {"config_version": 0}),
    ("health", {"config_outcome": "maybe"}),
    ("health", {"config_outcome_version": 0}),
    ("health", {"config_outcome_at": "2026-01-01T00:00:00"}),  # no offset
    ("health", {"config_outcome": None}),  # a time without an outcome
    ("health", {"config_outcome_at": None}),  # an outcome without its time
    (
        "health",
        {"config_outcome": None, "config_outcome_at": None, "config_outcome_version": 3},
    ),  # about a version, but no outcome
    ("position", {"watermark": -1}),
    ("position", {"stream": "ABCDEF0123456789ABCDEF0123456789"}),
    ("position", {"stream": "0" * 31}),
    ("position", {"box_id": "+"}),
    ("snapshot_offer", {"size": 0}),
    ("snapshot_offer", {"chunk_bytes": 0}),
    ("snapshot_offer", {"chunk_bytes": 512 * 1024 + 1}),
    ("snapshot_offer", {"sha256": "A" * 64}),
    ("snapshot_offer", {"snapshot_id": "x" * 32}),
    ("snapshot_offer", {"created_at": "2026-01-01T00:00:00"}),
    ("snapshot_offer", {"store_id": "a/b"}),
    ("snapshot_request", {"offset": -1}),
    ("snapshot_request", {"snapshot_id": "0" * 31}),
    ("config_result", {"outcome": "maybe"}),
    ("config_result", {"version": 0}),
    ("config_result", {"running": -1}),
    ("config_result", {"errors": [{"path": "a"}]}),
    ("config_result", {"errors": [{"path": "a", "message": 1}]}),
    ("config_result", {"errors": [{"path": "a", "message": "m", "x": 1}]}),
    ("config_result", {"errors": ["a: m"]}),
    ("config_result", {"errors": [{"path": "a" * 201, "message": "m"}]}),
    ("config_result", {"errors": [{"path": "", "message": "m"}] * 101}),
    ("config_result", {"at": "2026-01-01T00:00:00"}),
    ("config_result", {"store_id": "a/b"}),
]
BASE: dict[str, dict[str, Any]] = {
    "ack": {"schema_version": 1, "store_id": "s", "box_id": "b", "stored_through": 0,
            "missing": []},
    "resend": {"schema_version": 1, "store_id": "s", "box_id": "b", "ranges": [[1, 2]]},
    "state": {"schema_version": 1, "store_id": "s", "box_id": "b", "state": "online",
              "session": 1},
    "health": {"schema_version": 2, "store_id": "s", "box_id": "b", "session": 1,
               "at": "2026-01-01T00:00:00+00:00", "agent_version": "0.1.0",
               "cache_version": None, "printer_state": "ok", "outbox_depth": 0,
               "oldest_unsent_at": None, "next_seq": 1, "acked_through": 0,
               "last_ack_at": None, "oldest_retained_seq": None, "clock_offset_ms": None,
               "config_version": 2, "config_outcome": "rolled_back",
               "config_outcome_version": 3, "config_outcome_at": "2026-01-01T00:00:00+00:00"},
    "position": {"schema_version": 1, "store_id": "s", "box_id": "b", "stream": None,
                 "watermark": 0},
    "snapshot_offer": {"schema_version": 1, "store_id": "s", "snapshot_id": "0" * 32,
                       "stream": "1" * 32, "seq": 0, "size": 1, "sha256": "2" * 64,
                       "chunk_bytes": 1, "created_at": "2026-01-01T00:00:00+00:00"},
    "snapshot_request": {"schema_version": 1, "store_id": "s", "box_id": "b",
                         "snapshot_id": "0" * 32, "offset": 0},
    "config_result": {"schema_version": 1, "store_id": "s", "box_id": "b", "version": 3,
                      "running": 2, "outcome": "rejected",
                      "errors": [{"path": "api.port", "message": "too big"}],
                      "at": "2026-01-01T00:00:00+00:00"},
}  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_the_base_documents_are_valid(kind: str) -> None:
    KINDS[kind][2](json.dumps(BASE[kind]))


@pytest.mark.parametrize(("kind", "change"), BAD_VALUES)
def test_an_impossible_value_is_named(kind: str, change: dict[str, Any]) -> None:
    with pytest.raises(BadValueError) as err:
        KINDS[kind][2](json.dumps({**BASE[kind], **change}))
    assert err.value.field in change and err.value.reason == "bad_value"


@pytest.mark.parametrize("kind", KINDS)
def test_oversize_is_refused(kind: str) -> None:
    with pytest.raises(OversizeError):
        KINDS[kind][2](b" " * 300_000)


def test_a_message_with_no_version_is_refused() -> None:
    doc = {k: v for k, v in BASE["ack"].items() if k != "schema_version"}
    with pytest.raises(MissingFieldError) as err:
        ack.decode_ack(json.dumps(doc))
    assert err.value.field == "schema_version"
    assert isinstance(err.value, MessageError)


# -- health: boxes and HQ upgrade separately ---------------------------------------------------

V1_HEALTH = {k: v for k, v in BASE["health"].items() if not k.startswith("config_")}


def test_a_version_1_health_is_read_with_no_config_known() -> None:
    health = presence.decode_health(json.dumps({**V1_HEALTH, "schema_version": 1}))
    assert health.config == ConfigHealth()
    assert health.next_seq == 1 and health.printer_state == "ok"


@pytest.mark.parametrize("name", ["config_version", "config_outcome"])
def test_version_1_has_no_config_fields_and_version_2_needs_them(name: str) -> None:
    with pytest.raises(UnknownFieldError) as extra:
        presence.decode_health(json.dumps({**V1_HEALTH, "schema_version": 1, name: None}))
    assert extra.value.field == name
    with pytest.raises(MissingFieldError) as missing:
        presence.decode_health(json.dumps(V1_HEALTH))  # says 2, has only 1's fields
    assert missing.value.field.startswith("config_")


def test_the_config_in_health_is_read_as_the_box_said_it() -> None:
    health = presence.decode_health(json.dumps(BASE["health"]))
    assert health.config == ConfigHealth(
        version=2,
        outcome=Outcome.ROLLED_BACK,
        outcome_version=3,
        outcome_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_version_3_carries_the_devices_state_and_version_2_does_not() -> None:
    said = "ble coffee-scanner scanning; nfc till-1-reader absent: not_found"
    v3 = {**BASE["health"], "schema_version": 3, "devices_state": said}
    health = presence.decode_health(json.dumps(v3))
    assert health.devices_state == said
    assert presence.decode_health(presence.encode_health(health)) == health
    with pytest.raises(UnknownFieldError) as extra:
        presence.decode_health(json.dumps({**v3, "schema_version": 2}))
    assert extra.value.field == "devices_state"
    with pytest.raises(BadValueError) as long:
        presence.decode_health(json.dumps({**v3, "devices_state": "x" * 601}))
    assert long.value.field == "devices_state"

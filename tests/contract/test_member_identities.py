"""Members' presence identities on the wire: the body round-trips byte for byte, every fault is
a typed refusal naming its field, arbitrary input only ever raises the contract's errors, the
delta op carries a checked salt, and the card digest is the written-out construction."""

from __future__ import annotations

import contextlib
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.contract import delta as deltas
from cloud_sync.contract import member_identities as mi
from cloud_sync.contract.card_uid import UID_CONTEXT, uid_digest
from cloud_sync.contract.decode_errors import (
    BadValueError,
    DecodeError,
    MalformedError,
    MissingFieldError,
    OversizeError,
    UnknownFieldError,
    UnknownVersionError,
    WrongTypeError,
)
from cloud_sync.contract.delta import Change, Delta, Op
from cloud_sync.contract.member_identities import IdentityKey, IdentitySet, IdentityTag
from edge_agent.presence.frames.refusal import FrameKind

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
times = st.integers(min_value=-(10**9), max_value=10**9).map(lambda s: T0 + timedelta(seconds=s))
hex_ids = st.from_regex(r"[0-9a-f]{16}", fullmatch=True)


@st.composite
def identity_keys(draw: st.DrawFn) -> IdentityKey:
    start, until = draw(st.none() | times), draw(st.none() | times)
    if start is not None and until is not None and until <= start:
        until = start + timedelta(seconds=1)
    return IdentityKey(
        key_id=draw(hex_ids),
        key=draw(st.binary(min_size=16, max_size=16)),
        valid_from=start,
        valid_until=until,
    )


tags = st.sampled_from(sorted(mi.TAG_BYTES)).flatmap(
    lambda kind: st.binary(min_size=mi.TAG_BYTES[kind], max_size=mi.TAG_BYTES[kind]).map(
        lambda value: IdentityTag(kind=kind, value=value)
    )
)
identity_sets = st.builds(
    IdentitySet,
    keys=st.lists(identity_keys(), max_size=mi.MAX_KEYS, unique_by=lambda k: k.key_id).map(
        lambda ks: tuple(sorted(ks, key=lambda k: k.key_id))
    ),
    tags=st.lists(tags, max_size=mi.MAX_TAGS, unique=True).map(
        lambda ts: tuple(sorted(ts, key=lambda t: (t.kind, t.value)))
    ),
    cards=st.lists(st.from_regex(r"[0-9a-f]{64}", fullmatch=True), max_size=4, unique=True).map(
        lambda cs: tuple(sorted(cs))
    ),
)


@given(identity_sets)
def test_a_set_round_trips_byte_for_byte(value: IdentitySet) -> None:
    text = mi.encode_body(value)
    back = mi.decode_body(text)
    assert back == value
    assert mi.encode_body(back) == text
    assert len(text.encode()) <= mi.MAX_BODY_BYTES


def test_the_empty_set_is_one_text_and_order_does_not_change_it() -> None:
    assert mi.encode_body(mi.EMPTY) == '{"cards":[],"keys":[],"schema_version":1,"tags":[]}'
    a = IdentityTag(kind="ibeacon", value=bytes(20))
    b = IdentityTag(kind="eddystone_uid", value=bytes(16))
    assert mi.encode_body(IdentitySet(tags=(a, b))) == mi.encode_body(IdentitySet(tags=(b, a)))


def _good() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        mi.encode_body(
            IdentitySet(
                keys=(IdentityKey(key_id="0123456789abcdef", key=bytes(16), valid_from=T0),),
                tags=(IdentityTag(kind="altbeacon", value=bytes(range(20))),),
                cards=("ab" * 32,),
            )
        )
    )
    return doc


@pytest.mark.parametrize(
    ("mangle", "error", "field"),
    [
        (lambda d: d.pop("tags"), MissingFieldError, "tags"),
        (lambda d: d.update(phones=[]), UnknownFieldError, "phones"),
        (lambda d: d.update(schema_version=2), UnknownVersionError, "schema_version"),
        (lambda d: d.update(keys={}), WrongTypeError, "keys"),
        (lambda d: d["keys"].append(5), WrongTypeError, "keys[1]"),
        (lambda d: d["keys"][0].pop("key"), MissingFieldError, "keys[0].key"),
        (lambda d: d["keys"][0].update(mac="x"), UnknownFieldError, "keys[0].mac"),
        (lambda d: d["keys"][0].update(key_id="K1"), BadValueError, "keys[0].key_id"),
        (lambda d: d["keys"][0].update(key="00" * 15), BadValueError, "keys[0].key"),
        (lambda d: d["keys"][0].update(key="AA" * 16), BadValueError, "keys[0].key"),
        (lambda d: d["keys"][0].update(key=None), WrongTypeError, "keys[0].key"),
        (lambda d: d["keys"][0].update(valid_from="soon"), BadValueError, "keys[0].valid_from"),
        (
            lambda d: d["keys"][0].update(valid_from="2026-03-01T09:00:00"),  # no offset
            BadValueError,
            "keys[0].valid_from",
        ),
        (
            lambda d: d["keys"][0].update(valid_until=d["keys"][0]["valid_from"]),
            BadValueError,
            "keys[0].valid_until",
        ),
        (lambda d: d["keys"].append(dict(d["keys"][0])), BadValueError, "keys"),
        (lambda d: d["keys"].extend([d["keys"][0]] * mi.MAX_KEYS), BadValueError, "keys"),
        (lambda d: d["tags"][0].update(kind="eddystone_url"), BadValueError, "tags[0].kind"),
        (
            lambda d: d["tags"][0].update(kind="ibeacon", value="00" * 16),
            BadValueError,
            "tags[0].value",
        ),
        (lambda d: d["tags"].append(dict(d["tags"][0])), BadValueError, "tags"),
        (lambda d: d["cards"].append(d["cards"][0]), BadValueError, "cards"),
        (lambda d: d["cards"].append("04a1b2c3"), BadValueError, "cards[1]"),  # a raw UID
        (lambda d: d["cards"].append(7), WrongTypeError, "cards[1]"),
    ],
)
def test_a_bad_body_is_refused_naming_its_field(
    mangle: Any, error: type[DecodeError], field: str
) -> None:
    doc = _good()
    mangle(doc)
    with pytest.raises(error) as raised:
        mi.decode_body(json.dumps(doc))
    assert raised.value.field == field


def test_malformed_and_oversized_bodies_are_refused() -> None:
    with pytest.raises(MalformedError):
        mi.decode_body('{"keys": [], "keys": []}')
    with pytest.raises(MalformedError):
        mi.decode_body("[]")
    with pytest.raises(OversizeError):
        mi.decode_body(" " * (mi.MAX_BODY_BYTES + 1))


def test_encode_refuses_a_set_the_decoder_would() -> None:
    with pytest.raises(ValueError, match="key_id"):
        mi.encode_body(IdentitySet(keys=(IdentityKey(key_id="short", key=bytes(16)),)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _near(doc: dict[str, Any], path: list[str | int], value: object) -> str:
    """``doc`` with the value at ``path`` (as far as it goes) replaced."""
    here: Any = doc
    for step in path[:-1]:
        try:
            here = here[step]
        except (KeyError, IndexError, TypeError):
            break
    else:
        if isinstance(here, dict | list):
            with contextlib.suppress(IndexError, TypeError):
                here[path[-1]] = value
    return json.dumps(doc)


@given(
    st.one_of(
        st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
        json_values.map(json.dumps),
        st.builds(
            _near,
            st.builds(_good),
            st.lists(
                st.sampled_from(
                    [
                        "keys",
                        "tags",
                        "cards",
                        0,
                        1,
                        "key",
                        "kind",
                        "value",
                        "valid_from",
                        "valid_until",
                        "key_id",
                    ]
                ),
                min_size=1,
                max_size=3,
            ),
            json_values,
        ),
    )
)
def test_the_decoder_only_ever_answers_a_set_or_a_typed_refusal(text: str) -> None:
    try:
        found = mi.decode_body(text)
    except DecodeError as exc:
        assert exc.reason != "undecodable"
        return
    assert mi.decode_body(mi.encode_body(found)) == found


def test_tag_kinds_and_lengths_are_the_frame_parsers() -> None:
    assert set(mi.TAG_BYTES) == {FrameKind.IBEACON, FrameKind.ALTBEACON, FrameKind.EDDYSTONE_UID}


def test_the_card_digest_is_the_written_out_construction() -> None:
    salt, uid = bytes(range(16)), bytes.fromhex("04a1b2c3d4e5f6")
    by_hand = hashlib.sha256(b"storeside/nfc-uid/v1\x00" + b"\x00\x10" + salt + uid).hexdigest()
    assert uid_digest(uid, salt=salt) == by_hand
    assert UID_CONTEXT == b"storeside/nfc-uid/v1\x00"
    assert uid_digest(uid, salt=salt) != uid_digest(uid, salt=salt[:-1])


def _op(**override: str) -> Change:
    fields = {"member_id": "m-1", "card_salt": "ab" * 16, "body": mi.encode_body(mi.EMPTY)}
    return Change(op=Op.MEMBER_IDENTITIES, fields={**fields, **override})


def test_the_delta_op_round_trips_and_checks_its_salt() -> None:
    value = Delta(store_id="s-1", stream="0" * 32, seq=1, issued_at=T0, changes=(_op(),))
    assert deltas.decode(deltas.encode(value)) == value
    for salt in ("ab" * 15, "AB" * 16, "zz" * 16, "ab" * 17):
        bad = Delta(
            store_id="s-1", stream="0" * 32, seq=1, issued_at=T0, changes=(_op(card_salt=salt),)
        )
        with pytest.raises(BadValueError) as raised:
            deltas.decode(deltas.encode(bad))
        assert raised.value.field == "changes[0].card_salt"

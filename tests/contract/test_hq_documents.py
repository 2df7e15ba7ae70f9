"""HQ's documents to its stores: the signed envelope (``hq_document``) and the code cache delta
(``delta``): every one round-trips byte for byte, each fault is a typed error naming its
field (``changes[i].name`` inside a delta), and a delta's place against a box's watermark."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.contract import delta as deltas
from cloud_sync.contract import hq_document, hq_key
from cloud_sync.contract.decode_errors import (
    BadValueError,
    MissingFieldError,
    UnknownFieldError,
    WrongTypeError,
)
from cloud_sync.contract.delta import CHANGE_FIELDS, Change, Delta, Op, Place, place
from cloud_sync.contract.hq_document import Document, Kind, SignedDocument
from cloud_sync.contract.hq_key import KeyAnnouncement

STREAM = "0123456789abcdef0123456789abcdef"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
names = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12)
levels = st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True)
times = st.integers(min_value=0, max_value=10**9).map(lambda s: T0 + timedelta(seconds=s))
counts = st.integers(min_value=0, max_value=2**63 - 1)


def _change_fields(op: Op) -> st.SearchStrategy[dict[str, Any]]:
    kinds = {
        "STR": names,
        "OPT_STR": st.none() | names,
        "INT": counts,
        "SIGNED": st.integers(min_value=-(2**63 - 1), max_value=2**63 - 1),
        "BOOL": st.booleans(),
        "TIME": times,
        "OPT_TIME": st.none() | times,
    }
    table = {name: kinds[kind.name] for name, kind in CHANGE_FIELDS[op].items()}
    if op in deltas.ELSEWHERE_OPS:
        table |= {"store_id": levels, "box_id": levels}
    if op in (Op.STORE_KEY_REGISTERED, Op.STORE_KEY_REVOKED):
        table["key_id"] = st.from_regex(r"[0-9a-f]{8}", fullmatch=True)
    if op is Op.MEMBER_IDENTITIES:  # the body is the box's to decode; the salt is checked here
        table["card_salt"] = st.from_regex(r"[0-9a-f]{32}", fullmatch=True)
    fields = st.fixed_dictionaries(table)
    if op is Op.CODE_ISSUED:
        fields = fields.filter(
            lambda f: (
                f["issued_at"] is None
                or f["expires_at"] is None
                or f["expires_at"] > f["issued_at"]
            )
        )
    return fields


changes = st.sampled_from(list(Op)).flatmap(
    lambda op: _change_fields(op).map(lambda f: Change(op=op, fields=f))
)
delta_values = st.builds(
    Delta,
    store_id=levels,
    stream=st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    seq=st.integers(1, 2**63 - 1),
    issued_at=times,
    changes=st.lists(changes, min_size=1, max_size=6).map(tuple),
)
signed_documents = st.builds(
    SignedDocument,
    document=st.builds(
        Document,
        kind=st.sampled_from(list(Kind)),
        key_id=st.from_regex(r"[0-9a-f]{8}", fullmatch=True),
        body=st.text(st.characters(codec="utf-8"), max_size=200),
    ),
    signature=st.binary(min_size=64, max_size=64),
)


key_ids = st.from_regex(r"[0-9a-f]{8}", fullmatch=True)
announcements = st.builds(
    KeyAnnouncement,
    key_id=key_ids,
    public_key=st.binary(min_size=32, max_size=32),
    announced_at=times,
).flatmap(
    lambda a: st.one_of(
        st.just(a),
        st.tuples(key_ids.filter(lambda k: k != a.key_id), times).map(
            lambda r: KeyAnnouncement(
                key_id=a.key_id,
                public_key=a.public_key,
                announced_at=a.announced_at,
                retires=r[0],
                retire_at=r[1],
            )
        ),
    )
)


def encoded_announcement(value: KeyAnnouncement) -> bytes:
    return hq_key.encode(value).encode("ascii")


@settings(max_examples=150)
@given(value=announcements)
def test_a_key_announcement_round_trips_byte_for_byte(value: KeyAnnouncement) -> None:
    text = hq_key.encode(value)
    assert hq_key.decode(text) == value
    assert hq_key.encode(hq_key.decode(text.encode())) == text


def test_an_announcement_retires_with_a_time_or_not_at_all() -> None:
    plain = KeyAnnouncement(key_id="0a1b2c3d", public_key=bytes(32), announced_at=T0)
    doc = json.loads(hq_key.encode(plain))
    for change, field in (
        ({"retires": "11111111"}, "retire_at"),
        ({"retires": "0a1b2c3d", "retire_at": T0.isoformat()}, "retires"),
        ({"public_key": doc["public_key"][:-1] + "B"}, "public_key"),  # not canonical
        ({"public_key": "AAAA"}, "public_key"),
    ):
        with pytest.raises(BadValueError) as raised:
            hq_key.decode(json.dumps({**doc, **change}))
        assert raised.value.field == field


def encoded_delta(value: Delta) -> bytes:
    return deltas.encode(value).encode("ascii")


@settings(max_examples=200)
@given(value=delta_values)
def test_a_delta_round_trips_byte_for_byte(value: Delta) -> None:
    text = deltas.encode(value)
    assert deltas.decode(text) == value
    assert deltas.encode(deltas.decode(text.encode())) == text


@settings(max_examples=150)
@given(value=signed_documents)
def test_a_signed_document_round_trips_byte_for_byte(value: SignedDocument) -> None:
    data = hq_document.encode(value)
    assert hq_document.decode(data) == value
    assert hq_document.encode(hq_document.decode(data)) == data


def test_the_signed_bytes_name_the_kind_so_one_signature_cannot_serve_two_kinds() -> None:
    body = deltas.encode(_delta(_issued()))
    as_delta = Document(kind=Kind.DELTA, key_id="0a1b2c3d", body=body)
    as_config = Document(kind=Kind.CONFIG, key_id="0a1b2c3d", body=body)
    assert hq_document.signing_bytes(as_delta) != hq_document.signing_bytes(as_config)
    assert hq_document.signing_bytes(as_delta).startswith(hq_document.SIGNING_CONTEXT)
    changed = Document(kind=Kind.DELTA, key_id="0a1b2c3d", body=body.replace("SS", "ST"))
    assert hq_document.signing_bytes(changed) != hq_document.signing_bytes(as_delta)


def _issued(**override: object) -> Change:
    fields: dict[str, object] = {
        "code": "SSK7HQ2P9XM",
        "campaign_id": "SPRING",
        "member_id": None,
        "channel": "app",
        "variant": "A",
        "issued_at": T0,
        "expires_at": T0 + timedelta(days=14),
    }
    return Change(op=Op.CODE_ISSUED, fields={**fields, **override})


def _delta(*changes: Change, seq: int = 7) -> Delta:
    return Delta(store_id="store-001", stream=STREAM, seq=seq, issued_at=T0, changes=changes)


def _doc(value: Delta) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(deltas.encode(value))
    return loaded


@pytest.mark.parametrize(
    ("mangle", "error", "field"),
    [
        (lambda c: c.pop("campaign_id"), MissingFieldError, "changes[1].campaign_id"),
        (lambda c: c.update(colour="red"), UnknownFieldError, "changes[1].colour"),
        (lambda c: c.update(channel=5), WrongTypeError, "changes[1].channel"),
        (lambda c: c.update(channel=""), BadValueError, "changes[1].channel"),
        (lambda c: c.update(issued_at="yesterday"), BadValueError, "changes[1].issued_at"),
        (lambda c: c.update(expires_at="2026-03-01T08:00:00+00:00"), BadValueError, None),
        (lambda c: c.update(op="code.teleported"), BadValueError, "changes[1].op"),
        (lambda c: c.pop("op"), MissingFieldError, "changes[1].op"),
    ],
)
def test_a_bad_change_is_named_by_its_place_and_field(
    mangle: Any, error: type[Exception], field: str | None
) -> None:
    doc = _doc(_delta(_issued(code="SSFIRST0001"), _issued()))
    mangle(doc["changes"][1])
    with pytest.raises(error) as raised:
        deltas.decode(json.dumps(doc))
    assert getattr(raised.value, "field", None) == (field or "changes[1].expires_at")


def test_booleans_are_not_counts_and_counts_are_not_booleans() -> None:
    used = Change(
        op=Op.CAMPAIGN_USED_ELSEWHERE,
        fields={
            "campaign_id": "SPRING",
            "store_id": "s-2",
            "box_id": "b-2",
            "redemptions": 3,
            "discount": 450,
        },
    )
    member = Change(
        op=Op.MEMBER_CHANGED,
        fields={"member_id": "m-1", "segment": "new", "tier": "gold", "proximity_consent": True},
    )
    doc = _doc(_delta(used, member))
    doc["changes"][0]["redemptions"] = True
    with pytest.raises(WrongTypeError):
        deltas.decode(json.dumps(doc))
    doc = _doc(_delta(used, member))
    doc["changes"][1]["proximity_consent"] = 1
    with pytest.raises(WrongTypeError):
        deltas.decode(json.dumps(doc))
    doc = _doc(_delta(used, member))
    doc["changes"][0]["discount"] = -1
    with pytest.raises(BadValueError):
        deltas.decode(json.dumps(doc))


def test_a_redemption_elsewhere_names_a_real_place_and_a_count() -> None:
    elsewhere = Change(
        op=Op.CODE_REDEEMED_ELSEWHERE,
        fields={
            "code": "SSK7HQ2P9XM",
            "store_id": "store-002",
            "box_id": "box-9",
            "till_id": None,
            "transaction_id": "tx-1",
            "at": T0,
            "uses": 1,
        },
    )
    assert deltas.decode(deltas.encode(_delta(elsewhere))).changes == (elsewhere,)
    for name, value in (("uses", -1), ("store_id", "a/b"), ("box_id", "+")):
        _refused(elsewhere, name, value, BadValueError)


def _refused(change: Change, name: str, value: object, error: type[Exception]) -> None:
    """``change`` with field ``name`` set to ``value`` is refused with ``error`` naming it."""
    doc = _doc(_delta(change))
    doc["changes"][0][name] = value
    with pytest.raises(error) as raised:
        deltas.decode(json.dumps(doc))
    assert getattr(raised.value, "field", None) == f"changes[0].{name}"


def test_an_issue_elsewhere_names_a_real_place_a_sale_and_a_time() -> None:
    issued = Change(
        op=Op.MEMBER_ISSUED_ELSEWHERE,
        fields={
            "member_id": "M1001",
            "store_id": "store-002",
            "box_id": "box-9",
            "till_id": "till-1",
            "transaction_id": "T-1001",
            "at": T0,
        },
    )
    assert deltas.decode(deltas.encode(_delta(issued))).changes == (issued,)
    for name, value, error in (
        ("store_id", "a/b", BadValueError),
        ("box_id", "#", BadValueError),
        ("till_id", "", BadValueError),  # the sale's key: never empty
        ("transaction_id", None, WrongTypeError),
        ("member_id", None, WrongTypeError),  # an issue without a member is never sent
        ("at", "2026-03-01T09:00:00", BadValueError),  # no offset
        ("campaign_id", "SPRING", UnknownFieldError),  # what the cap does not need: not sent
    ):
        _refused(issued, name, value, error)


@pytest.mark.parametrize(
    ("name", "value"),
    [("stream", "not-hex"), ("seq", 0), ("store_id", "a/b"), ("changes", []), ("issued_at", "x")],
)
def test_a_bad_delta_header_is_named(name: str, value: object) -> None:
    doc = _doc(_delta(_issued()))
    doc[name] = value
    with pytest.raises(BadValueError) as raised:
        deltas.decode(json.dumps(doc))
    assert raised.value.field == name


@pytest.mark.parametrize(
    ("seq", "stream", "watermark", "expected"),
    [
        (8, STREAM, 7, Place.NEXT),
        (7, STREAM, 7, Place.DUPLICATE),
        (3, STREAM, 7, Place.DUPLICATE),
        (9, STREAM, 7, Place.GAP),
        (1, STREAM, 0, Place.NEXT),
        (8, "f" * 32, 7, Place.OTHER_STREAM),
    ],
)
def test_a_delta_falls_next_duplicate_gap_or_on_another_stream(
    seq: int, stream: str, watermark: int, expected: Place
) -> None:
    assert place(_delta(_issued(), seq=seq), stream=stream, watermark=watermark) is expected


def test_a_document_of_an_unknown_kind_or_a_bad_signature_is_refused() -> None:
    body = deltas.encode(_delta(_issued()))
    signed = SignedDocument(
        document=Document(kind=Kind.DELTA, key_id="0a1b2c3d", body=body), signature=bytes(64)
    )
    doc = json.loads(hq_document.encode(signed))
    for name, value in (("kind", "firmware"), ("key_id", "XYZ"), ("signature", "00")):
        with pytest.raises(BadValueError) as raised:
            hq_document.decode(json.dumps({**doc, name: value}))
        assert raised.value.field == name


def test_a_delta_over_its_bound_is_not_made() -> None:
    many = tuple(_issued(code=f"SS{i:09d}", campaign_id="C" * 400) for i in range(2000))
    with pytest.raises(ValueError, match="over the bound"):
        deltas.encode(_delta(*many))

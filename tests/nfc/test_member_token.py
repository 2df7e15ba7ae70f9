"""The member token: round trip, every refusal with its reason, and a decoder that never raises."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.contract import member_token
from edge_agent.presence.member_token_verify import (
    RefusedToken,
    TokenRefusal,
    decode_and_verify,
)
from edge_agent.presence.ndef_message import NdefRecord
from edge_agent.sync.hq_trust import HqKey, HqTrust
from tests.nfc.factories import NOW, PHONE_MEMBER, hq_key, raw_public, token, trust

TYPE = member_token.RECORD_TYPE


def verify(payload: bytes, *, record_type: str = TYPE, on: HqTrust | None = None) -> object:
    record = NdefRecord(record_type, "", payload)
    return decode_and_verify(record, trust=on or trust(), now=NOW)


def reason(found: object) -> TokenRefusal:
    assert isinstance(found, RefusedToken), found
    return found.reason


def test_a_token_signed_by_the_pinned_hq_key_names_its_member() -> None:
    assert verify(token()) == PHONE_MEMBER
    assert len(token("M" * 64)) == member_token.MAX_PAYLOAD_BYTES


def test_a_token_signed_by_an_announced_key_is_believed_until_that_key_retires() -> None:
    nxt = hq_key(9)
    announced = trust(nxt)
    assert verify(token(key=nxt), on=announced) == PHONE_MEMBER
    (key,) = announced.announced
    gone = HqKey(key_id=key.key_id, public_key=key.public_key, retire_at=NOW - timedelta(seconds=1))
    retired = HqTrust.pinned(raw_public(hq_key()), [gone])
    assert reason(verify(token(key=nxt), on=retired)) is TokenRefusal.RETIRED_KEY


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (token(key=hq_key(3)), TokenRefusal.UNKNOWN_KEY),
        (token()[:-1] + bytes([token()[-1] ^ 1]), TokenRefusal.FORGED),
        (token().replace(PHONE_MEMBER.encode(), b"M-phone-8"), TokenRefusal.FORGED),
        (token(issued=NOW - timedelta(days=2)), TokenRefusal.EXPIRED),
        (token(issued=NOW + timedelta(hours=1)), TokenRefusal.NOT_YET_VALID),
        (token()[:40], TokenRefusal.MALFORMED),
        (b"\x02" + token()[1:], TokenRefusal.MALFORMED),
        (token() + b"\x00", TokenRefusal.MALFORMED),
        (b"\x01" * 400, TokenRefusal.OVERSIZED),
    ],
    ids=[
        "unknown-key",
        "bit-flip",
        "other-member",
        "expired",
        "future",
        "truncated",
        "version",
        "trailing",
        "oversized",
    ],
)
def test_a_bad_token_is_refused_with_its_reason(payload: bytes, expected: TokenRefusal) -> None:
    assert reason(verify(payload)) is expected


def test_clock_skew_is_allowed_both_ways_but_no_further() -> None:
    assert verify(token(issued=NOW + timedelta(minutes=4))) == PHONE_MEMBER
    just_expired = token(issued=NOW - timedelta(days=1, minutes=4))
    assert verify(just_expired) == PHONE_MEMBER
    assert reason(verify(token(issued=NOW - timedelta(days=1, minutes=6)))) is TokenRefusal.EXPIRED


def test_a_record_of_another_type_is_not_a_token() -> None:
    assert reason(verify(token(), record_type="urn:nfc:wkt:T")) is TokenRefusal.WRONG_TYPE


def test_the_signature_covers_its_own_context_so_no_other_hq_signature_passes() -> None:
    key = hq_key()
    body = member_token.decode(token())
    assert isinstance(body, member_token.TokenLayout)
    unprefixed = body.signed[len(member_token.SIGNING_CONTEXT) :] + key.sign(
        body.signed[len(member_token.SIGNING_CONTEXT) :]
    )
    assert reason(verify(unprefixed)) is TokenRefusal.FORGED


def test_claims_no_token_can_hold_are_refused_at_issue() -> None:
    for member in ("", "M" * 65, "has space", "é"):
        with pytest.raises(ValueError, match="member id"):
            token(member)
    with pytest.raises(ValueError, match="expires after"):
        token(lifetime=timedelta(0))


@given(st.binary(max_size=300))
def test_any_payload_is_a_member_or_a_refusal_never_an_exception(payload: bytes) -> None:
    found = verify(payload)
    assert isinstance(found, RefusedToken) and found.reason is not TokenRefusal.WRONG_TYPE


@given(st.integers(0, 141), st.integers(0, 255))
def test_no_single_byte_change_of_a_valid_token_passes(index: int, value: int) -> None:
    good = token()
    changed = good[:index] + bytes([value]) + good[index + 1 :]
    if changed != good:
        assert isinstance(verify(changed), RefusedToken)

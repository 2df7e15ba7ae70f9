"""Each refusal reason, on frames cut, padded or corrupted from a real capture."""

from __future__ import annotations

import pytest

from edge_agent.presence.frames.altbeacon import parse_altbeacon
from edge_agent.presence.frames.eddystone import (
    EddystoneEncryptedTlm,
    EddystoneTlm,
    EddystoneUid,
    parse_eddystone,
)
from edge_agent.presence.frames.eddystone_url import decode_url, encode_url
from edge_agent.presence.frames.ibeacon import parse_ibeacon
from edge_agent.presence.frames.member import parse_member_frame
from edge_agent.presence.frames.refusal import FrameKind, Refusal, RefusalReason

# From the fixtures (Bluetooth-Devices/ibeacon-ble, AltBeacon/android-beacon-library, AOSP).
IBEACON = bytes.fromhex("0215426c7565436861726d426561636f6e730efe1355c5")
ALTBEACON = bytes.fromhex("beac2f234454cf6d4a0fadf2f4911ba9ffa600010002c509")
UID = bytes.fromhex("00ee626c7565636861726d310000000000010000")
URL = bytes.fromhex("10ee01626c7565636861726d626561636f6e7300")
TLM = bytes.fromhex("20000bf017000008874803fb9354")


def reason(answer: object) -> RefusalReason:
    assert isinstance(answer, Refusal), answer
    return answer.reason


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (IBEACON[:-1], RefusalReason.TRUNCATED),
        (IBEACON + b"\0", RefusalReason.OVERSIZED),
        (b"\x02\x14" + IBEACON[2:], RefusalReason.WRONG_LENGTH),
        (b"\x02", RefusalReason.TRUNCATED),
        (b"\x10\x05\x00", RefusalReason.UNKNOWN_FRAME_TYPE),
    ],
)
def test_ibeacon_refusals(data: bytes, expected: RefusalReason) -> None:
    assert reason(parse_ibeacon(data)) == expected


def test_altbeacon_refusals() -> None:
    assert reason(parse_altbeacon(0x118, ALTBEACON[:-1])) == RefusalReason.TRUNCATED
    assert reason(parse_altbeacon(0x118, ALTBEACON + b"\0")) == RefusalReason.OVERSIZED
    assert reason(parse_altbeacon(0x118, b"\xff" + ALTBEACON[1:])) == (
        RefusalReason.UNKNOWN_FRAME_TYPE
    )


def test_eddystone_uid_accepts_the_reserved_bytes_or_their_absence() -> None:
    assert isinstance(parse_eddystone(UID), EddystoneUid)
    assert parse_eddystone(UID[:-2]) == parse_eddystone(UID)
    assert reason(parse_eddystone(UID[:-3])) == RefusalReason.TRUNCATED
    assert reason(parse_eddystone(UID + b"\0")) == RefusalReason.OVERSIZED


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (URL[:2], RefusalReason.TRUNCATED),
        (URL[:2] + b"\x04", RefusalReason.BAD_URL_SCHEME),
        (URL[:3] + b"abc\x0edef", RefusalReason.BAD_URL_CODE),
        (URL[:3] + b"abc\x20", RefusalReason.BAD_URL_CODE),
        (URL[:3] + b"\x7f", RefusalReason.BAD_URL_CODE),
        (URL[:3] + b"\xc3\xa9", RefusalReason.BAD_URL_CODE),
        (URL[:3] + b"a" * 18, RefusalReason.OVERSIZED),
    ],
)
def test_eddystone_url_refusals(data: bytes, expected: RefusalReason) -> None:
    assert reason(parse_eddystone(data)) == expected


def test_url_expansions_follow_the_spec_table() -> None:
    assert decode_url(b"\x00radiusnetworks\x07") == "http://www.radiusnetworks.com"
    assert decode_url(b"\x02google\x00123") == "http://google.com/123"
    assert decode_url(b"\x03a\x01b\x02c\x03d\x04e\x05f\x06g\x0dh") == (
        "https://a.org/b.edu/c.net/d.info/e.biz/f.gov/g.govh"
    )
    assert encode_url("https://www.radius.com/C2HC48") == b"\x01radius\x00C2HC48"
    with pytest.raises(ValueError, match="at most 17"):
        encode_url("https://www.radiusnetworks.com/C2HC48")
    with pytest.raises(ValueError, match="not http"):
        encode_url("ftp://example.com")


def test_plain_tlm_decodes_and_encrypted_tlm_is_detected_not_decoded() -> None:
    tlm = parse_eddystone(TLM)
    assert isinstance(tlm, EddystoneTlm)
    assert (tlm.battery_mv, tlm.temperature_c, tlm.uptime_s) == (3056, 23.0, 6681890.0)
    unsupported = parse_eddystone(TLM[:4] + b"\x80\x00" + TLM[6:])
    assert isinstance(unsupported, EddystoneTlm)
    assert unsupported.temperature_c is None
    negative = parse_eddystone(TLM[:4] + b"\xff\x80" + TLM[6:])  # -0.5 C in 8.8
    assert isinstance(negative, EddystoneTlm)
    assert negative.temperature_c == -0.5
    encrypted = parse_eddystone(bytes.fromhex("2001") + bytes(range(12)) + b"\xaa\xbb\xcc\xdd")
    assert encrypted == EddystoneEncryptedTlm(bytes(range(12)), b"\xaa\xbb", b"\xcc\xdd")
    assert reason(parse_eddystone(b"\x20\x01" + bytes(12))) == RefusalReason.TRUNCATED
    assert reason(parse_eddystone(b"\x20\x02" + bytes(12))) == RefusalReason.UNKNOWN_VERSION
    assert reason(parse_eddystone(TLM[:-1])) == RefusalReason.TRUNCATED
    assert reason(parse_eddystone(b"\x20")) == RefusalReason.TRUNCATED


def test_eid_and_unknown_frame_types() -> None:
    assert reason(parse_eddystone(b"\x30\xbe" + bytes(7))) == RefusalReason.TRUNCATED
    assert reason(parse_eddystone(b"\x30\xbe" + bytes(9))) == RefusalReason.OVERSIZED
    refused = parse_eddystone(b"\x40\x00")
    assert isinstance(refused, Refusal)
    assert (refused.kind, refused.reason) == (FrameKind.EDDYSTONE, RefusalReason.UNKNOWN_FRAME_TYPE)
    assert reason(parse_eddystone(b"")) == RefusalReason.TRUNCATED


def test_member_frame_refusals() -> None:
    frame = bytes.fromhex("017f86709ada9220c98e")
    assert not isinstance(parse_member_frame(frame), Refusal)
    assert reason(parse_member_frame(frame[:-1])) == RefusalReason.TRUNCATED
    assert reason(parse_member_frame(frame + b"\0")) == RefusalReason.OVERSIZED
    assert reason(parse_member_frame(b"\x02" + frame[1:])) == RefusalReason.UNKNOWN_VERSION
    assert reason(parse_member_frame(b"")) == RefusalReason.TRUNCATED

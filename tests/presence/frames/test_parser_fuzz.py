"""Hypothesis: any bytes give a frame or a refusal, never an exception; encoders round-trip."""

from __future__ import annotations

from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.contract.rotating_id import MEMBER_SERVICE_UUID, encode_frame
from edge_agent.presence.frames.altbeacon import AltBeacon, encode_altbeacon, parse_altbeacon
from edge_agent.presence.frames.beacon_filter import BeaconFilter
from edge_agent.presence.frames.eddystone import (
    EDDYSTONE_SERVICE_UUID,
    EddystoneEid,
    EddystoneEncryptedTlm,
    EddystoneFrame,
    EddystoneTlm,
    EddystoneUid,
    EddystoneUrl,
    encode_eddystone,
    parse_eddystone,
)
from edge_agent.presence.frames.eddystone_url import decode_url, encode_url
from edge_agent.presence.frames.ibeacon import IBeacon, encode_ibeacon, parse_ibeacon
from edge_agent.presence.frames.member import MemberRotatingId, parse_member_frame
from edge_agent.presence.frames.parse import parse_advertisement
from edge_agent.presence.frames.refusal import Refusal

i8 = st.integers(-128, 127)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
# Short blobs, and blobs that start like the real thing, so every branch is reached.
prefixes = st.sampled_from(
    [b"", b"\x02\x15", b"\xbe\xac", b"\x00", b"\x10", b"\x20\x00", b"\x20\x01", b"\x30", b"\x01"]
)
blobs = st.builds(lambda p, rest: p + rest, prefixes, st.binary(max_size=40))
FRAME_TYPES = (IBeacon, AltBeacon, EddystoneUid, EddystoneUrl, EddystoneTlm)
ANSWERS = (
    *FRAME_TYPES,
    EddystoneEncryptedTlm,
    EddystoneEid,
    MemberRotatingId,
    Refusal,
)


@given(blobs)
def test_every_parser_answers_a_frame_or_a_refusal(data: bytes) -> None:
    assert isinstance(parse_ibeacon(data), IBeacon | Refusal)
    assert isinstance(parse_altbeacon(0x0118, data), AltBeacon | Refusal)
    assert isinstance(parse_eddystone(data), ANSWERS)
    assert isinstance(parse_member_frame(data), MemberRotatingId | Refusal)
    assert isinstance(decode_url(data), str | Refusal)


@given(
    st.dictionaries(st.integers(0, 0xFFFF), blobs, max_size=3),
    st.dictionaries(
        st.sampled_from([EDDYSTONE_SERVICE_UUID, MEMBER_SERVICE_UUID, "0000fe9f-x"]),
        blobs,
        max_size=3,
    ),
)
def test_a_whole_advertisement_never_raises(
    manufacturer: dict[int, bytes], service: dict[str, bytes]
) -> None:
    found = parse_advertisement(manufacturer, service, [])
    assert all(isinstance(f, ANSWERS) for f in found)
    BeaconFilter(
        ibeacon_uuids=[UUID(int=1)],
        altbeacon_id_prefixes=[b"\x2f"],
        eddystone_namespaces=[bytes(10)],
        eddystone_eid=True,
        eddystone_telemetry=True,
    ).keep(manufacturer, service, [])


@given(st.uuids(), u16, u16, i8)
def test_ibeacon_round_trips(uuid: UUID, major: int, minor: int, tx: int) -> None:
    frame = IBeacon(uuid, major, minor, tx)
    assert parse_ibeacon(encode_ibeacon(frame)) == frame


@given(u16, st.binary(min_size=20, max_size=20), i8, st.integers(0, 255))
def test_altbeacon_round_trips(company: int, beacon_id: bytes, rssi: int, reserved: int) -> None:
    frame = AltBeacon(company, beacon_id, rssi, reserved)
    assert parse_altbeacon(company, encode_altbeacon(frame)) == frame


url_text = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=0, max_size=12
)
eddystone_frames: st.SearchStrategy[EddystoneFrame] = st.one_of(
    st.builds(
        EddystoneUid, i8, st.binary(min_size=10, max_size=10), st.binary(min_size=6, max_size=6)
    ),
    st.builds(
        EddystoneUrl,
        i8,
        st.builds(lambda s, t: s + t, st.sampled_from(["http://", "https://www."]), url_text),
    ),
    st.builds(EddystoneTlm, u16, st.integers(-0x8000, 0x7FFF), u32, u32),
    st.builds(
        EddystoneEncryptedTlm,
        st.binary(min_size=12, max_size=12),
        st.binary(min_size=2, max_size=2),
        st.binary(min_size=2, max_size=2),
    ),
    st.builds(EddystoneEid, i8, st.binary(min_size=8, max_size=8)),
)


@given(eddystone_frames)
def test_eddystone_round_trips(frame: EddystoneFrame) -> None:
    try:
        data = encode_eddystone(frame)
    except ValueError:  # a URL too long to compress into 17 bytes
        assert isinstance(frame, EddystoneUrl)
        return
    assert parse_eddystone(data) == frame


@given(st.binary(min_size=1, max_size=18))
def test_a_decoded_url_encodes_back_to_the_same_url(data: bytes) -> None:
    url = decode_url(data)
    if isinstance(url, str):
        assert decode_url(encode_url(url)) == url


@given(st.binary(min_size=8, max_size=8), st.integers(-128, 126))
def test_member_frame_round_trips(identifier: bytes, tx: int) -> None:
    parsed = parse_member_frame(encode_frame(identifier, tx))
    assert parsed == MemberRotatingId(1, tx, identifier)

"""NDEF messages: ndeflib's encoder on one side, ours decoding; any bytes never raise."""

from __future__ import annotations

import ndef
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.presence.ndef_message import (
    NdefError,
    NdefFault,
    NdefRecord,
    decode_message,
)

RECORDS = [
    ndef.TextRecord("Hello", "en"),
    ndef.UriRecord("https://storeside.io/m"),
    ndef.Record("text/plain", "id-1", b"plain"),
    ndef.Record("urn:nfc:ext:storeside.io:member", "", b"\x01" * 300),  # a long (not SR) record
    ndef.Record("unknown", "", b"?"),
]


def ours(records: list[ndef.Record]) -> tuple[NdefRecord, ...] | NdefError:
    return decode_message(b"".join(ndef.message_encoder(records)))


def test_messages_ndeflib_writes_read_back_record_for_record() -> None:
    found = ours(RECORDS)
    assert isinstance(found, tuple)
    assert [(r.type, r.name, r.payload) for r in found] == [
        (r.type, r.name, bytes(r.data)) for r in RECORDS
    ]


def test_an_external_type_compares_in_lower_case() -> None:
    octets = bytes([0xD4, 19, 1]) + b"StoreSide.io:Member" + b"x"
    assert decode_message(octets) == (NdefRecord("urn:nfc:ext:storeside.io:member", "", b"x"),)


def test_a_chunked_record_is_joined() -> None:
    # MB CF SR TNF=2, then a middle chunk, then the last (TNF 6, ME), NDEF 1.0 section 3.2.3
    octets = (
        bytes([0xB2, 10, 2]) + b"text/plain" + b"ab"
        + bytes([0x36, 0, 2]) + b"cd"
        + bytes([0x56, 0, 1]) + b"e"
    )  # fmt: skip
    assert decode_message(octets) == (NdefRecord("text/plain", "", b"abcde"),)


@pytest.mark.parametrize(
    ("octets", "fault"),
    [
        (b"", NdefFault.EMPTY),
        (b"\xd1\x01", NdefFault.TRUNCATED),
        (bytes([0xD1, 1, 5]) + b"Tab", NdefFault.TRUNCATED),
        (bytes([0x51, 1, 1]) + b"Ta", NdefFault.MALFORMED),  # no MB
        (bytes([0xD7, 0, 0]), NdefFault.MALFORMED),  # TNF 7
        (bytes([0xD1, 1, 1]) + b"Ta" + b"\x00", NdefFault.MALFORMED),  # bytes after ME
        (bytes([0xC1, 1]) + (2**31).to_bytes(4, "big") + b"T", NdefFault.OVERSIZED),
        (bytes([0xD0, 1, 0]) + b"T", NdefFault.MALFORMED),  # an empty record with a type
        (bytes([0xF2, 1, 1]) + b"ab", NdefFault.MALFORMED),  # chunk flag on the last record
    ],
)
def test_bytes_that_are_no_message_name_their_fault(octets: bytes, fault: NdefFault) -> None:
    found = decode_message(octets)
    assert isinstance(found, NdefError) and found.fault is fault


@given(st.binary(max_size=600))
def test_any_bytes_are_records_or_a_fault_never_an_exception(octets: bytes) -> None:
    found = decode_message(octets)
    assert isinstance(found, tuple | NdefError)


@given(
    st.lists(
        st.tuples(st.text(st.characters(max_codepoint=255), max_size=8), st.binary(max_size=300)),
        min_size=1,
        max_size=5,
    )
)
def test_what_ndeflib_encodes_we_decode(items: list[tuple[str, bytes]]) -> None:
    records = [ndef.Record("urn:nfc:ext:storeside.io:x", name, data) for name, data in items]
    try:
        octets = b"".join(ndef.message_encoder(records))
    except ndef.EncodeError:  # a name ndeflib will not write (over 255 octets)
        return
    found = decode_message(octets)
    assert isinstance(found, tuple)
    assert [(r.name, r.payload) for r in found] == [(n, d) for n, d in items]


@given(st.binary(min_size=1, max_size=200))
def test_truncating_a_good_message_is_refused(payload: bytes) -> None:
    octets = b"".join(ndef.message_encoder([ndef.Record("text/plain", "", payload)]))
    for cut in range(1, len(octets), 7):
        assert isinstance(decode_message(octets[:cut]), NdefError)

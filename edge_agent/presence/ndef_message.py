"""NDEF messages read from a tag: the records, or a typed fault. Pure and total.

Theory of operation
-------------------
A tag (a Type 2 sticker's NDEF TLV, a Type 4 tag's NDEF file) holds one NDEF message: a
sequence of records, each framed by a header byte (NFC Forum NDEF 1.0, section 3.2)::

    bit 7 MB  message begin        bit 4 SR  short record: payload length is 1 byte, else 4
    bit 6 ME  message end          bit 3 IL  an ID length byte is present
    bit 5 CF  chunk flag           bits 2-0  TNF, type name format

    header, type length (1), payload length (1 or 4), [id length (1)], type, [id], payload

``decode_message`` checks, in order: the first record has MB and only the last has ME (NDEF
3.2.1/3.2.2); no TNF 7 (reserved); the lengths TNF allows (empty records have no type, id or
payload; unknown and unchanged records have no type: NDEF 3.2.6); each field fits in the bytes
that remain; nothing follows ME. Chunked records (CF, NDEF 3.2.3) are joined: the first chunk
names the type, middle and last chunks are TNF 6 (unchanged) with no type and no id. A payload
larger than ``MAX_MESSAGE_BYTES`` is refused before anything is read (a phone can claim 4 GB in
one length field). Every byte string maps to a tuple of records or a ``NdefFault``, never an
exception: the box reads whatever any tag near it holds.

Record types are written as ndeflib writes them, so a record built with ndeflib on the app's
side compares equal here: ``urn:nfc:wkt:T`` (TNF 1), ``text/plain`` (TNF 2, the MIME type),
the absolute URI itself (TNF 3), ``urn:nfc:ext:storeside.io:member`` (TNF 4, lower case: NFC
Forum RTD 2.0 says external type names compare case-insensitively), ``unknown`` (TNF 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

MAX_MESSAGE_BYTES: Final = 8192  # a Type 4 NDEF file is at most 32 KB; members' are < 1 KB
MAX_RECORDS: Final = 32

_MB, _ME, _CF, _SR, _IL = 0x80, 0x40, 0x20, 0x10, 0x08
_EMPTY, _WKT, _MIME, _URI, _EXT, _UNKNOWN, _UNCHANGED = range(7)
_PREFIX: Final = {_WKT: "urn:nfc:wkt:", _EXT: "urn:nfc:ext:"}


class NdefFault(StrEnum):
    EMPTY = "empty"  # no bytes at all (a blank tag is fine: the driver sends no records)
    OVERSIZED = "oversized"
    TRUNCATED = "truncated"  # a length points past the end
    MALFORMED = "malformed"  # flags, TNF or lengths the spec forbids, trailing bytes


@dataclass(frozen=True, slots=True)
class NdefRecord:
    """One record: its type (ndeflib's spelling, see the module docstring), id, payload."""

    type: str
    name: str = ""
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class NdefError:
    fault: NdefFault
    detail: str


def _type_name(tnf: int, raw: bytes) -> str:
    text = raw.decode("latin-1")  # types are US-ASCII by the spec; latin-1 never fails
    if tnf == _EXT:
        return _PREFIX[_EXT] + text.lower()
    if tnf == _WKT:
        return _PREFIX[_WKT] + text
    if tnf == _UNKNOWN:
        return "unknown"
    if tnf == _EMPTY:
        return ""
    return text  # MIME type or absolute URI


def decode_message(octets: bytes) -> tuple[NdefRecord, ...] | NdefError:
    """The records of the NDEF message ``octets``; an ``NdefError`` if it is not one."""
    if not octets:
        return NdefError(NdefFault.EMPTY, "no bytes")
    if len(octets) > MAX_MESSAGE_BYTES:
        return NdefError(NdefFault.OVERSIZED, f"{len(octets)} bytes > {MAX_MESSAGE_BYTES}")
    records: list[NdefRecord] = []
    pos = 0
    chunk: tuple[str, str, bytearray] | None = None  # a chunked record being joined
    first = True
    while True:
        if len(records) > MAX_RECORDS:
            return NdefError(NdefFault.OVERSIZED, f"more than {MAX_RECORDS} records")
        if pos + 2 > len(octets):
            return NdefError(NdefFault.TRUNCATED, f"record header at {pos}")
        header, type_len = octets[pos], octets[pos + 1]
        pos += 2
        tnf = header & 0x07
        if bool(header & _MB) != first:
            return NdefError(NdefFault.MALFORMED, f"MB flag wrong at record {len(records)}")
        first = False
        if tnf == 7:
            return NdefError(NdefFault.MALFORMED, "TNF 7 is reserved")
        size = 1 if header & _SR else 4
        if pos + size > len(octets):
            return NdefError(NdefFault.TRUNCATED, "payload length")
        payload_len = int.from_bytes(octets[pos : pos + size], "big")
        pos += size
        id_len = 0
        if header & _IL:
            if pos + 1 > len(octets):
                return NdefError(NdefFault.TRUNCATED, "id length")
            id_len = octets[pos]
            pos += 1
        if payload_len > MAX_MESSAGE_BYTES:
            return NdefError(NdefFault.OVERSIZED, f"a payload of {payload_len} bytes")
        if tnf == _EMPTY and (type_len or id_len or payload_len):
            return NdefError(NdefFault.MALFORMED, "an empty record with content")
        if tnf in (_UNKNOWN, _UNCHANGED) and type_len:
            return NdefError(NdefFault.MALFORMED, f"TNF {tnf} with a type")
        end = pos + type_len + id_len + payload_len
        if end > len(octets):
            return NdefError(NdefFault.TRUNCATED, f"record needs {end} bytes, has {len(octets)}")
        raw_type = octets[pos : pos + type_len]
        name = octets[pos + type_len : pos + type_len + id_len].decode("latin-1")
        payload = octets[pos + type_len + id_len : end]
        pos = end
        fault = _chunk_fault(chunk, header, tnf, id_len)
        if fault is not None:
            return NdefError(NdefFault.MALFORMED, fault)
        if chunk is None and not header & _CF:
            records.append(NdefRecord(_type_name(tnf, raw_type), name, payload))
        elif chunk is None:
            chunk = (_type_name(tnf, raw_type), name, bytearray(payload))
        else:
            chunk[2].extend(payload)
            if len(chunk[2]) > MAX_MESSAGE_BYTES:
                return NdefError(NdefFault.OVERSIZED, "a chunked payload")
            if not header & _CF:
                records.append(NdefRecord(chunk[0], chunk[1], bytes(chunk[2])))
                chunk = None
        if header & _ME:
            if chunk is not None:
                return NdefError(NdefFault.MALFORMED, "message ends inside a chunked record")
            if pos != len(octets):
                return NdefError(NdefFault.MALFORMED, f"{len(octets) - pos} bytes after ME")
            return tuple(records)


def _chunk_fault(
    chunk: tuple[str, str, bytearray] | None, header: int, tnf: int, id_len: int
) -> str | None:
    """Why this record cannot stand where it does in a chunk sequence (NDEF 3.2.3)."""
    if chunk is None:
        if tnf == _UNCHANGED:
            return "TNF 6 (unchanged) outside a chunked record"
        if header & _CF and header & _ME:
            return "a chunked record cannot end the message"
        return None
    if tnf != _UNCHANGED or id_len:
        return "a middle or last chunk must be TNF 6 with no id"
    return None

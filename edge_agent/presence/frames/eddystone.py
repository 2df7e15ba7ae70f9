"""Eddystone: service data under the 16-bit UUID 0xFEAA, one frame type per first byte.

Theory of operation
-------------------
bleak keys service data by the full 128-bit UUID string, so Eddystone arrives as
``service_data["0000feaa-0000-1000-8000-00805f9b34fb"]``; byte 0 is the frame type
(google/eddystone ``protocol-specification.md``). Layouts, all multi-byte fields big-endian:

=====  =======  ==========================================================================
type   name     bytes after the frame type
=====  =======  ==========================================================================
0x00   UID      tx power (int8, dBm at 0 m), namespace (10), instance (6), RFU (2).
                The two reserved bytes are often left off the air: 18 or 20 bytes are
                accepted (``eddystone-uid/README.md``).
0x10   URL      tx power, scheme prefix, 0..17 encoded bytes (see ``eddystone_url``).
0x20   TLM      version 0x00 (``eddystone-tlm/tlm-plain.md``): battery mV (u16, 0 = not
                supported), temperature (signed 8.8 fixed point, 0x8000 = not supported),
                advertising PDU count (u32), time since power-on (u32, 0.1 s units):
                exactly 14 bytes. Version 0x01 is encrypted TLM
                (``tlm-encrypted.md``): 12 bytes of ETLM, a 2-byte salt, a 2-byte MIC,
                exactly 18 bytes: detected and reported, not decrypted (its key is the
                beacon owner's EID identity key, which a store does not hold).
0x30   EID      tx power, an 8-byte ephemeral identifier (``eddystone-eid/README.md``):
                exactly 10 bytes.
=====  =======  ==========================================================================

Any other frame type (0x40 is Eddystone's reserved type; vendors such as BlueCharm put
sensor frames in 0x21) is refused as UNKNOWN_FRAME_TYPE.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from edge_agent.presence.frames.eddystone_url import decode_url, encode_url
from edge_agent.presence.frames.refusal import (
    FrameKind,
    Refusal,
    RefusalReason,
    length_refusal,
)

EDDYSTONE_SERVICE_UUID: Final = "0000feaa-0000-1000-8000-00805f9b34fb"
FRAME_UID: Final = 0x00
FRAME_URL: Final = 0x10
FRAME_TLM: Final = 0x20
FRAME_EID: Final = 0x30
TLM_PLAIN: Final = 0x00
TLM_ENCRYPTED: Final = 0x01
NAMESPACE_BYTES: Final = 10
INSTANCE_BYTES: Final = 6
TEMPERATURE_NOT_SUPPORTED: Final = -0x8000  # 0x8000 read as a signed 8.8 value
_UID: Final = struct.Struct(">Bb10s6s")
_TLM: Final = struct.Struct(">BBHhII")
_EID: Final = struct.Struct(">Bb8s")


@dataclass(frozen=True, slots=True)
class EddystoneUid:
    tx_power: int
    namespace: bytes  # 10 bytes
    instance: bytes  # 6 bytes


@dataclass(frozen=True, slots=True)
class EddystoneUrl:
    tx_power: int
    url: str


@dataclass(frozen=True, slots=True)
class EddystoneTlm:
    battery_mv: int  # 0: not supported (a mains-powered beacon)
    temperature_raw: int  # signed 8.8 fixed point; TEMPERATURE_NOT_SUPPORTED if none
    adv_count: int
    uptime_tenths: int  # time since power-on or reboot, 0.1 s units

    @property
    def temperature_c(self) -> float | None:
        if self.temperature_raw == TEMPERATURE_NOT_SUPPORTED:
            return None
        return self.temperature_raw / 256

    @property
    def uptime_s(self) -> float:
        return self.uptime_tenths / 10


@dataclass(frozen=True, slots=True)
class EddystoneEncryptedTlm:
    etlm: bytes  # 12 bytes
    salt: bytes  # 2 bytes
    mic: bytes  # 2 bytes


@dataclass(frozen=True, slots=True)
class EddystoneEid:
    tx_power: int
    eid: bytes  # 8 bytes


EddystoneFrame = EddystoneUid | EddystoneUrl | EddystoneTlm | EddystoneEncryptedTlm | EddystoneEid


def parse_eddystone(data: bytes) -> EddystoneFrame | Refusal:
    """Decode one Eddystone service-data block (``service_data[EDDYSTONE_SERVICE_UUID]``)."""
    if not data:
        return Refusal(FrameKind.EDDYSTONE, RefusalReason.TRUNCATED, "empty service data")
    frame_type = data[0]
    if frame_type == FRAME_UID:
        return _uid(data)
    if frame_type == FRAME_URL:
        return _url(data)
    if frame_type == FRAME_TLM:
        return _tlm(data)
    if frame_type == FRAME_EID:
        return _eid(data)
    return Refusal(
        FrameKind.EDDYSTONE, RefusalReason.UNKNOWN_FRAME_TYPE, f"frame type {frame_type:#04x}"
    )


def _uid(data: bytes) -> EddystoneUid | Refusal:
    refused = length_refusal(FrameKind.EDDYSTONE_UID, data, _UID.size, _UID.size + 2)
    if refused is not None:
        return refused
    _, tx_power, namespace, instance = _UID.unpack_from(data)
    return EddystoneUid(tx_power, namespace, instance)


def _url(data: bytes) -> EddystoneUrl | Refusal:
    refused = length_refusal(FrameKind.EDDYSTONE_URL, data, 3, 3 + 17)
    if refused is not None:
        return refused
    url = decode_url(data[2:])
    if isinstance(url, Refusal):
        return url
    return EddystoneUrl(struct.unpack_from(">b", data, 1)[0], url)


def _tlm(data: bytes) -> EddystoneTlm | EddystoneEncryptedTlm | Refusal:
    if len(data) < 2:
        return Refusal(FrameKind.EDDYSTONE_TLM, RefusalReason.TRUNCATED, "no TLM version byte")
    if data[1] == TLM_ENCRYPTED:
        refused = length_refusal(FrameKind.EDDYSTONE_ETLM, data, 18, 18)
        if refused is not None:
            return refused
        return EddystoneEncryptedTlm(data[2:14], data[14:16], data[16:18])
    if data[1] != TLM_PLAIN:
        return Refusal(
            FrameKind.EDDYSTONE_TLM, RefusalReason.UNKNOWN_VERSION, f"TLM version {data[1]:#04x}"
        )
    refused = length_refusal(FrameKind.EDDYSTONE_TLM, data, _TLM.size, _TLM.size)
    if refused is not None:
        return refused
    _, _, battery, temperature, adv_count, uptime = _TLM.unpack(data)
    return EddystoneTlm(battery, temperature, adv_count, uptime)


def _eid(data: bytes) -> EddystoneEid | Refusal:
    refused = length_refusal(FrameKind.EDDYSTONE_EID, data, _EID.size, _EID.size)
    if refused is not None:
        return refused
    _, tx_power, eid = _EID.unpack(data)
    return EddystoneEid(tx_power, eid)


def encode_eddystone(frame: EddystoneFrame) -> bytes:
    """The service-data bytes that advertise ``frame`` (UID with its two reserved bytes)."""
    if isinstance(frame, EddystoneUid):
        return _UID.pack(FRAME_UID, frame.tx_power, frame.namespace, frame.instance) + b"\0\0"
    if isinstance(frame, EddystoneUrl):
        return struct.pack(">Bb", FRAME_URL, frame.tx_power) + encode_url(frame.url)
    if isinstance(frame, EddystoneTlm):
        return _TLM.pack(
            FRAME_TLM,
            TLM_PLAIN,
            frame.battery_mv,
            frame.temperature_raw,
            frame.adv_count,
            frame.uptime_tenths,
        )
    if isinstance(frame, EddystoneEncryptedTlm):
        return bytes((FRAME_TLM, TLM_ENCRYPTED)) + frame.etlm + frame.salt + frame.mic
    return _EID.pack(FRAME_EID, frame.tx_power, frame.eid)

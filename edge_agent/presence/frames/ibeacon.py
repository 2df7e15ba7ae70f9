"""iBeacon: Apple manufacturer-specific data carrying a proximity UUID, major and minor.

Theory of operation
-------------------
bleak hands over manufacturer data keyed by the Bluetooth SIG company identifier, with the
two company-id bytes already removed. Apple's is 0x004C. Apple uses that block for many
message types (Continuity, Find My, ...); the first byte is the type and the second the length
of what follows. iBeacon is type 0x02, length 0x15 (21), laid out as (Apple, "Proximity
Beacon Specification" R1, section 3)::

    0      1      2..17            18..19        20..21        22
    0x02   0x15   proximity UUID   major (BE)    minor (BE)    measured power (int8, dBm @ 1 m)

``is_ibeacon`` is the cheap prefix test; ``parse_ibeacon`` answers a frame or a refusal for a
block that starts with type 0x02 (a wrong length byte is WRONG_LENGTH, since another Apple type
never starts with 0x02).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final
from uuid import UUID

from edge_agent.presence.frames.refusal import (
    FrameKind,
    Refusal,
    RefusalReason,
    length_refusal,
)

APPLE_COMPANY_ID: Final = 0x004C
IBEACON_TYPE: Final = 0x02
IBEACON_LENGTH: Final = 0x15
IBEACON_PREFIX: Final = bytes((IBEACON_TYPE, IBEACON_LENGTH))
FRAME_BYTES: Final = 2 + IBEACON_LENGTH
_BODY: Final = struct.Struct(">16sHHb")  # after the type and length bytes


@dataclass(frozen=True, slots=True)
class IBeacon:
    uuid: UUID
    major: int
    minor: int
    tx_power: int  # measured power at 1 m, dBm


def is_ibeacon(data: bytes) -> bool:
    """Whether an Apple manufacturer-data block claims to be an iBeacon (its type byte)."""
    return data[:1] == b"\x02"


def parse_ibeacon(data: bytes) -> IBeacon | Refusal:
    """Decode Apple manufacturer data (company id already stripped, as bleak gives it)."""
    if not is_ibeacon(data):
        return Refusal(FrameKind.IBEACON, RefusalReason.UNKNOWN_FRAME_TYPE, "type is not 0x02")
    if len(data) >= 2 and data[1] != IBEACON_LENGTH:
        return Refusal(
            FrameKind.IBEACON, RefusalReason.WRONG_LENGTH, f"length byte {data[1]:#04x}, not 0x15"
        )
    refused = length_refusal(FrameKind.IBEACON, data, FRAME_BYTES, FRAME_BYTES)
    if refused is not None:
        return refused
    raw_uuid, major, minor, tx_power = _BODY.unpack_from(data, 2)
    return IBeacon(UUID(bytes=raw_uuid), major, minor, tx_power)


def encode_ibeacon(frame: IBeacon) -> bytes:
    """The manufacturer-data bytes (without the company id) that advertise ``frame``."""
    return IBEACON_PREFIX + _BODY.pack(frame.uuid.bytes, frame.major, frame.minor, frame.tx_power)

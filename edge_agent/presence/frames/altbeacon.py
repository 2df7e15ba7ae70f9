"""AltBeacon: an open beacon format in manufacturer-specific data under any company id.

Theory of operation
-------------------
The AltBeacon specification (altbeacon/spec, "AltBeacon Protocol Specification v1.0") puts the
beacon in a manufacturer-specific AD structure; bleak strips the AD header and the company id
(the MFG ID, little-endian on the air) and hands over the 24 bytes after them::

    0..1        2..21                  22                    23
    0xBE 0xAC   beacon id (20 bytes)   reference RSSI        mfg reserved
    (code)      (by convention a       (int8, dBm at 1 m)    (one byte for the
                16-byte org UUID +                           manufacturer's use)
                2 + 2 bytes)

The company id stays significant (it says whose beacon it is), so it travels with the frame.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from edge_agent.presence.frames.refusal import (
    FrameKind,
    Refusal,
    RefusalReason,
    length_refusal,
)

BEACON_CODE: Final = b"\xbe\xac"
ID_BYTES: Final = 20
FRAME_BYTES: Final = 2 + ID_BYTES + 2
_BODY: Final = struct.Struct(">20sbB")


@dataclass(frozen=True, slots=True)
class AltBeacon:
    company_id: int
    beacon_id: bytes  # 20 bytes
    ref_rssi: int  # dBm at 1 m
    mfg_reserved: int


def is_altbeacon(data: bytes) -> bool:
    """Whether a manufacturer-data block carries the AltBeacon beacon code."""
    return data[:2] == BEACON_CODE


def parse_altbeacon(company_id: int, data: bytes) -> AltBeacon | Refusal:
    """Decode one manufacturer-data block (company id already stripped, as bleak gives it)."""
    if not is_altbeacon(data):
        return Refusal(FrameKind.ALTBEACON, RefusalReason.UNKNOWN_FRAME_TYPE, "no BEAC code")
    refused = length_refusal(FrameKind.ALTBEACON, data, FRAME_BYTES, FRAME_BYTES)
    if refused is not None:
        return refused
    beacon_id, ref_rssi, reserved = _BODY.unpack_from(data, 2)
    return AltBeacon(company_id, beacon_id, ref_rssi, reserved)


def encode_altbeacon(frame: AltBeacon) -> bytes:
    """The manufacturer-data bytes (without the company id) that advertise ``frame``."""
    return BEACON_CODE + _BODY.pack(frame.beacon_id, frame.ref_rssi, frame.mfg_reserved)

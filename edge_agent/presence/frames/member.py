"""The Storeside member app's rotating-identifier frame (defined in the shared contract).

Theory of operation
-------------------
``cloud_sync.contract.rotating_id`` defines the frame once for the phone and the box: service
data under the 128-bit ``MEMBER_SERVICE_UUID``, ``FRAME_BYTES`` (10) bytes: a version byte
(0x01), the tx power at 1 m (int8, 0x7F unknown) and the 8-byte rotating identifier. This
module only decodes it into a frame or a refusal; who it is belongs to the resolver.
A version the box does not know is UNKNOWN_VERSION, so a newer app degrades to "unrecognised"
rather than to a misread identifier.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from cloud_sync.contract.rotating_id import FRAME_BYTES, FRAME_VERSION, TX_POWER_UNKNOWN
from edge_agent.presence.frames.refusal import (
    FrameKind,
    Refusal,
    RefusalReason,
    length_refusal,
)

_FRAME: Final = struct.Struct(">Bb8s")


@dataclass(frozen=True, slots=True)
class MemberRotatingId:
    version: int
    tx_power: int | None  # dBm at 1 m; None when the phone did not say
    rotating_id: bytes  # 8 bytes


def parse_member_frame(data: bytes) -> MemberRotatingId | Refusal:
    """Decode the service data found under ``MEMBER_SERVICE_UUID``."""
    if not data:
        return Refusal(FrameKind.MEMBER, RefusalReason.TRUNCATED, "empty service data")
    if data[0] != FRAME_VERSION:
        return Refusal(FrameKind.MEMBER, RefusalReason.UNKNOWN_VERSION, f"version {data[0]:#04x}")
    refused = length_refusal(FrameKind.MEMBER, data, FRAME_BYTES, FRAME_BYTES)
    if refused is not None:
        return refused
    version, tx_power, rotating_id = _FRAME.unpack(data)
    return MemberRotatingId(
        version, None if tx_power == TX_POWER_UNKNOWN else tx_power, rotating_id
    )

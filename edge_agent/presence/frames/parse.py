"""Dispatch what bleak reports for one advertisement to the frame parsers.

Theory of operation
-------------------
bleak's ``AdvertisementData`` gives ``manufacturer_data`` (company id -> bytes, id stripped),
``service_data`` (full 128-bit UUID string -> bytes) and ``service_uuids``. One advertisement
(or BlueZ's merged view of a device) can hold several frames, so ``parse_advertisement``
answers a tuple, one entry per block that belongs to a known family, in a fixed order:

1. Apple manufacturer data (0x004C) whose type byte is iBeacon's (0x02);
2. any manufacturer data that starts with the AltBeacon code ``BE AC``;
3. Eddystone service data (``0000feaa-...``);
4. the member app's service data (``MEMBER_SERVICE_UUID``).

Blocks of no known family (Apple Continuity, headphones, watches, ...) are skipped, not
refused: they are not ours, and nothing about them is kept. A known family whose bytes do not
decode is a ``Refusal`` in the tuple. ``service_uuids`` is not needed to decode (the service
data is keyed by UUID already) and is accepted so callers pass bleak's fields unchanged.

``tag_identity`` names the fixed identity of a frame that has one (iBeacon, AltBeacon,
Eddystone-UID), the key under which a beacon tag is enrolled for a member.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cloud_sync.contract.rotating_id import MEMBER_SERVICE_UUID
from edge_agent.presence.frames.altbeacon import AltBeacon, is_altbeacon, parse_altbeacon
from edge_agent.presence.frames.eddystone import (
    EDDYSTONE_SERVICE_UUID,
    EddystoneFrame,
    EddystoneUid,
    parse_eddystone,
)
from edge_agent.presence.frames.ibeacon import APPLE_COMPANY_ID, IBeacon, is_ibeacon, parse_ibeacon
from edge_agent.presence.frames.member import MemberRotatingId, parse_member_frame
from edge_agent.presence.frames.refusal import FrameKind, Refusal

Frame = IBeacon | AltBeacon | EddystoneFrame | MemberRotatingId


@dataclass(frozen=True, slots=True)
class TagIdentity:
    """A fixed beacon's identity: iBeacon UUID+major+minor, AltBeacon id, Eddystone-UID."""

    kind: FrameKind
    value: bytes


def parse_advertisement(
    manufacturer_data: Mapping[int, bytes],
    service_data: Mapping[str, bytes],
    service_uuids: Iterable[str] = (),
) -> tuple[Frame | Refusal, ...]:
    """Every known frame (or its refusal) in one advertisement, in the order listed above."""
    del service_uuids  # see the module docstring
    found: list[Frame | Refusal] = []
    apple = manufacturer_data.get(APPLE_COMPANY_ID)
    if apple is not None and is_ibeacon(apple):
        found.append(parse_ibeacon(apple))
    for company_id, data in manufacturer_data.items():
        if is_altbeacon(data):
            found.append(parse_altbeacon(company_id, data))
    eddystone = service_data.get(EDDYSTONE_SERVICE_UUID)
    if eddystone is not None:
        found.append(parse_eddystone(eddystone))
    member = service_data.get(MEMBER_SERVICE_UUID)
    if member is not None:
        found.append(parse_member_frame(member))
    return tuple(found)


def tag_identity(frame: Frame) -> TagIdentity | None:
    """The fixed identity a beacon tag is enrolled under, or None for a frame without one."""
    if isinstance(frame, IBeacon):
        value = frame.uuid.bytes + frame.major.to_bytes(2, "big") + frame.minor.to_bytes(2, "big")
        return TagIdentity(FrameKind.IBEACON, value)
    if isinstance(frame, AltBeacon):
        return TagIdentity(FrameKind.ALTBEACON, frame.beacon_id)
    if isinstance(frame, EddystoneUid):
        return TagIdentity(FrameKind.EDDYSTONE_UID, frame.namespace + frame.instance)
    return None

"""Which advertisements are the store's: a cheap test run before anything is queued.

Theory of operation
-------------------
The BLE driver sees every advertisement in range (phones, headphones, the shop next door's
beacons) at up to hundreds a second. ``BeaconFilter.keep`` answers, without decoding, whether
one is worth handing to the presence engine; everything else is dropped at once and nothing
about it is kept. It looks only at fixed positions and dictionary keys:

* iBeacon: Apple data (0x004C) starts ``02 15`` and bytes 2..17 are one of the store's UUIDs;
* AltBeacon: some manufacturer block starts ``BE AC`` and its id (bytes 2..21) starts with one
  of the store's id prefixes (typically a 16-byte organisation UUID; a whole 20-byte id works);
* Eddystone: UID frames (type 0x00) whose namespace (bytes 2..11) is the store's; EID frames
  (0x30) and TLM frames (0x20) only when asked for (TLM carries no identity of its own);
* the member app: service data under ``MEMBER_SERVICE_UUID`` is always kept when enabled (which
  member it is can only be told by the resolver, with keys).

A kept advertisement can still fail to parse: the parsers refuse it with a reason later. The
filter never raises on short or odd data (slices of short bytes are just short).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final
from uuid import UUID

from cloud_sync.contract.rotating_id import MEMBER_SERVICE_UUID
from edge_agent.presence.frames.altbeacon import BEACON_CODE, ID_BYTES
from edge_agent.presence.frames.eddystone import (
    EDDYSTONE_SERVICE_UUID,
    FRAME_EID,
    FRAME_TLM,
    FRAME_UID,
    NAMESPACE_BYTES,
)
from edge_agent.presence.frames.ibeacon import APPLE_COMPANY_ID, IBEACON_PREFIX

_UUID_BYTES: Final = 16


class BeaconFilter:
    """Keeps the store's beacons and the member app; see the module docstring."""

    __slots__ = (
        "_altbeacon_prefixes",
        "_eddystone_eid",
        "_eddystone_telemetry",
        "_ibeacon_uuids",
        "_member_app",
        "_namespaces",
    )

    def __init__(
        self,
        *,
        ibeacon_uuids: Iterable[UUID] = (),
        altbeacon_id_prefixes: Iterable[bytes] = (),
        eddystone_namespaces: Iterable[bytes] = (),
        eddystone_eid: bool = False,
        eddystone_telemetry: bool = False,
        member_app: bool = True,
    ) -> None:
        self._ibeacon_uuids = frozenset(u.bytes for u in ibeacon_uuids)
        prefixes: dict[int, set[bytes]] = {}
        for prefix in altbeacon_id_prefixes:
            if not 1 <= len(prefix) <= ID_BYTES:
                raise ValueError(f"an AltBeacon id prefix is 1..{ID_BYTES} bytes")
            prefixes.setdefault(len(prefix), set()).add(bytes(prefix))
        # Grouped by length, so a lookup is one slice and one set test per length in use.
        self._altbeacon_prefixes = tuple(
            (2 + length, frozenset(group)) for length, group in sorted(prefixes.items())
        )
        namespaces = frozenset(bytes(n) for n in eddystone_namespaces)
        if any(len(n) != NAMESPACE_BYTES for n in namespaces):
            raise ValueError(f"an Eddystone namespace is {NAMESPACE_BYTES} bytes")
        self._namespaces = namespaces
        self._eddystone_eid = eddystone_eid
        self._eddystone_telemetry = eddystone_telemetry
        self._member_app = member_app

    def keep(
        self,
        manufacturer_data: Mapping[int, bytes],
        service_data: Mapping[str, bytes],
        service_uuids: Iterable[str] = (),
    ) -> bool:
        """Whether this advertisement may be one of the store's (decide before queueing)."""
        del service_uuids  # the service data is keyed by UUID already
        if service_data:
            if self._member_app and MEMBER_SERVICE_UUID in service_data:
                return True
            eddystone = service_data.get(EDDYSTONE_SERVICE_UUID)
            if eddystone is not None and self._keep_eddystone(eddystone):
                return True
        if manufacturer_data:
            apple = manufacturer_data.get(APPLE_COMPANY_ID)
            if (
                apple is not None
                and apple[:2] == IBEACON_PREFIX
                and apple[2 : 2 + _UUID_BYTES] in self._ibeacon_uuids
            ):
                return True
            if self._altbeacon_prefixes:
                for data in manufacturer_data.values():
                    if data[:2] == BEACON_CODE and self._known_altbeacon(data):
                        return True
        return False

    def _keep_eddystone(self, data: bytes) -> bool:
        frame_type = data[0] if data else None
        if frame_type == FRAME_UID:
            return data[2 : 2 + NAMESPACE_BYTES] in self._namespaces
        if frame_type == FRAME_EID:
            return self._eddystone_eid
        if frame_type == FRAME_TLM:
            return self._eddystone_telemetry
        return False

    def _known_altbeacon(self, data: bytes) -> bool:
        return any(data[2:end] in group for end, group in self._altbeacon_prefixes)

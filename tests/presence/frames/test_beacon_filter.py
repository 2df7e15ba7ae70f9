"""The filter keeps the store's beacons and the member app, and drops everything else."""

from __future__ import annotations

from uuid import UUID

import pytest

from cloud_sync.contract.rotating_id import MEMBER_SERVICE_UUID
from edge_agent.presence.frames.beacon_filter import BeaconFilter
from edge_agent.presence.frames.eddystone import EDDYSTONE_SERVICE_UUID

BLUECHARM = UUID("426c7565-4368-6172-6d42-6561636f6e73")
IBEACON = bytes.fromhex("0215426c7565436861726d426561636f6e730efe1355c5")
ALTBEACON = bytes.fromhex("beac2f234454cf6d4a0fadf2f4911ba9ffa600010002c509")
UID = bytes.fromhex("00ee626c7565636861726d310000000000010000")
TLM = bytes.fromhex("20000bf017000008874803fb9354")
EID = bytes.fromhex("30bec22fe1f198109681")
APPLE_NEARBY = bytes.fromhex("1005031c0e7a57")  # an iPhone's Continuity "Nearby Info"

STORE = BeaconFilter(
    ibeacon_uuids=[BLUECHARM],
    altbeacon_id_prefixes=[bytes.fromhex("2f234454cf6d4a0fadf2f4911ba9ffa6")],
    eddystone_namespaces=[bytes.fromhex("626c7565636861726d31")],
)


def test_keeps_the_store_beacons() -> None:
    assert STORE.keep({0x004C: IBEACON}, {})
    assert STORE.keep({0x0118: ALTBEACON}, {})
    assert STORE.keep({}, {EDDYSTONE_SERVICE_UUID: UID})
    assert STORE.keep({}, {MEMBER_SERVICE_UUID: b"\x01"})


def test_drops_what_is_not_the_store() -> None:
    other = UUID("fda50693-a4e2-4fb1-afcf-c6eb07647825").bytes
    assert not STORE.keep({0x004C: IBEACON[:2] + other + IBEACON[18:]}, {})
    assert not STORE.keep({0x004C: APPLE_NEARBY}, {})
    assert not STORE.keep({0x0015: IBEACON}, {})  # iBeacon bytes, but not Apple's
    assert not STORE.keep({0x0118: ALTBEACON[:2] + bytes(22)}, {})
    assert not STORE.keep({}, {EDDYSTONE_SERVICE_UUID: UID[:2] + bytes(18)})
    assert not STORE.keep({}, {EDDYSTONE_SERVICE_UUID: TLM})
    assert not STORE.keep({}, {EDDYSTONE_SERVICE_UUID: EID})
    assert not STORE.keep({}, {EDDYSTONE_SERVICE_UUID: b""})
    assert not STORE.keep({}, {})


def test_options() -> None:
    everything = BeaconFilter(eddystone_eid=True, eddystone_telemetry=True)
    assert everything.keep({}, {EDDYSTONE_SERVICE_UUID: TLM})
    assert everything.keep({}, {EDDYSTONE_SERVICE_UUID: EID})
    assert not BeaconFilter(member_app=False).keep({}, {MEMBER_SERVICE_UUID: b"\x01"})
    whole_id = BeaconFilter(altbeacon_id_prefixes=[ALTBEACON[2:22]])
    assert whole_id.keep({0x0118: ALTBEACON}, {})
    assert not whole_id.keep({0x0118: ALTBEACON[:21] + b"\x09" + ALTBEACON[22:]}, {})


def test_bad_settings_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="namespace"):
        BeaconFilter(eddystone_namespaces=[b"short"])
    with pytest.raises(ValueError, match="prefix"):
        BeaconFilter(altbeacon_id_prefixes=[bytes(21)])

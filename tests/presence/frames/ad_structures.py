"""Split raw advertising data into the fields bleak's AdvertisementData carries.

BlueZ does this before bleak sees an advertisement; the captured fixtures are raw AD
structures (Bluetooth Core Specification Supplement, part A), so the tests do it here:
``length, type, data...`` repeated, a zero length ending the significant part (padding).
"""

from __future__ import annotations

from dataclasses import dataclass, field

BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"


def uuid16(value: int) -> str:
    return f"0000{value:04x}{BASE_UUID_TAIL}"


def uuid128(little_endian: bytes) -> str:
    h = little_endian[::-1].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class Advertisement:
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_data: dict[str, bytes] = field(default_factory=dict)
    service_uuids: list[str] = field(default_factory=list)


def split(raw: bytes) -> Advertisement:
    out = Advertisement()
    i = 0
    while i + 1 < len(raw) and raw[i] != 0:
        length = raw[i]  # a structure cut short by the capture keeps what it has
        kind, data = raw[i + 1], raw[i + 2 : i + 1 + length]
        if kind == 0xFF and len(data) >= 2:
            out.manufacturer_data[int.from_bytes(data[:2], "little")] = data[2:]
        elif kind == 0x16 and len(data) >= 2:
            out.service_data[uuid16(int.from_bytes(data[:2], "little"))] = data[2:]
        elif kind == 0x21 and len(data) >= 16:
            out.service_data[uuid128(data[:16])] = data[16:]
        elif kind in (0x02, 0x03):
            out.service_uuids += [
                uuid16(int.from_bytes(data[j : j + 2], "little")) for j in range(0, len(data), 2)
            ]
        i += 1 + length
    return out

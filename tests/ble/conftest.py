"""The private system bus of the tests/ble run: one dbus-daemon; a mock bluetoothd per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.ble.mock_bluez import PrivateBus


@pytest.fixture(scope="session")
def system_bus() -> Iterator[str]:
    bus = PrivateBus()
    before = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address  # bleak and dbus-fast read it per connect
    try:
        yield bus.address
    finally:
        if before is None:
            os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = before
        bus.close()

"""A private system D-Bus and a simulated bluetoothd (python-dbusmock) for the bleak driver.

``PrivateBus`` runs ``dbus-daemon --nofork`` (never ``--fork``: a forked daemon keeps the output
pipe open and the run hangs) on a socket in a temporary folder, and reads its address from the
first line it prints. ``MockBluez`` starts and kills ``python -m dbusmock`` with the template in
``bluez_beacons_template.py`` on that bus (killing it is bluetoothd crashing: the name goes away,
no InterfacesRemoved), and drives it over dbus-fast, the D-Bus library bleak itself uses.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

TEMPLATE = Path(__file__).with_name("bluez_beacons_template.py")
MOCK_IFACE = "org.bluez.Mock"
ADAPTER = "hci0"

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""


class PrivateBus:
    """A dbus-daemon of the test's own, acting as the system bus."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="storeside-dbus-")
        config = Path(self._dir.name) / "bus.conf"
        config.write_text(_BUS_CONFIG.format(socket=Path(self._dir.name) / "system_bus_socket"))
        self._proc = subprocess.Popen(
            ["dbus-daemon", "--nofork", f"--config-file={config}", "--print-address=1"],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # "failed to set fd limit" as non-init: harmless noise
            text=True,
        )
        assert self._proc.stdout is not None
        self.address = self._proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon printed no address")

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._dir.cleanup()


class MockBluez:
    """bluetoothd as python-dbusmock, started and killed by the test, driven over dbus-fast."""

    def __init__(self, bus_address: str, *, monitor_api: bool = True) -> None:
        self.bus_address = bus_address
        self.monitor_api = monitor_api
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: MessageBus | None = None

    async def __aenter__(self) -> MockBluez:
        self._client = await MessageBus(bus_address=self.bus_address).connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.kill()
        if self._client is not None:
            self._client.disconnect()

    # -- the daemon ------------------------------------------------------------------------------

    async def start(self, *, adapter: bool = True) -> None:
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus_address)
        params = json.dumps({"enable_monitor_api": self.monitor_api})
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dbusmock",
                "--system",
                "--template",
                str(TEMPLATE),
                "-p",
                params,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # dbusmock logs every call there, addresses included
        )
        for _ in range(500):
            if await self._has_owner():
                break
            if self._proc.poll() is not None:
                raise RuntimeError(f"dbusmock exited with {self._proc.returncode}")
            await asyncio.sleep(0.01)
        else:
            raise RuntimeError("dbusmock never took org.bluez")
        if adapter:
            await self.add_adapter()

    def kill(self) -> None:
        """bluetoothd dies: its name leaves the bus, no InterfacesRemoved is sent."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(5)
            self._proc = None

    async def _has_owner(self) -> bool:
        reply = await self._raw_call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameHasOwner",
            sig="s",
            body=["org.bluez"],
        )
        return bool(reply.body[0])

    # -- calls -----------------------------------------------------------------------------------

    async def _raw_call(
        self, dest: str, path: str, iface: str, member: str, *, sig: str, body: list[Any]
    ) -> Message:
        assert self._client is not None
        reply = await self._client.call(
            Message(
                destination=dest,
                path=path,
                interface=iface,
                member=member,
                signature=sig,
                body=body,
            )
        )
        assert reply is not None
        if reply.message_type is MessageType.ERROR:
            raise RuntimeError(f"{member}: {reply.error_name} {reply.body}")
        return reply

    async def mock(self, member: str, sig: str, *args: Any) -> Message:
        return await self._raw_call("org.bluez", "/", MOCK_IFACE, member, sig=sig, body=list(args))

    async def add_adapter(self) -> None:
        await self.mock("AddAdapter", "ss", ADAPTER, "storeside-test")

    async def remove_adapter(self) -> None:
        await self.mock("RemoveAdapterWithDevices", "s", ADAPTER)

    async def add_beacon(
        self,
        address: str,
        rssi: int,
        manufacturer: dict[int, bytes],
        service: dict[str, bytes],
        uuids: list[str],
    ) -> None:
        await self.mock(
            "AddBeacon",
            "sssna{qay}a{say}as",
            ADAPTER,
            address,
            "beacon",
            rssi,
            manufacturer,
            service,
            uuids,
        )

    async def advertise(
        self, address: str, rssi: int, manufacturer: dict[int, bytes], service: dict[str, bytes]
    ) -> None:
        await self.mock(
            "Advertise", "ssna{qay}a{say}", ADAPTER, address, rssi, manufacturer, service
        )

    async def fail_starts(self, error: str, count: int) -> None:
        await self.mock("FailStarts", "ssu", ADAPTER, error, count)

    async def flood(self, address: str, count: int, rate: float, mfg: dict[int, bytes]) -> int:
        reply = await self.mock("Flood", "ssuda{qay}", ADAPTER, address, count, rate, mfg)
        return int(reply.body[0])

    async def watch_powered(self) -> list[bool]:
        """Every value the adapter's Powered property is set to from now on (the resets)."""
        seen: list[bool] = []

        def on_message(message: Message) -> None:
            if (
                message.member == "PropertiesChanged"
                and message.path == f"/org/bluez/{ADAPTER}"
                and message.body[0] == "org.bluez.Adapter1"
                and "Powered" in message.body[1]
            ):
                seen.append(bool(message.body[1]["Powered"].value))

        assert self._client is not None
        self._client.add_message_handler(on_message)
        rule = (
            "type='signal',interface='org.freedesktop.DBus.Properties',"
            f"member='PropertiesChanged',path='/org/bluez/{ADAPTER}'"
        )
        await self._raw_call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            sig="s",
            body=[rule],
        )
        return seen

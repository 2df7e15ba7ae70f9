"""The driver's own view of BlueZ on the system bus (dbus-fast), and the boundary error mapping.

bleak scans; this module watches and repairs. It keeps one dbus-fast connection of its own to:

- see bluetoothd come and go (``NameOwnerChanged`` for ``org.bluez``): when bluetoothd dies
  without removing its objects, bleak keeps a stale cache and a scan that hears nothing;
- see the adapter come and go (``InterfacesAdded``/``InterfacesRemoved`` of ``Adapter1`` at
  ``/org/bluez/<adapter>``: a USB dongle unplugged, a controller resetting);
- probe the adapter before a scan: present, powered, and whether it offers passive scanning
  (``org.bluez.AdvertisementMonitorManager1`` with ``or_patterns`` among
  ``SupportedMonitorTypes``; BlueZ >= 5.56 with ``--experimental``);
- reset it: ``Powered`` false, then true, through ``org.freedesktop.DBus.Properties.Set`` on
  ``org.bluez.Adapter1`` (what ``bluetoothctl power off/on`` does).

Every watched change sets ``changed`` so the supervisor wakes at once instead of polling.

Foreign errors are mapped here (``map_error``) to ``edge_agent.presence.ble_port``'s tree:

    BleakBluetoothNotAvailableError NO_BLUETOOTH / NO_BLE_CENTRAL_ROLE  -> AdapterMissingError
    BleakBluetoothNotAvailableError POWERED_OFF                         -> AdapterPoweredOffError
    D-Bus org.freedesktop.DBus.Error.ServiceUnknown / NameHasNoOwner    -> BluezUnavailableError
    D-Bus org.freedesktop.DBus.Error.UnknownObject / UnknownMethod,
      bleak "adapter '...' not found"                                   -> AdapterMissingError
    D-Bus org.bluez.Error.InProgress                                    -> ScanInProgressError
    D-Bus org.bluez.Error.NotReady                                      -> AdapterNotReadyError
    bleak "passive scanning on Linux requires BlueZ >= 5.56 ..."        -> PassiveUnsupportedError
    OSError / EOFError (no system bus socket, the bus went away)        -> BluezUnavailableError
    TimeoutError, any other BleakError or D-Bus error                   -> ScanFailedError

Messages keep only the D-Bus error name: BlueZ puts device paths (which contain the address) in
some error texts, and these messages end up in logs and health.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason, BleakError
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError

from edge_agent.presence.ble_port import (
    AdapterMissingError,
    AdapterNotReadyError,
    AdapterPoweredOffError,
    BluezUnavailableError,
    PassiveUnsupportedError,
    ScanFailedError,
    ScanInProgressError,
    ScannerError,
)

BLUEZ = "org.bluez"
ADAPTER_IFACE = "org.bluez.Adapter1"
MONITOR_MANAGER_IFACE = "org.bluez.AdvertisementMonitorManager1"
_DBUS = "org.freedesktop.DBus"

_BY_DBUS_NAME: dict[str, type[ScannerError]] = {
    "org.freedesktop.DBus.Error.ServiceUnknown": BluezUnavailableError,
    "org.freedesktop.DBus.Error.NameHasNoOwner": BluezUnavailableError,
    "org.freedesktop.DBus.Error.NoReply": BluezUnavailableError,
    "org.freedesktop.DBus.Error.UnknownObject": AdapterMissingError,
    "org.freedesktop.DBus.Error.UnknownMethod": AdapterMissingError,
    "org.bluez.Error.InProgress": ScanInProgressError,
    "org.bluez.Error.NotReady": AdapterNotReadyError,
}


def map_dbus_error(name: str) -> ScannerError:
    return _BY_DBUS_NAME.get(name, ScanFailedError)(name)


def map_error(exc: BaseException) -> ScannerError | None:
    """The ``ScannerError`` a foreign exception means, or None if it is not a device failure."""
    if isinstance(exc, ScannerError):
        return exc
    if isinstance(exc, BleakBluetoothNotAvailableError):
        if exc.reason is BleakBluetoothNotAvailableReason.POWERED_OFF:
            return AdapterPoweredOffError("adapter powered off")
        if exc.reason in (
            BleakBluetoothNotAvailableReason.NO_BLUETOOTH,
            BleakBluetoothNotAvailableReason.NO_BLE_CENTRAL_ROLE,
        ):
            return AdapterMissingError(exc.reason.name.lower())
        return ScanFailedError(exc.reason.name.lower())
    if isinstance(exc, DBusError):
        return map_dbus_error(exc.type)
    if isinstance(exc, BleakError):
        dbus_name = getattr(exc, "dbus_error", None)  # BleakDBusError
        if isinstance(dbus_name, str):
            return map_dbus_error(dbus_name)
        text = str(exc)
        if "passive scanning" in text:
            return PassiveUnsupportedError("no AdvertisementMonitor in BlueZ")
        if text.startswith("adapter '") and text.endswith("not found"):
            return AdapterMissingError("adapter not found")
        return ScanFailedError(type(exc).__name__)
    if isinstance(exc, TimeoutError):
        return ScanFailedError("timed out")
    if isinstance(exc, (OSError, EOFError)):
        return BluezUnavailableError(f"system bus: {type(exc).__name__}")
    return None


@dataclass(frozen=True, slots=True)
class AdapterInfo:
    powered: bool
    passive: bool  # AdvertisementMonitorManager1 with or_patterns


class BluezBus:
    """One dbus-fast system-bus connection watching bluetoothd and one adapter."""

    def __init__(self, adapter: str) -> None:
        self.adapter_path = f"/org/bluez/{adapter}"
        self.changed = asyncio.Event()
        self._bus: MessageBus | None = None

    async def _connected(self) -> MessageBus:
        if self._bus is not None and self._bus.connected:
            return self._bus
        self.close()
        try:
            bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        except Exception as exc:
            raise map_error(exc) or BluezUnavailableError(type(exc).__name__) from exc
        bus.add_message_handler(self._on_message)
        rules = (
            f"type='signal',sender='{_DBUS}',member='NameOwnerChanged',arg0='{BLUEZ}'",
            "type='signal',interface='org.freedesktop.DBus.ObjectManager',"
            f"member='InterfacesAdded',arg0path='{self.adapter_path}'",
            "type='signal',interface='org.freedesktop.DBus.ObjectManager',"
            f"member='InterfacesRemoved',arg0path='{self.adapter_path}'",
        )
        for rule in rules:
            await self._call(
                bus, _DBUS, "/org/freedesktop/DBus", _DBUS, "AddMatch", signature="s", body=[rule]
            )
        self._bus = bus
        return bus

    def _on_message(self, message: Message) -> None:
        if message.message_type is not MessageType.SIGNAL:
            return
        if message.member == "NameOwnerChanged" or (
            message.member in ("InterfacesAdded", "InterfacesRemoved")
            and message.body
            and message.body[0] == self.adapter_path
        ):
            self.changed.set()

    @staticmethod
    async def _call(
        bus: MessageBus,
        destination: str,
        path: str,
        interface: str,
        member: str,
        *,
        signature: str = "",
        body: list[Any] | None = None,
    ) -> Message:
        try:
            reply = await bus.call(
                Message(
                    destination=destination,
                    path=path,
                    interface=interface,
                    member=member,
                    signature=signature,
                    body=body or [],
                )
            )
        except Exception as exc:
            raise map_error(exc) or ScanFailedError(type(exc).__name__) from exc
        if reply is None:
            raise BluezUnavailableError("no reply")
        if reply.message_type is MessageType.ERROR:
            raise map_dbus_error(reply.error_name or "unknown")
        return reply

    async def probe(self) -> AdapterInfo:
        """The adapter as bluetoothd reports it now; raises a ``ScannerError`` if unusable."""
        bus = await self._connected()
        reply = await self._call(
            bus, BLUEZ, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"
        )
        interfaces = reply.body[0].get(self.adapter_path, {})
        adapter = interfaces.get(ADAPTER_IFACE)
        if adapter is None:
            raise AdapterMissingError("adapter not found")
        roles = adapter.get("Roles")
        if roles is not None and "central" not in roles.value:
            raise AdapterMissingError("no LE central role")
        monitor = interfaces.get(MONITOR_MANAGER_IFACE, {})
        types = monitor.get("SupportedMonitorTypes")
        return AdapterInfo(
            powered=bool(adapter["Powered"].value) if "Powered" in adapter else False,
            passive=types is not None and "or_patterns" in types.value,
        )

    async def set_powered(self, on: bool) -> None:
        bus = await self._connected()
        await self._call(
            bus,
            BLUEZ,
            self.adapter_path,
            "org.freedesktop.DBus.Properties",
            "Set",
            signature="ssv",
            body=[ADAPTER_IFACE, "Powered", Variant("b", on)],
        )

    def close(self) -> None:
        if self._bus is not None:
            with contextlib.suppress(Exception):
                self._bus.disconnect()
            self._bus = None

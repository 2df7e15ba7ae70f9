"""python-dbusmock template: the stock ``bluez5`` template plus beacons with correctly-typed data.

Loaded by path (``python -m dbusmock --system --template tests/ble/bluez_beacons_template.py``).
The stock ``AddDevice`` sends ``ManufacturerData``/``ServiceData`` as an array of dicts, which
bleak drops; here they are ``a{qv}``/``a{sv}`` of ``ay`` and RSSI is ``n``, as bluetoothd sends
them (doc/org.bluez.Device.rst). Added on ``org.bluez.Mock``:

    AddBeacon(adapter s, address s, name s, rssi n, manufacturer a{qay}, service a{say}, uuids as)
    Advertise(adapter s, address s, rssi n, manufacturer a{qay}, service a{say})
    RemoveBeacon(adapter s, address s)
    FailStarts(adapter s, error s, count u)  the next `count` StartDiscovery / RegisterMonitor
                                             calls fail with D-Bus error `error`
    Flood(adapter s, address s, count u, rate d, manufacturer a{qay}) -> u
                                             `count` RSSI updates at `rate`/s (0: flat out);
                                             returns when done (for the benchmark)

Adapters come from the stock ``AddAdapter``, wrapped so their StartDiscovery and RegisterMonitor
honour ``FailStarts``. The mock applies no passive-scan patterns.
"""

# ruff: noqa: N802, PLR0917  (D-Bus method names and signatures)
# mypy: ignore-errors

from __future__ import annotations

import time

import dbus
from dbusmock import OBJECT_MANAGER_IFACE, mockobject
from dbusmock.templates import bluez5
from dbusmock.templates.bluez5 import *  # noqa: F403  (the stock methods, picked up by dbusmock)

BUS_NAME = bluez5.BUS_NAME
MAIN_OBJ = bluez5.MAIN_OBJ
SYSTEM_BUS = True
IS_OBJECT_MANAGER = True
MOCK = bluez5.BLUEZ_MOCK_IFACE
DEVICE = bluez5.DEVICE_IFACE
ADAPTER = bluez5.ADAPTER_IFACE
MONITOR_MANAGER = bluez5.ADVERTISEMENT_MONITOR_MANAGER_IFACE

_failures: dict[str, list[str]] = {}  # adapter path -> error names still to raise


def load(mock, parameters):
    bluez5.load(mock, parameters)


def _device_path(adapter, address):
    return f"/org/bluez/{adapter}/dev_{address.replace(':', '_').upper()}"


def _mfg(manufacturer):
    return dbus.Dictionary(
        {
            dbus.UInt16(k): dbus.Array([dbus.Byte(b) for b in v], signature="y")
            for k, v in manufacturer.items()
        },
        signature="qv",
    )


def _svc(service):
    return dbus.Dictionary(
        {
            dbus.String(k): dbus.Array([dbus.Byte(b) for b in v], signature="y")
            for k, v in service.items()
        },
        signature="sv",
    )


def _maybe_fail(adapter_path):
    pending = _failures.get(adapter_path)
    if pending:
        raise dbus.exceptions.DBusException("simulated failure", name=pending.pop(0))


def _start_discovery(adapter):
    _maybe_fail(adapter.path)
    bluez5.StartDiscovery(adapter)


def _register_monitor(adapter, monitor_path):
    _maybe_fail(adapter.path)
    bluez5.RegisterMonitor(adapter, monitor_path)


@dbus.service.method(MOCK, in_signature="ss", out_signature="s")
def AddAdapter(self, device_name, system_name):
    path = bluez5.AddAdapter(self, device_name, system_name)
    adapter = mockobject.objects[path]
    adapter.AddMethods(ADAPTER, [("StartDiscovery", "", "", _start_discovery)])
    if MONITOR_MANAGER in adapter.props:
        adapter.AddMethods(MONITOR_MANAGER, [("RegisterMonitor", "o", "", _register_monitor)])
    _failures.pop(path, None)
    return path


@dbus.service.method(MOCK, in_signature="ssu", out_signature="")
def FailStarts(self, adapter, error, count):
    _failures[f"/org/bluez/{adapter}"] = [str(error)] * int(count)


@dbus.service.method(MOCK, in_signature="sssna{qay}a{say}as", out_signature="s")
def AddBeacon(self, adapter, address, name, rssi, manufacturer, service, uuids):
    adapter_path = f"/org/bluez/{adapter}"
    if adapter_path not in mockobject.objects:
        raise dbus.exceptions.DBusException("no adapter", name=MOCK + ".NoSuchAdapter")
    path = _device_path(adapter, address)
    properties = {
        "Address": dbus.String(address),
        "AddressType": dbus.String("random"),
        "Name": dbus.String(name),
        "Alias": dbus.String(name),
        "Adapter": dbus.ObjectPath(adapter_path),
        "Paired": dbus.Boolean(False),
        "Connected": dbus.Boolean(False),
        "Trusted": dbus.Boolean(False),
        "Blocked": dbus.Boolean(False),
        "LegacyPairing": dbus.Boolean(False),
        "ServicesResolved": dbus.Boolean(False),
        "UUIDs": dbus.Array([dbus.String(u) for u in uuids], signature="s"),
        "RSSI": dbus.Int16(rssi),
        "ManufacturerData": _mfg(manufacturer),
        "ServiceData": _svc(service),
    }
    self.AddObject(path, DEVICE, properties, [])
    self.EmitSignal(
        OBJECT_MANAGER_IFACE,
        "InterfacesAdded",
        "oa{sa{sv}}",
        [dbus.ObjectPath(path), {DEVICE: properties}],
    )
    return path


def _advertise(adapter, address, rssi, manufacturer, service):
    device = mockobject.objects[_device_path(adapter, address)]
    changed = {"RSSI": dbus.Int16(rssi)}
    if manufacturer:
        changed["ManufacturerData"] = _mfg(manufacturer)
    if service:
        changed["ServiceData"] = _svc(service)
    device.props[DEVICE].update(changed)
    device.EmitSignal(
        dbus.PROPERTIES_IFACE,
        "PropertiesChanged",
        "sa{sv}as",
        [DEVICE, dbus.Dictionary(changed, signature="sv"), dbus.Array([], signature="s")],
    )


@dbus.service.method(MOCK, in_signature="ssna{qay}a{say}", out_signature="")
def Advertise(self, adapter, address, rssi, manufacturer, service):
    _advertise(adapter, address, rssi, manufacturer, service)


@dbus.service.method(MOCK, in_signature="ss", out_signature="")
def RemoveBeacon(self, adapter, address):
    path = _device_path(adapter, address)
    self.RemoveObject(path)
    self.EmitSignal(
        OBJECT_MANAGER_IFACE, "InterfacesRemoved", "oas", [dbus.ObjectPath(path), [DEVICE]]
    )


@dbus.service.method(MOCK, in_signature="ssuda{qay}", out_signature="u")
def Flood(self, adapter, address, count, rate, manufacturer):
    interval = 1.0 / rate if rate > 0 else 0.0
    started = time.monotonic()
    for i in range(int(count)):
        if interval:
            delay = started + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        # A changing payload byte, so BlueZ-style duplicate filtering would not hide any.
        payload = {k: bytes(v[:-1]) + bytes([i & 0xFF]) for k, v in manufacturer.items()}
        _advertise(adapter, address, -40 - (i % 50), payload, {})
    return dbus.UInt32(count)

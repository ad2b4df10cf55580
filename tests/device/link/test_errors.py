"""bleak / BlueZ / D-Bus errors become hipsense errors with advice, in one place."""

from __future__ import annotations

import pytest
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
)

from hipsense.device.ble_errors import translate_error
from hipsense.errors import DeviceError, DeviceNotFoundError, LinkLostError


@pytest.mark.parametrize(
    ("exc", "kind", "advice"),
    [
        (BleakDeviceNotFoundError("AA:BB"), DeviceNotFoundError, "switched on"),
        (
            BleakBluetoothNotAvailableError("off", BleakBluetoothNotAvailableReason.POWERED_OFF),
            DeviceError,
            "bluetoothctl power on",
        ),
        (
            BleakBluetoothNotAvailableError("none", BleakBluetoothNotAvailableReason.NO_BLUETOOTH),
            DeviceError,
            "bluetoothctl list",
        ),
        (BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"]), DeviceError, "bluetoothctl power on"),
        (BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", []), DeviceError, "systemctl start bluetooth"),
        (BleakDBusError("org.freedesktop.DBus.Error.AccessDenied", []), DeviceError, "bluetooth` group"),
        (BleakDBusError("org.bluez.Error.Failed", ["le-connection-abort-by-local"]), LinkLostError, "rfkill block wlan"),
        (BleakError("Not connected"), LinkLostError, "rfkill block wlan"),
        (TimeoutError(), LinkLostError, "within a few metres"),
        (EOFError(), LinkLostError, "systemctl start bluetooth"),
        (FileNotFoundError("/run/dbus/system_bus_socket"), DeviceError, "systemctl start bluetooth"),
        (BleakGATTProtocolError(0x03), DeviceError, "hipsense scan"),
    ],
)
def test_translation_gives_type_and_actionable_advice(exc: BaseException, kind: type, advice: str) -> None:
    error = translate_error(exc, action="connecting to WT901BLE68", address="F1:57:00:00:00:01")
    assert type(error) is kind
    message = str(error)
    assert message.startswith("connecting to WT901BLE68 F1:57:00:00:00:01 failed")
    assert advice in message


def test_translated_errors_pass_through() -> None:
    original = LinkLostError("already ours")
    assert translate_error(original, action="x") is original

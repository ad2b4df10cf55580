"""Bluetooth failures in words a person can act on: the one place bleak, BlueZ and D-Bus
exceptions are read and translated into :mod:`hipsense.errors` types with advice.

Raspberry Pi pitfalls the advice names (sensors.md §7): "Not connected",
"le-connection-abort-by-local" and "Software caused connection abort" on a Pi are usually the
shared Wi-Fi/Bluetooth chip (``rfkill block wlan``, 5 GHz Wi-Fi or a USB dongle); a stopped
``bluetooth`` service; a user outside the ``bluetooth`` group.
"""

from __future__ import annotations

from typing import Final

from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakCharacteristicNotFoundError,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
)

from hipsense.errors import DeviceError, DeviceNotFoundError, LinkLostError

__all__ = [
    "ADVICE_BLUETOOTH_OFF",
    "ADVICE_BLUEZ_DOWN",
    "ADVICE_NO_ADAPTER",
    "ADVICE_PERMISSION",
    "ADVICE_RADIO",
    "ADVICE_SENSOR_MISSING",
    "ADVICE_WRONG_SENSOR",
    "translate_error",
]

ADVICE_SENSOR_MISSING: Final = (
    "Is the sensor switched on and charged, and within a few metres of the Raspberry Pi? "
    "Press its button or put it on the charger briefly to wake it, then try again."
)
ADVICE_BLUETOOTH_OFF: Final = (
    "Bluetooth is off on this computer: run `bluetoothctl power on` "
    "(and `rfkill unblock bluetooth` if it is blocked)."
)
ADVICE_NO_ADAPTER: Final = (
    "No Bluetooth adapter was found: check `bluetoothctl list`; on a Raspberry Pi make sure "
    "`dtoverlay=disable-bt` is not set in /boot/firmware/config.txt, or plug in a USB dongle."
)
ADVICE_BLUEZ_DOWN: Final = (
    "The Bluetooth service is not running: run `sudo systemctl start bluetooth` "
    "(and `sudo systemctl enable bluetooth` to start it at boot)."
)
ADVICE_PERMISSION: Final = (
    "This user may not use Bluetooth: add it to the `bluetooth` group "
    "(`sudo usermod -aG bluetooth $USER`) and log in again."
)
ADVICE_RADIO: Final = (
    "The radio link broke. On a Raspberry Pi the built-in Wi-Fi shares the Bluetooth chip: use "
    "5 GHz Wi-Fi or Ethernet, `rfkill block wlan`, or a USB Bluetooth dongle; keep the sensor "
    "within a few metres."
)
ADVICE_WRONG_SENSOR: Final = (
    "The device does not offer what this sensor type needs: check that the configured sensor "
    "type matches the device (`hipsense scan` lists what it sees)."
)

# D-Bus / BlueZ error names and texts → (error class, advice). The only place that reads
# error text (bleak gives no better type for these).
_DBUS_ADVICE: Final[tuple[tuple[str, type[DeviceError], str], ...]] = (
    ("org.bluez.Error.NotReady", DeviceError, ADVICE_BLUETOOTH_OFF),
    ("org.freedesktop.DBus.Error.ServiceUnknown", DeviceError, ADVICE_BLUEZ_DOWN),
    ("org.freedesktop.DBus.Error.AccessDenied", DeviceError, ADVICE_PERMISSION),
    ("org.freedesktop.DBus.Error.UnknownObject", DeviceNotFoundError, ADVICE_SENSOR_MISSING),
    ("org.bluez.Error.DoesNotExist", DeviceNotFoundError, ADVICE_SENSOR_MISSING),
)
_RADIO_TEXTS: Final = (
    "le-connection-abort-by-local",
    "software caused connection abort",
    "not connected",
    "connection timeout",
    "br-connection-canceled",
    "in progress",
)


def translate_error(exc: BaseException, *, action: str, address: str | None = None) -> DeviceError:
    """The :mod:`hipsense.errors` error for what bleak, BlueZ or D-Bus raised while ``action``.

    Already-translated errors pass through. The result's message names the action and the
    sensor, then says what a person can do. Callers ``raise translate_error(...) from exc``.
    """
    if isinstance(exc, DeviceError):
        return exc
    who = f" {address}" if address else ""
    head = f"{action}{who} failed"
    if isinstance(exc, BleakDeviceNotFoundError):
        return DeviceNotFoundError(f"{head}: the sensor was not found. {ADVICE_SENSOR_MISSING}", address=address)
    if isinstance(exc, BleakBluetoothNotAvailableError):
        reason = exc.reason
        if reason is BleakBluetoothNotAvailableReason.POWERED_OFF:
            advice = ADVICE_BLUETOOTH_OFF
        elif reason in (
            BleakBluetoothNotAvailableReason.NO_BLUETOOTH,
            BleakBluetoothNotAvailableReason.NO_BLE_CENTRAL_ROLE,
        ):
            advice = ADVICE_NO_ADAPTER
        elif reason in (
            BleakBluetoothNotAvailableReason.DENIED_BY_USER,
            BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM,
            BleakBluetoothNotAvailableReason.DENIED_BY_UNKNOWN,
        ):
            advice = ADVICE_PERMISSION
        else:
            advice = ADVICE_BLUETOOTH_OFF
        return DeviceError(f"{head}: Bluetooth is not available ({reason.name}). {advice}")
    if isinstance(exc, BleakCharacteristicNotFoundError):
        return DeviceError(f"{head}: {exc}. {ADVICE_WRONG_SENSOR}")
    if isinstance(exc, BleakGATTProtocolError):
        return DeviceError(f"{head}: the sensor refused ({exc.code.name}). {ADVICE_WRONG_SENSOR}")
    if isinstance(exc, BleakDBusError):
        for name, error_class, advice in _DBUS_ADVICE:
            if exc.dbus_error == name:
                if error_class is DeviceNotFoundError:
                    return DeviceNotFoundError(f"{head}: {exc.dbus_error}. {advice}", address=address)
                return error_class(f"{head}: {exc.dbus_error}. {advice}")
        return LinkLostError(f"{head}: {exc.dbus_error} {exc.dbus_error_details or ''}. {ADVICE_RADIO}")
    if isinstance(exc, TimeoutError):
        return LinkLostError(f"{head}: no answer in time. {ADVICE_SENSOR_MISSING}")
    if isinstance(exc, (EOFError, BrokenPipeError, ConnectionError)):
        return LinkLostError(f"{head}: the connection to BlueZ closed ({exc!r}). {ADVICE_BLUEZ_DOWN}")
    if isinstance(exc, (FileNotFoundError, PermissionError)):
        # dbus-fast cannot open /run/dbus/system_bus_socket
        return DeviceError(f"{head}: the system D-Bus is unreachable ({exc}). {ADVICE_BLUEZ_DOWN}")
    if isinstance(exc, BleakError):
        text = str(exc).lower()
        if any(t in text for t in _RADIO_TEXTS):
            return LinkLostError(f"{head}: {exc}. {ADVICE_RADIO}")
        return DeviceError(f"{head}: {exc}. {ADVICE_RADIO}")
    return DeviceError(f"{head}: unexpected {type(exc).__name__}: {exc}")

"""A bleak backend on Google's Bumble stack: bleak's own API, a virtual radio, no hardware.

The application keeps calling ``BleakScanner`` and ``BleakClient`` exactly as it does on the
Pi; only the ``backend=`` argument changes. Scans, connections, GATT discovery, CCCD writes,
commands and notifications cross Bumble's real host and controller code over an in-process
:class:`bumble.link.LocalLink`, so no adapter, D-Bus or root is needed::

    radio = VirtualRadio()
    sensor = WitMotionEmulator(radio, ...)          # hipsense.device.emulator
    await sensor.start()
    device = await BleakScanner.find_device_by_name("WT901BLE68",
                                                    backend=radio.scanner_backend)
    async with BleakClient(device, backend=radio.client_backend) as client:
        ...

Bumble is pinned to one exact version in ``pyproject.toml`` (its API is not stable). Only
this package and :mod:`hipsense.device.emulator` import it.
"""

from __future__ import annotations

from hipsense.device.bumble_backend._radio import VirtualRadio
from hipsense.device.bumble_backend.client import BumbleClient
from hipsense.device.bumble_backend.scanner import BumbleScanner

__all__ = ["BumbleClient", "BumbleScanner", "VirtualRadio"]

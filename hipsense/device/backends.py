"""Which Bluetooth the command line talks to: the system's (BlueZ), or an emulated sensor.

``HIPSENSE_BLE_BACKEND`` selects it, so ``hipsense scan``, ``calibrate`` and ``record`` can be
driven end to end without hardware — in tests, in a demo, on a laptop:

* unset, empty or ``bluez``: the real adapter (bleak's default backend);
* ``emulator:<recording.hsrec>``: an emulated WitMotion sensor on a virtual Bumble radio,
  advertising under the recording's address and replaying its samples (from the sensor's
  power-on, once, then repeating the last sample as a sensor lying still would).
  ``HIPSENSE_EMULATOR_SPEED`` (default 1) replays faster than real time; then host receive
  times are compressed and meaningless, so consumers that need sample times use
  :attr:`BleBackends.speed` to re-time samples by count (see ``hipsense.calibration.flow``).

Only WitMotion recordings can be emulated (it is the one emulated sensor so far).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from hipsense.errors import ConfigError, DatasetError

__all__ = ["ENV_BACKEND", "ENV_SPEED", "BleBackends", "open_ble_backends"]

ENV_BACKEND = "HIPSENSE_BLE_BACKEND"
ENV_SPEED = "HIPSENSE_EMULATOR_SPEED"


@dataclass(frozen=True)
class BleBackends:
    """bleak ``backend=`` classes (None = the platform's), and the replay speed."""

    scanner: Any = None
    client: Any = None
    speed: float = 1.0
    description: str = "system Bluetooth (BlueZ)"

    @property
    def emulated(self) -> bool:
        return self.scanner is not None


def _emulated_recording(path: str) -> tuple[Any, str, str]:
    """A WitMotion emulator recording from a raw hipsense recording: (recording, address, name)."""
    from hipsense.device.decoders.witmotion import WitMotionDecoder, parse_notification
    from hipsense.device.emulator import WitMotionRecording
    from hipsense.device.recording_format import read_recording
    from hipsense.errors import DecodeError

    recording = read_recording(path)
    if recording.header.sensor_type != WitMotionDecoder.sensor_type:
        raise ConfigError(
            f"{ENV_BACKEND}: {path} is a {recording.header.sensor_type} recording; only "
            "WitMotion recordings can be emulated", setting=ENV_BACKEND)
    rows = []
    for record in recording.records:
        try:
            frames = parse_notification(record.payload)
        except DecodeError:
            continue  # garbage in the recording is not part of the replay
        rows.append(np.hstack((frames.acc, frames.gyr, frames.angle)))
    if not rows or sum(len(r) for r in rows) == 0:
        raise DatasetError(f"{path}: no WitMotion samples to replay")
    raw = np.vstack(rows).astype(np.int16)
    name = str(recording.header.metadata.get("name") or "WT901BLE68")
    return WitMotionRecording(recording.header.rate_hz, raw), recording.header.address, name


@asynccontextmanager
async def open_ble_backends(spec: str | None = None) -> AsyncIterator[BleBackends]:
    """The Bluetooth selected by ``spec`` (default: ``$HIPSENSE_BLE_BACKEND``), for one
    ``asyncio.run``: an emulated sensor is powered on here and off on exit."""
    spec = os.environ.get(ENV_BACKEND, "") if spec is None else spec
    if spec in ("", "bluez", "system"):
        yield BleBackends()
        return
    if not spec.startswith("emulator:"):
        raise ConfigError(f"{ENV_BACKEND}={spec!r}: use 'bluez' or 'emulator:<recording>'",
                          setting=ENV_BACKEND)
    try:
        speed = float(os.environ.get(ENV_SPEED, "1") or "1")
    except ValueError:
        raise ConfigError(f"{ENV_SPEED} must be a number", setting=ENV_SPEED) from None
    if not 0 < speed <= 100:
        raise ConfigError(f"{ENV_SPEED} must be within (0, 100]", setting=ENV_SPEED)
    from hipsense.device.bumble_backend import VirtualRadio
    from hipsense.device.emulator import WitMotionEmulator

    path = spec.removeprefix("emulator:")
    recording, address, name = _emulated_recording(path)
    radio = VirtualRadio()
    sensor = WitMotionEmulator(radio, recording, name=name, address=address, speed=speed,
                               loop=False)
    try:
        async with sensor:
            yield BleBackends(radio.scanner_backend, radio.client_backend, speed,
                              f"emulated {name} {address} replaying {path}")
    finally:
        await radio.close()

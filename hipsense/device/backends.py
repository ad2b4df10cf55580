"""Which Bluetooth the command line talks to: the system's (BlueZ), or an emulated sensor.

``HIPSENSE_BLE_BACKEND`` selects it, so ``hipsense scan``, ``calibrate`` and ``record`` can be
driven end to end without hardware — in tests, in a demo, on a laptop:

* unset, empty or ``bluez``: the real adapter (bleak's default backend);
* ``emulator:<recording>``: an emulated sensor on a virtual Bumble radio replaying the
  recording's samples (from the sensor's power-on, once, then repeating the last sample as a
  sensor lying still would). A raw ``hipsense record`` file is replayed as the sensor that
  recorded it, under its address (a WitMotion recording byte for byte); a UCI, MEx or hipsense
  CSV file as a WitMotion. ``HIPSENSE_EMULATOR_SENSOR`` replays it as any registered sensor
  type instead (an accelerometer-only recording: as ``polar`` or ``metamotion``).
  ``HIPSENSE_EMULATOR_SPEED`` (default 1) replays faster than real time; then host receive
  times are compressed and meaningless, so consumers that need sample times use
  :attr:`BleBackends.speed` to re-time samples by count (see ``hipsense.calibration.flow``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from hipsense.errors import ConfigError, DatasetError

__all__ = ["ENV_BACKEND", "ENV_SENSOR", "ENV_SPEED", "BleBackends", "open_ble_backends"]

ENV_BACKEND = "HIPSENSE_BLE_BACKEND"
ENV_SPEED = "HIPSENSE_EMULATOR_SPEED"
ENV_SENSOR = "HIPSENSE_EMULATOR_SENSOR"


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


def _emulated_sensor(path: str, sensor_type: str | None, radio: Any, speed: float) -> Any:
    """The emulated sensor replaying ``path`` (as ``sensor_type``, or as what recorded it)."""
    from hipsense.device.decoders import DECODERS, WitMotionDecoder
    from hipsense.device.emulator import ImuRecording, WitMotionEmulator, emulate
    from hipsense.device.recording_format import read_recording
    from hipsense.device.sample_files import read_samples

    if sensor_type is not None and sensor_type not in DECODERS:
        raise ConfigError(f"{ENV_SENSOR}={sensor_type!r}: use one of {', '.join(DECODERS)}", setting=ENV_SENSOR)
    samples = read_samples(path)
    recorded_by = samples.source.removeprefix("hipsense-ble:") if samples.source.startswith("hipsense-ble:") else None
    address = read_recording(path).header.address if recorded_by is not None else None
    sensor_type = sensor_type or recorded_by or WitMotionDecoder.sensor_type
    if sensor_type == recorded_by == WitMotionDecoder.sensor_type:  # its own frames, byte for byte
        raw, address, name = _witmotion_recording(path)
        return WitMotionEmulator(radio, raw, name=name, address=address, speed=speed, loop=False)
    recording = ImuRecording.from_samples(samples.t_s, samples.acc_ms2, samples.gyr_rad_s)
    try:
        return emulate(sensor_type, radio, recording, address=address, speed=speed, loop=False)
    except ValueError as exc:  # a sensor that always sends its gyroscope, and no gyroscope recorded
        raise ConfigError(f"{ENV_BACKEND}: {path}: {exc}", setting=ENV_SENSOR) from None


def _witmotion_recording(path: str) -> tuple[Any, str, str]:
    """A WitMotion emulator recording from a raw WitMotion recording: (recording, address, name)."""
    from hipsense.device.decoders.witmotion import parse_notification
    from hipsense.device.emulator import WitMotionRecording
    from hipsense.device.recording_format import read_recording
    from hipsense.errors import DecodeError

    recording = read_recording(path)
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

    path = spec.removeprefix("emulator:")
    radio = VirtualRadio()
    try:
        sensor = _emulated_sensor(path, os.environ.get(ENV_SENSOR) or None, radio, speed)
        async with sensor:
            yield BleBackends(radio.scanner_backend, radio.client_backend, speed,
                              f"emulated {sensor.name} {sensor.address} replaying {path}")
    finally:
        await radio.close()

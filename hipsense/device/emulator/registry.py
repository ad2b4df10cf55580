"""Which sensor types can be emulated, and how: sensor type → a ready-to-start emulator.

Keyed by the decoder registry's names (:data:`hipsense.device.decoders.DECODERS`), so the
service's ``sensor.backend = "emulator"`` works for every type listed here with the same
configuration as the real sensor. Every emulator replays the same motion, an
:class:`ImuRecording` in physical units, encoding it into its own wire format. An
accelerometer-only recording can be replayed by the sensors that stream their accelerometer
alone (Polar, MetaMotion); one that always sends its gyroscope (WitMotion, Movella DOT) refuses it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hipsense.device.bumble_backend._radio import VirtualRadio
from hipsense.device.decoders import MetaMotionDecoder, MovellaDotDecoder, PolarPmdDecoder, WitMotionDecoder
from hipsense.device.emulator._peripheral import EmulatedPeripheral
from hipsense.device.emulator._recording import ImuRecording
from hipsense.device.emulator.metamotion import MetaMotionEmulator
from hipsense.device.emulator.movella_dot import MovellaDotEmulator
from hipsense.device.emulator.polar import PolarVeritySenseEmulator
from hipsense.device.emulator.witmotion import WitMotionEmulator, WitMotionRecording

__all__ = ["EMULATORS", "EmulatorFactory", "emulate"]

EmulatorFactory = Callable[[VirtualRadio, ImuRecording, int, "str | None", float, bool], EmulatedPeripheral]
"""(radio, recording, index, address or None, speed, loop) → an emulator, not yet started.
``index`` numbers the sensors of one patient (0, 1) so their names and addresses differ."""


def _needs_gyroscope(recording: ImuRecording, sensor: str) -> np.ndarray:
    if recording.gyr_dps is None:
        raise ValueError(f"an emulated {sensor} always sends its gyroscope: it needs a recording with gyroscope "
                         "data (an accelerometer-only one can be replayed as polar or metamotion)")
    return recording.gyr_dps


def _witmotion(radio: VirtualRadio, recording: ImuRecording, index: int, address: str | None,
               speed: float, loop: bool) -> EmulatedPeripheral:
    gyr_dps = _needs_gyroscope(recording, "WitMotion")
    acc = recording.acc_ms2
    # The WitMotion also sends its own fused angles; roll and pitch from gravity are what it
    # would show for a slowly moving thigh. Nothing downstream relies on them.
    roll = np.arctan2(acc[:, 1], acc[:, 2])
    pitch = np.arctan2(-acc[:, 0], np.hypot(acc[:, 1], acc[:, 2]))
    euler = np.stack([roll, pitch, np.zeros(len(acc))], axis=1)
    raw = WitMotionRecording.from_si(recording.rate_hz, acc, np.radians(gyr_dps), euler)
    return WitMotionEmulator(radio, raw, name=f"WT901BLE{68 + index}",
                             address=address or f"F1:57:00:00:00:{index + 1:02X}", speed=speed, loop=loop)


def _polar(radio: VirtualRadio, recording: ImuRecording, index: int, address: str | None,
           speed: float, loop: bool) -> EmulatedPeripheral:
    return PolarVeritySenseEmulator(radio, recording, name=f"Polar Sense B5A4E1{index:02X}",
                                    address=address or f"E0:9E:1A:00:00:{index + 1:02X}", speed=speed, loop=loop)


def _movella_dot(radio: VirtualRadio, recording: ImuRecording, index: int, address: str | None,
                 speed: float, loop: bool) -> EmulatedPeripheral:
    _needs_gyroscope(recording, "Movella DOT")
    return MovellaDotEmulator(radio, recording, name="Movella DOT",
                              address=address or f"D4:22:CD:00:00:{index + 1:02X}", speed=speed, loop=loop)


def _metamotion(radio: VirtualRadio, recording: ImuRecording, index: int, address: str | None,
                speed: float, loop: bool) -> EmulatedPeripheral:
    return MetaMotionEmulator(radio, recording, name="MetaWear",
                              address=address or f"C7:3D:00:00:00:{index + 1:02X}", speed=speed, loop=loop)


EMULATORS: dict[str, EmulatorFactory] = {
    WitMotionDecoder.sensor_type: _witmotion,
    PolarPmdDecoder.sensor_type: _polar,
    MovellaDotDecoder.sensor_type: _movella_dot,
    MetaMotionDecoder.sensor_type: _metamotion,
}
"""Sensor type → emulator factory: every registered type has one (a test checks)."""


def emulate(sensor_type: str, radio: VirtualRadio, recording: ImuRecording, *, index: int = 0,
            address: str | None = None, speed: float = 1.0, loop: bool = False) -> EmulatedPeripheral:
    """An emulated ``sensor_type`` sensor replaying ``recording`` (start it with ``async with``)."""
    try:
        factory = EMULATORS[sensor_type]
    except KeyError:
        raise ValueError(f"no emulator for sensor type {sensor_type!r}; emulated: {', '.join(EMULATORS)}") from None
    return factory(radio, recording, index, address, speed, loop)

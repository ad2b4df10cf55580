"""Emulated BLE sensors on Google's Bumble stack, for tests and a newcomer's first run.

Each emulated sensor joins a :class:`~hipsense.device.bumble_backend.VirtualRadio`, advertises
like the real device, serves its GATT services, accepts its commands and replays a recording
at real time or faster, encoding samples into the sensor's own wire format. Test controls
simulate what goes wrong on a patient's Pi: :meth:`~EmulatedPeripheral.force_disconnect`,
:meth:`~EmulatedPeripheral.go_silent`, :meth:`~EmulatedPeripheral.send_garbage`,
:meth:`~EmulatedPeripheral.stop_advertising`. :attr:`~EmulatedPeripheral.fates` records what
became of every sample, the ground truth for exactly-once tests.

Sensors: :class:`WitMotionEmulator` (raw int16 frames, no clock), :class:`PolarVeritySenseEmulator`
(PMD control point, delta-compressed ACC and GYRO frames, ns device clock) and
:class:`MovellaDotEmulator` (rate quantities, wrapping µs clock) and :class:`MetaMotionEmulator`
(packed raw acc + gyro messages, no clock); the last three replay an :class:`ImuRecording` in
physical units. :data:`EMULATORS` maps the decoder registry's sensor
types to them (:func:`emulate`).
"""

from __future__ import annotations

from hipsense.device.emulator._peripheral import EmulatedPeripheral, Fate, SampleFate
from hipsense.device.emulator._recording import ImuRecording
from hipsense.device.emulator.metamotion import MetaMotionEmulator
from hipsense.device.emulator.movella_dot import MovellaDotEmulator
from hipsense.device.emulator.polar import PolarVeritySenseEmulator
from hipsense.device.emulator.registry import EMULATORS, emulate
from hipsense.device.emulator.witmotion import (
    WitMotionEmulator,
    WitMotionRecording,
    encode_data_frame,
    encode_register_frame,
    sample_index,
)

__all__ = [
    "EMULATORS",
    "EmulatedPeripheral",
    "Fate",
    "ImuRecording",
    "MetaMotionEmulator",
    "MovellaDotEmulator",
    "PolarVeritySenseEmulator",
    "SampleFate",
    "WitMotionEmulator",
    "WitMotionRecording",
    "emulate",
    "encode_data_frame",
    "encode_register_frame",
    "sample_index",
]

"""An emulated WitMotion WT901BLE / BWT901BLECL (BLE 5.0) on Bumble, and its frame encoder.

Written from the byte tables in ``docs/sensors.md`` §1, independently of the project's decoder,
so that a test through both catches a mistake in either:

* service ``0000ffe5-…-00805f9a34fb``, notify ``…ffe4…``, write ``…ffe9…``: the vendor base ends
  in ``9a34fb``, not the SIG ``9b34fb``;
* advertises as ``WT901BLE<nn>`` with the service UUID;
* streams 20-byte ``55 61`` frames as soon as a client subscribes, several per notification,
  at the return rate set by ``FF AA 03 <code> 00`` (factory default 10 Hz);
* answers ``FF AA 27 <reg> 00`` register reads with a ``55 71`` frame on the notify
  characteristic; register 0x64 is the battery (about volts × 100).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from hipsense.device.bumble_backend._radio import VirtualRadio
from hipsense.device.emulator._peripheral import EmulatedPeripheral

logger = logging.getLogger(__name__)

__all__ = [
    "NOTIFY_UUID",
    "RATE_CODES_HZ",
    "SERVICE_UUID",
    "WRITE_UUID",
    "WitMotionEmulator",
    "WitMotionRecording",
    "encode_data_frame",
    "encode_register_frame",
]

SERVICE_UUID = "0000ffe5-0000-1000-8000-00805f9a34fb"
NOTIFY_UUID = "0000ffe4-0000-1000-8000-00805f9a34fb"
WRITE_UUID = "0000ffe9-0000-1000-8000-00805f9a34fb"

ACC_FULL_SCALE_G = 16.0
GYRO_FULL_SCALE_DPS = 2000.0
ANGLE_FULL_SCALE_DEG = 180.0
FRAME_BYTES = 20

#: Return-rate register (0x03) codes; 0x0D means no output.
RATE_CODES_HZ: dict[int, float] = {
    0x03: 1.0, 0x04: 2.0, 0x05: 5.0, 0x06: 10.0, 0x07: 20.0,
    0x08: 50.0, 0x09: 100.0, 0x0A: 125.0, 0x0B: 200.0, 0x0D: 0.0,
}  # fmt: skip

REG_RATE = 0x03
REG_READ = 0x27
REG_BATTERY = 0x64
UNLOCK = bytes.fromhex("ffaa6988b5")


def _to_raw(values: npt.ArrayLike, full_scale: float) -> npt.NDArray[np.int16]:
    raw = np.rint(np.asarray(values, dtype=np.float64) / full_scale * 32768.0)
    return np.clip(raw, -32768, 32767).astype(np.int16)


def encode_data_frame(raw: Sequence[int]) -> bytes:
    """One 20-byte ``55 61`` frame from nine raw int16 values (acc xyz, gyro xyz, angle xyz)."""
    if len(raw) != 9:
        raise ValueError(f"a 0x61 frame holds 9 values, got {len(raw)}")
    return struct.pack("<BB9h", 0x55, 0x61, *(int(v) for v in raw))


def encode_register_frame(first_register: int, values: Sequence[int]) -> bytes:
    """A 20-byte ``55 71`` register-read answer: first register, then 8 int16 registers."""
    padded = [int(v) for v in values][:8] + [0] * (8 - min(len(values), 8))
    return struct.pack("<BBH8h", 0x55, 0x71, first_register, *padded)


@dataclasses.dataclass(frozen=True)
class WitMotionRecording:
    """What the emulated WitMotion replays: raw int16 frames at a fixed rate.

    Attributes
    ----------
    rate_hz
        The rate the samples were taken at.
    raw
        int16, shape (n, 9): acc xyz (±16 g), gyro xyz (±2000 deg/s), roll/pitch/yaw (±180°),
        exactly as the sensor would put them on the air.
    """

    rate_hz: float
    raw: npt.NDArray[np.int16]

    def __post_init__(self) -> None:
        raw = np.asarray(self.raw, dtype=np.int16)
        if raw.ndim != 2 or raw.shape[1] != 9 or raw.shape[0] == 0:
            raise ValueError(f"raw must have shape (n>0, 9), got {raw.shape}")
        if self.rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {self.rate_hz}")
        object.__setattr__(self, "raw", raw)

    @property
    def n(self) -> int:
        return int(self.raw.shape[0])

    @classmethod
    def from_units(
        cls,
        rate_hz: float,
        acc_g: npt.ArrayLike,
        gyro_dps: npt.ArrayLike,
        angle_deg: npt.ArrayLike,
    ) -> WitMotionRecording:
        """From sensor units (g, deg/s, deg), each shape (n, 3); values saturate like the sensor."""
        raw = np.concatenate(
            [
                _to_raw(acc_g, ACC_FULL_SCALE_G),
                _to_raw(gyro_dps, GYRO_FULL_SCALE_DPS),
                _to_raw(angle_deg, ANGLE_FULL_SCALE_DEG),
            ],
            axis=1,
        )
        return cls(rate_hz=rate_hz, raw=raw)

    @classmethod
    def from_si(
        cls,
        rate_hz: float,
        acc_ms2: npt.ArrayLike,
        gyr_rad_s: npt.ArrayLike,
        euler_rad: npt.ArrayLike,
    ) -> WitMotionRecording:
        """From SI units (m/s², rad/s, rad), as the decoders produce them."""
        return cls.from_units(
            rate_hz,
            np.asarray(acc_ms2, dtype=np.float64) / 9.80665,
            np.degrees(np.asarray(gyr_rad_s, dtype=np.float64)),
            np.degrees(np.asarray(euler_rad, dtype=np.float64)),
        )

    @classmethod
    def numbered(cls, n: int, rate_hz: float = 100.0) -> WitMotionRecording:
        """A thigh swinging at 0.5 Hz whose samples carry their own index, for exactly-once tests.

        Sample ``i`` has gyro x raw = ``i & 0x7FFF`` and gyro y raw = ``i >> 15``: see
        :func:`sample_index`. Acceleration and angles follow a plausible ±40° swing.
        """
        i = np.arange(n)
        t = i / rate_hz
        pitch = 40.0 * np.sin(2 * math.pi * 0.5 * t)
        acc = np.stack(
            [np.sin(np.radians(pitch)), np.zeros(n), np.cos(np.radians(pitch))], axis=1
        )
        angles = np.stack([np.zeros(n), pitch, np.full(n, 70.0)], axis=1)
        recording = cls.from_units(rate_hz, acc, np.zeros((n, 3)), angles)
        raw = recording.raw.copy()
        raw[:, 3] = (i & 0x7FFF).astype(np.int16)
        raw[:, 4] = (i >> 15).astype(np.int16)
        return cls(rate_hz=rate_hz, raw=raw)


def sample_index(gyro_x_raw: int, gyro_y_raw: int) -> int:
    """Inverse of the numbering in :meth:`WitMotionRecording.numbered`."""
    return (int(gyro_y_raw) << 15) | (int(gyro_x_raw) & 0x7FFF)


class WitMotionEmulator(EmulatedPeripheral):
    """A WT901BLE on a :class:`VirtualRadio`, replaying a :class:`WitMotionRecording`.

    Parameters
    ----------
    radio
        The virtual radio to join.
    recording
        What to replay. The sensor clock starts at power-on; a sample taken at sensor time
        ``t`` at the configured output rate shows recording index ``floor(t × recording.rate_hz)``,
        wrapping
        around when ``loop`` is true (else the last sample repeats).
    name
        Advertised name; real units say ``WT901BLE`` plus two digits.
    address
        Random static address.
    speed
        Replay speed (1.0 real time).
    frames_per_notification
        Frames packed into one notification (real units: 4 at 10 Hz, 2 at 50 Hz); capped by the
        link's MTU.
    battery_centivolts
        Value of register 0x64 (396 ≈ 3.96 V ≈ full).
    """

    default_rate_hz = 10.0

    def __init__(
        self,
        radio: VirtualRadio,
        recording: WitMotionRecording,
        *,
        name: str = "WT901BLE68",
        address: str = "F1:57:00:00:00:01",
        speed: float = 1.0,
        frames_per_notification: int = 4,
        battery_centivolts: int = 396,
        loop: bool = True,
    ) -> None:
        super().__init__(radio, name=name, address=address, speed=speed)
        self.recording = recording
        self.loop = loop
        self.battery_centivolts = battery_centivolts
        self.max_frames_per_notification = frames_per_notification
        self.commands: list[bytes] = []
        self.unlocked = False
        self._notify = Characteristic(
            NOTIFY_UUID,
            Characteristic.Properties.NOTIFY,
            Characteristic.Permissions.READABLE,
            b"",
        )
        self._write = Characteristic(
            WRITE_UUID,
            Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            Characteristic.Permissions.WRITEABLE,
            CharacteristicValue(write=self._on_write),
        )

    # -- protocol -------------------------------------------------------------------------------

    def services(self) -> Sequence[Service]:
        return [Service(SERVICE_UUID, [self._notify, self._write])]

    def advertising_data(self) -> bytes:
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.Type.FLAGS, bytes([0x06])),
                    (AdvertisingData.Type.COMPLETE_LOCAL_NAME, self.name.encode()),
                    (
                        AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                        UUID(SERVICE_UUID).to_bytes(),
                    ),
                ]
            )
        )

    @property
    def data_characteristic(self) -> Characteristic:
        return self._notify

    def frames_per_notification(self) -> int:
        mtus = [c.att_mtu for c in self.connections]
        fit = (min(mtus) - 3) // FRAME_BYTES if mtus else self.max_frames_per_notification
        return max(1, min(self.max_frames_per_notification, fit))

    def encode(self, sensor_times_s: Sequence[float]) -> bytes:
        return b"".join(
            encode_data_frame(self.recording.raw[self.recording_index(t)]) for t in sensor_times_s
        )

    def recording_index(self, sensor_time_s: float) -> int:
        """The recording sample shown at ``sensor_time_s``: the latest one taken by then."""
        index = math.floor(sensor_time_s * self.recording.rate_hz + 1e-6)
        return index % self.recording.n if self.loop else min(index, self.recording.n - 1)

    def _on_write(self, connection: Connection, value: bytes) -> None:
        command = bytes(value)
        self.commands.append(command)
        if command == UNLOCK:
            self.unlocked = True
            return
        if len(command) != 5 or command[:2] != b"\xff\xaa":
            logger.debug("%s ignores command %s", self.name, command.hex())
            return
        register, low, high = command[2], command[3], command[4]
        if register == REG_RATE:
            if low in RATE_CODES_HZ:
                self.rate_hz = RATE_CODES_HZ[low]
            else:
                logger.debug("%s ignores unknown rate code 0x%02x", self.name, low)
        elif register == REG_READ:
            values = [self.battery_centivolts] if low == REG_BATTERY else []
            self.send_garbage(encode_register_frame(low | (high << 8), values))
        # 0x00 (save / factory reset), 0x01 (calibrate) and others: accepted, no effect here.

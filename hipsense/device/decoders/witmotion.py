"""WitMotion WT901BLECL / BWT901BLECL (BLE 5.0 edition): the ``0x55 0x61`` protocol.

Protocol facts from sensors.md §1, which cites the vendor SDK
(``WITMOTION/WitBluetooth_BWT901BLE5_0:Python/BWT901BLE5.0_python_sdk/device_model.py``),
``ctroncozo/witmotion_ble:WT901BLECL/protocol.py`` and ``registers.py``, and the WT901BLECL 5.0
datasheet (p.16).

A notification holds one or more 20-byte frames (80 bytes = 4 frames at the default rate,
40 bytes = 2 frames at 50 Hz; a 23-byte MTU gives one frame). There is no checksum, timestamp
or counter: samples are timed from receive times by
:class:`~hipsense.device.clock.ReceiveTimeClock`.

Frame layout (all int16 LE after the two header bytes)::

    0      0x55
    1      flag: 0x61 samples, 0x71 register read reply
    2..7   acc x, y, z      raw / 32768 * 16 g
    8..13  gyro x, y, z     raw / 32768 * 2000 deg/s
    14..19 roll, pitch, yaw raw / 32768 * 180 deg

A ``0x71`` frame is ``55 71 RegL RegH`` then 8 consecutive registers as int16 LE.

Unlike the vendor's serial-style byte accumulator, this decoder does not resynchronise inside
a notification: a BLE notification is one atomic ATT value and the firmware packs whole frames
into it, so a length that is not a multiple of 20 or a frame not starting with 0x55 means the
value is corrupt, and the whole notification is rejected rather than partly used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from hipsense.device.clock import ReceiveTimeClock
from hipsense.device.decoders._base import Gatt, GattWrite, SensorDecoder, as_bytes
from hipsense.device.samples import Gap, GapReason, ImuSamples
from hipsense.errors import DecodeError

__all__ = [
    "NOTIFY_UUID",
    "RATE_CODES",
    "SERVICE_UUID",
    "WRITE_UUID",
    "RegisterReply",
    "WitMotionDecoder",
    "WitMotionFrames",
    "build_read_register",
    "build_set_rate",
    "build_write_register",
    "parse_notification",
    "witmotion_battery_percent",
]

# The WitMotion base ends in ...9a34fb, NOT the Bluetooth SIG ...9b34fb: never build these from
# 16-bit short forms.
SERVICE_UUID = "0000ffe5-0000-1000-8000-00805f9a34fb"
NOTIFY_UUID = "0000ffe4-0000-1000-8000-00805f9a34fb"
WRITE_UUID = "0000ffe9-0000-1000-8000-00805f9a34fb"

FRAME_LENGTH = 20
FRAME_HEADER = 0x55
FLAG_SAMPLES = 0x61
FLAG_REGISTER_REPLY = 0x71

STANDARD_GRAVITY_MS2 = 9.80665
ACC_FULL_SCALE_G = 16.0
GYR_FULL_SCALE_DPS = 2000.0
ANGLE_FULL_SCALE_DEG = 180.0
_INT16_SPAN = 32768.0

# Commands written to WRITE_UUID: 5 bytes, no checksum.
CMD_UNLOCK = bytes.fromhex("ffaa6988b5")  # valid ~10 s; needed before any register write
CMD_SAVE = bytes.fromhex("ffaa000000")
REGISTER_RETURN_RATE = 0x03
REGISTER_BATTERY = 0x64

# Register 0x03 codes; 1-200 Hz confirmed against captures (sensors.md §1.4). 125 Hz is listed by
# ctroncozo/witmotion_ble only. 200 Hz: "verify on your unit".
RATE_CODES: dict[int, int] = {1: 0x03, 2: 0x04, 5: 0x05, 10: 0x06, 20: 0x07,
                              50: 0x08, 100: 0x09, 125: 0x0A, 200: 0x0B}  # fmt: skip
RATE_CODE_NO_OUTPUT = 0x0D


def build_write_register(register: int, value: int) -> bytes:
    """``FF AA reg valL valH``: write a 16-bit register (send :data:`CMD_UNLOCK` first)."""
    if not 0 <= register <= 0xFF or not -0x8000 <= value <= 0xFFFF:
        raise ValueError(f"register {register:#x} / value {value} out of range")
    return bytes([0xFF, 0xAA, register]) + (value & 0xFFFF).to_bytes(2, "little")


def build_read_register(register: int) -> bytes:
    """``FF AA 27 reg 00``: ask for 8 registers from ``register``; a ``55 71`` frame answers."""
    if not 0 <= register <= 0xFF:
        raise ValueError(f"register {register:#x} out of range")
    return bytes([0xFF, 0xAA, 0x27, register, 0x00])


def witmotion_battery_percent(centivolts: int) -> int:
    """WitMotion battery register 0x64 (≈ volts × 100) → percent, per the vendor's table.

    Transcribed by third parties; verify on hardware (sensors.md §1.4).
    """
    steps = ((396, 100), (393, 90), (387, 75), (382, 60), (379, 50), (377, 40),
             (373, 30), (370, 20), (368, 15), (350, 10), (340, 5))  # fmt: skip
    for threshold, percent in steps:
        if centivolts >= threshold:
            return percent
    return 0


def build_set_rate(rate_hz: int) -> bytes:
    """``FF AA 03 code 00``: set the return rate (unlock first). Raises ValueError if unknown."""
    try:
        code = RATE_CODES[rate_hz]
    except KeyError:
        raise ValueError(
            f"WitMotion rate {rate_hz} Hz unsupported; choose {sorted(RATE_CODES)}"
        ) from None
    return build_write_register(REGISTER_RETURN_RATE, code)


@dataclass(frozen=True, slots=True)
class RegisterReply:
    """A ``55 71`` register read reply: 8 consecutive registers from ``first_register``.

    ``values`` are the raw int16 register contents. For the battery register (0x64) the first
    value is about volts × 100 (396 ≈ 3.96 V).
    """

    first_register: int
    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class WitMotionFrames:
    """Raw contents of one notification, before scaling.

    ``acc``, ``gyr`` and ``angle`` are int16 arrays of shape (k, 3), one row per ``0x61`` frame in
    arrival order. ``skipped_flags`` lists the flags of well-formed frames of kinds this decoder
    does not use (the module sends e.g. magnetometer or quaternion frames when asked).
    """

    acc: npt.NDArray[np.int16]
    gyr: npt.NDArray[np.int16]
    angle: npt.NDArray[np.int16]
    register_replies: tuple[RegisterReply, ...]
    skipped_flags: tuple[int, ...]


def parse_notification(payload: bytes | bytearray) -> WitMotionFrames:
    """Split one notification into frames. Raises DecodeError unless every frame is sound."""
    data = as_bytes(payload)
    if not data or len(data) % FRAME_LENGTH:
        raise DecodeError(
            f"WitMotion notification of {len(data)} bytes is not a whole number of "
            f"{FRAME_LENGTH}-byte frames",
            payload=data,
        )
    frames = np.frombuffer(data, dtype=np.uint8).reshape(-1, FRAME_LENGTH)
    bad_headers = np.flatnonzero(frames[:, 0] != FRAME_HEADER)
    if bad_headers.size:
        raise DecodeError(
            f"WitMotion frame {int(bad_headers[0])} starts with "
            f"{int(frames[bad_headers[0], 0]):#04x}, not 0x55",
            payload=data,
        )
    flags = frames[:, 1]
    words = np.frombuffer(data, dtype="<i2").reshape(-1, FRAME_LENGTH // 2)
    sample_rows = words[flags == FLAG_SAMPLES]
    replies = tuple(
        RegisterReply(
            first_register=int(frame[2]) | int(frame[3]) << 8,
            values=tuple(int(v) for v in word_row[2:]),
        )
        for frame, word_row in zip(frames[flags == FLAG_REGISTER_REPLY],
                                   words[flags == FLAG_REGISTER_REPLY], strict=True)
    )  # fmt: skip
    skipped = tuple(int(f) for f in flags if f not in (FLAG_SAMPLES, FLAG_REGISTER_REPLY))
    return WitMotionFrames(
        acc=sample_rows[:, 1:4].astype(np.int16),
        gyr=sample_rows[:, 4:7].astype(np.int16),
        angle=sample_rows[:, 7:10].astype(np.int16),
        register_replies=replies,
        skipped_flags=skipped,
    )


def acc_ms2_from_raw(raw: npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:
    """int16 counts → m/s² (±16 g full scale)."""
    return raw.astype(np.float64) * (ACC_FULL_SCALE_G / _INT16_SPAN * STANDARD_GRAVITY_MS2)


def gyr_rad_s_from_raw(raw: npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:
    """int16 counts → rad/s (±2000 deg/s full scale)."""
    return raw.astype(np.float64) * (GYR_FULL_SCALE_DPS / _INT16_SPAN * math.pi / 180.0)


def angle_rad_from_raw(raw: npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:
    """int16 counts → rad (±180 deg full scale)."""
    return raw.astype(np.float64) * (ANGLE_FULL_SCALE_DEG / _INT16_SPAN * math.pi / 180.0)


class WitMotionDecoder(SensorDecoder):
    """Decoder for WitMotion WT901BLECL / BWT901BLECL notifications.

    Parameters
    ----------
    rate_hz
        The return rate to configure and to time samples with; one of :data:`RATE_CODES`.
    gap_threshold_s
        See :class:`~hipsense.device.clock.ReceiveTimeClock`.
    configure_rate
        Whether :meth:`start_writes` sets the rate (unlock, then write register 0x03; not saved
        to flash). The module streams as soon as it is subscribed, at its stored rate.
    """

    sensor_type: ClassVar[str] = "witmotion"
    service_uuid: ClassVar[str] = SERVICE_UUID
    data_uuid: ClassVar[str] = NOTIFY_UUID
    notify_uuids: ClassVar[tuple[str, ...]] = (NOTIFY_UUID,)
    name_prefixes: ClassVar[tuple[str, ...]] = ("WT",)
    display_name: ClassVar[str] = "WitMotion WT901BLE"
    rates_hz: ClassVar[tuple[int, ...]] = tuple(RATE_CODES)
    default_rate_hz: ClassVar[int] = 100
    full_scale: ClassVar[tuple[float, float] | None] = (
        ACC_FULL_SCALE_G * STANDARD_GRAVITY_MS2,
        math.radians(GYR_FULL_SCALE_DPS),
    )

    def __init__(
        self, rate_hz: int = 100, *, gap_threshold_s: float = 0.5, configure_rate: bool = True
    ) -> None:
        if rate_hz not in RATE_CODES:
            raise ValueError(
                f"WitMotion rate {rate_hz} Hz unsupported; choose {sorted(RATE_CODES)}"
            )
        self.nominal_rate_hz = float(rate_hz)
        self._rate_hz = rate_hz
        self._gap_threshold_s = gap_threshold_s
        self._configure_rate = configure_rate
        self._clock = ReceiveTimeClock(self.nominal_rate_hz, gap_threshold_s=gap_threshold_s)
        self._last_t_s: float | None = None
        self.last_register_replies: tuple[RegisterReply, ...] = ()
        """Register read replies from the most recent notification that held any."""
        self._battery_percent: int | None = None

    def options(self) -> dict[str, Any]:
        return {
            "rate_hz": self._rate_hz,
            "gap_threshold_s": self._gap_threshold_s,
            "configure_rate": self._configure_rate,
        }

    def start_writes(self) -> tuple[GattWrite, ...]:
        if not self._configure_rate:
            return ()
        # Vendor SDK order: unlock, ~100 ms, write. No save: flash wear, and we set it each time.
        return (
            GattWrite(WRITE_UUID, CMD_UNLOCK, pause_after_s=0.1),
            GattWrite(WRITE_UUID, build_set_rate(self._rate_hz), pause_after_s=0.1),
        )

    async def read_battery(self, gatt: Gatt) -> int | None:
        """Ask for register 0x64: the answer is a notification (see :meth:`take_battery_percent`)."""
        level = await super().read_battery(gatt)
        if level is None:
            await gatt.write(WRITE_UUID, build_read_register(REGISTER_BATTERY), response=False)
        return level

    def take_battery_percent(self) -> int | None:
        level, self._battery_percent = self._battery_percent, None
        return level

    def decode(
        self, payload: bytes | bytearray, received_at_s: float, *, char_uuid: str | None = None
    ) -> ImuSamples:
        self._check_char(char_uuid, (NOTIFY_UUID,))
        frames = parse_notification(payload)
        if frames.register_replies:
            self.last_register_replies = frames.register_replies
            for reply in frames.register_replies:
                if reply.first_register == REGISTER_BATTERY and reply.values:
                    self._battery_percent = witmotion_battery_percent(int(reply.values[0]))
                    break
        n = frames.acc.shape[0]
        if n == 0:
            return ImuSamples.empty()
        placement = self._clock.place(n, received_at_s)
        gaps: tuple[Gap, ...] = ()
        if placement.gap_before and self._last_t_s is not None:
            gaps = (
                Gap(self._last_t_s, float(placement.t_s[0]), None, GapReason.RECEIVE_TIME_JUMP),
            )
        self._last_t_s = float(placement.t_s[-1])
        return ImuSamples(
            t_s=placement.t_s,
            acc_ms2=acc_ms2_from_raw(frames.acc),
            gyr_rad_s=gyr_rad_s_from_raw(frames.gyr),
            euler_rad=angle_rad_from_raw(frames.angle),
            gaps=gaps,
        )

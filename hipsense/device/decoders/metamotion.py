"""MbientLab MetaMotion (MetaWear): raw accelerometer and gyroscope streaming.

Protocol facts from sensors.md §4, which cites ``mbientlab/MetaWear-SDK-Cpp``
(``src/metawear/impl/cpp/metawearboard.cpp``, ``core/module.h``,
``sensor/cpp/accelerometer_bosch*``, ``gyro_bosch*``, ``core/cpp/settings_register.h``) and its
unit tests (``test/test_accelerometer_bmi160.py``, ``test_gyro_bmi160.py``, ``test_settings.py``).

Every command and notification is ``[module][register][payload…]`` (≤ 20 bytes); reads set bit 7
of the register. All responses arrive on one notify characteristic, so messages other than
sample data (module info, battery, ...) are normal there and yield no samples.

Streamed samples carry no timestamp or counter: they are timed from receive times, per stream,
by :class:`~hipsense.device.clock.ReceiveTimeClock`. A "packed" notification holds 3 consecutive
samples. MbientLab staff put the reliable streaming budget at ~100 Hz in total per link.

Only the BMI160 boards (MetaMotion R/RL/C: implementation 1) are configured by
:meth:`MetaMotionDecoder.start_writes`; BMI270 (MetaMotion S: implementation 4) data is decoded,
but its configuration bytes differ and are not described in the sources.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hipsense.device.clock import ReceiveTimeClock
from hipsense.device.decoders._base import Gatt, GattWrite, SensorDecoder, as_bytes
from hipsense.device.samples import Gap, GapReason, ImuSamples
from hipsense.errors import DecodeError

__all__ = [
    "COMMAND_UUID",
    "NOTIFY_UUID",
    "SERVICE_UUID",
    "BatteryState",
    "Chip",
    "MetaMotionDecoder",
    "ModuleInfo",
    "build_connection_parameters",
    "parse_battery",
    "parse_module_info",
]

SERVICE_UUID = "326a9000-85cb-9195-d9dd-464cfbbae75a"
COMMAND_UUID = "326a9001-85cb-9195-d9dd-464cfbbae75a"  # write without response
NOTIFY_UUID = "326a9006-85cb-9195-d9dd-464cfbbae75a"  # every response and data packet

MODULE_ACC = 0x03
MODULE_SETTINGS = 0x11
MODULE_GYRO = 0x13
READ_BIT = 0x80
REGISTER_MODULE_INFO = 0x00 | READ_BIT
REGISTER_BATTERY = 0x0C
BATTERY_READ_REQUEST = 0xCC  # `11 CC` asks, `11 8C <charge %> <mV>` answers (sensors.md §4.5)
REGISTER_CONNECTION_PARAMETERS = 0x09

STANDARD_GRAVITY_MS2 = 9.80665

# LSB per g by accelerometer range (±g), BMI160 and BMI270 alike.
ACC_LSB_PER_G = {2: 16384.0, 4: 8192.0, 8: 4096.0, 16: 2048.0}
ACC_RANGE_CODE = {2: 0x03, 4: 0x05, 8: 0x08, 16: 0x0C}
# BMI160 acc_conf = odr (bits 0-3) | bwp (bits 4-6); the SDK's test vectors give these bytes.
ACC_CONF_BMI160 = {
    12.5: 0x25,
    25: 0x26,
    50: 0x27,
    100: 0x28,
    200: 0x29,
    400: 0x2A,
    800: 0x2B,
    1600: 0x2C,
}
# Gyro: range (±deg/s) → (code, LSB per deg/s); ODR code with bwp = 2 in the high nibble.
GYR_RANGE = {2000: (0, 16.4), 1000: (1, 32.8), 500: (2, 65.6), 250: (3, 131.2), 125: (4, 262.4)}
GYR_ODR_CODE = {25: 6, 50: 7, 100: 8, 200: 9, 400: 10, 800: 11, 1600: 12, 3200: 13}
_GYR_BWP_NORMAL = 0x20


class Chip(enum.StrEnum):
    BMI160 = "bmi160"  # module-info implementation 1
    BMI270 = "bmi270"  # module-info implementation 4


_IMPLEMENTATION_CHIP = {1: Chip.BMI160, 4: Chip.BMI270}


@dataclass(frozen=True, slots=True)
class _Registers:
    acc_data: int
    acc_packed: int
    gyr_data: int
    gyr_packed: int


REGISTERS = {
    Chip.BMI160: _Registers(acc_data=0x04, acc_packed=0x1C, gyr_data=0x05, gyr_packed=0x07),
    Chip.BMI270: _Registers(acc_data=0x04, acc_packed=0x05, gyr_data=0x04, gyr_packed=0x05),
}


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    """Answer to ``[module, 0x80]``: which implementation (chip) and revision a module is."""

    module: int
    implementation: int
    revision: int

    @property
    def chip(self) -> Chip | None:
        return _IMPLEMENTATION_CHIP.get(self.implementation)


@dataclass(frozen=True, slots=True)
class BatteryState:
    charge_percent: int
    voltage_mv: int


def parse_module_info(payload: bytes | bytearray) -> ModuleInfo:
    data = as_bytes(payload)
    if len(data) < 4 or data[1] != REGISTER_MODULE_INFO:
        raise DecodeError("not a MetaWear module-info response", payload=data)
    return ModuleInfo(data[0], data[2], data[3])


def parse_battery(payload: bytes | bytearray) -> BatteryState:
    """``11 8C <charge %> <mV u16 LE>`` → battery state."""
    data = as_bytes(payload)
    if len(data) != 5 or data[:2] != bytes([MODULE_SETTINGS, REGISTER_BATTERY | READ_BIT]):
        raise DecodeError("not a MetaWear battery response", payload=data)
    return BatteryState(data[2], int.from_bytes(data[3:5], "little"))


def build_connection_parameters(
    min_interval_ms: float, max_interval_ms: float, latency: int, timeout_ms: float
) -> bytes:
    """``11 09 <min> <max> <latency> <timeout>``: ask the board to request new connection
    parameters (intervals in 1.25 ms units, supervision timeout in 10 ms units)."""
    fields = (
        round(min_interval_ms / 1.25),
        round(max_interval_ms / 1.25),
        latency,
        round(timeout_ms / 10),
    )
    return bytes([MODULE_SETTINGS, REGISTER_CONNECTION_PARAMETERS]) + b"".join(
        int(v).to_bytes(2, "little") for v in fields
    )


class _Stream:
    def __init__(self, rate_hz: float, gap_threshold_s: float) -> None:
        self.clock = ReceiveTimeClock(rate_hz, gap_threshold_s=gap_threshold_s)
        self.last_t_s: float | None = None


class MetaMotionDecoder(SensorDecoder):
    """Decoder for MetaMotion raw acc + gyro streams (separate notifications, no timestamps).

    Parameters
    ----------
    rate_hz
        Output data rate of both sensors (Hz). Two streams at 100 Hz exceed the ~100 Hz total
        the vendor calls reliable, hence the default of 50 Hz and packed notifications.
    acc_range_g, gyr_range_dps
        Full-scale ranges; they set both the configuration bytes and the scaling.
    packed
        Subscribe to the packed registers (3 samples per notification).
    chip
        ``"bmi160"`` or ``"bmi270"`` (read ``[0x03, 0x80]`` first: :func:`parse_module_info`).
    gap_threshold_s
        See :class:`~hipsense.device.clock.ReceiveTimeClock`.
    gyroscope
        Configure and stream the gyroscope too (False: the accelerometer alone, which the
        service counts on; it halves what the link carries).
    """

    sensor_type: ClassVar[str] = "metamotion"
    service_uuid: ClassVar[str] = SERVICE_UUID
    data_uuid: ClassVar[str] = NOTIFY_UUID
    notify_uuids: ClassVar[tuple[str, ...]] = (NOTIFY_UUID,)
    name_prefixes: ClassVar[tuple[str, ...]] = ("MetaWear",)
    display_name: ClassVar[str] = "MbientLab MetaMotion"
    # Configurable rates: both streams together stay within what the vendor calls reliable
    # over BLE (see ``rate_hz`` below); the chips themselves go higher.
    rates_hz: ClassVar[tuple[int, ...]] = (25, 50, 100)
    default_rate_hz: ClassVar[int] = 50
    accelerometer_only: ClassVar[dict[str, Any] | None] = {"gyroscope": False}
    streams_apart: ClassVar[bool] = True

    def __init__(
        self,
        rate_hz: int = 50,
        *,
        acc_range_g: int = 8,
        gyr_range_dps: int = 2000,
        packed: bool = True,
        chip: str = "bmi160",
        gap_threshold_s: float = 0.5,
        gyroscope: bool = True,
    ) -> None:
        if acc_range_g not in ACC_LSB_PER_G or gyr_range_dps not in GYR_RANGE:
            raise ValueError(
                f"ranges must be in {sorted(ACC_LSB_PER_G)} g and {sorted(GYR_RANGE)} deg/s"
            )
        if rate_hz not in GYR_ODR_CODE or rate_hz not in ACC_CONF_BMI160:
            raise ValueError(
                f"rate_hz must be one of {sorted(set(GYR_ODR_CODE) & set(ACC_CONF_BMI160))}"
            )
        self.nominal_rate_hz = float(rate_hz)
        self._options = {
            "rate_hz": rate_hz, "acc_range_g": acc_range_g, "gyr_range_dps": gyr_range_dps,
            "packed": packed, "chip": str(Chip(chip)), "gap_threshold_s": gap_threshold_s,
            "gyroscope": gyroscope,
        }  # fmt: skip
        self._chip = Chip(chip)
        self._registers = REGISTERS[self._chip]
        self._acc_scale = STANDARD_GRAVITY_MS2 / ACC_LSB_PER_G[acc_range_g]
        self._gyr_scale = math.pi / 180.0 / GYR_RANGE[gyr_range_dps][1]
        self._streams = {
            MODULE_ACC: _Stream(self.nominal_rate_hz, gap_threshold_s),
            MODULE_GYRO: _Stream(self.nominal_rate_hz, gap_threshold_s),
        }
        self.last_response: bytes | None = None
        """The most recent non-sample message (module info, battery, ...), for the link."""
        self._battery_percent: int | None = None

    def options(self) -> dict[str, Any]:
        return dict(self._options)

    def start_writes(self) -> tuple[GattWrite, ...]:
        if self._chip is not Chip.BMI160:
            raise ValueError("MetaMotion start sequence is only known for BMI160 boards")
        rate = int(self.nominal_rate_hz)
        reg = self._registers
        acc_data = reg.acc_packed if self._options["packed"] else reg.acc_data
        gyr_data = reg.gyr_packed if self._options["packed"] else reg.gyr_data
        gyr_range_code = GYR_RANGE[self._options["gyr_range_dps"]][0]
        commands = [
            [MODULE_ACC, 0x03, ACC_CONF_BMI160[rate], ACC_RANGE_CODE[self._options["acc_range_g"]]],
            [MODULE_GYRO, 0x03, _GYR_BWP_NORMAL | GYR_ODR_CODE[rate], gyr_range_code],
            [MODULE_ACC, acc_data, 0x01],  # subscribe
            [MODULE_GYRO, gyr_data, 0x01],
            [MODULE_ACC, 0x02, 0x01, 0x00],  # enable sampling
            [MODULE_GYRO, 0x02, 0x01, 0x00],
            [MODULE_ACC, 0x01, 0x01],  # power on
            [MODULE_GYRO, 0x01, 0x01],
        ]
        return self._writes(commands)

    def stop_writes(self) -> tuple[GattWrite, ...]:
        reg = self._registers
        acc_data = reg.acc_packed if self._options["packed"] else reg.acc_data
        gyr_data = reg.gyr_packed if self._options["packed"] else reg.gyr_data
        commands = [
            [MODULE_GYRO, 0x01, 0x00], [MODULE_ACC, 0x01, 0x00],  # stop
            [MODULE_GYRO, 0x02, 0x00, 0x01], [MODULE_ACC, 0x02, 0x00, 0x01],  # disable
            [MODULE_GYRO, gyr_data, 0x00], [MODULE_ACC, acc_data, 0x00],  # unsubscribe
        ]  # fmt: skip
        return self._writes(commands)

    def _writes(self, commands: list[list[int]]) -> tuple[GattWrite, ...]:
        """The commands as writes, without the gyroscope's when it is not streamed."""
        if not self._options["gyroscope"]:
            commands = [c for c in commands if c[0] != MODULE_GYRO]
        return tuple(GattWrite(COMMAND_UUID, bytes(c), response=False) for c in commands)

    async def read_battery(self, gatt: Gatt) -> int | None:
        """Ask the settings module (``11 CC``); the answer comes as a notification."""
        await gatt.write(COMMAND_UUID, bytes([MODULE_SETTINGS, BATTERY_READ_REQUEST]), response=False)
        return None

    def take_battery_percent(self) -> int | None:
        level, self._battery_percent = self._battery_percent, None
        return level

    def _samples_per_message(self, module: int, register: int) -> int:
        reg = self._registers
        plain = {(MODULE_ACC, reg.acc_data), (MODULE_GYRO, reg.gyr_data)}
        packed = {(MODULE_ACC, reg.acc_packed), (MODULE_GYRO, reg.gyr_packed)}
        return 1 if (module, register) in plain else 3 if (module, register) in packed else 0

    def decode(
        self, payload: bytes | bytearray, received_at_s: float, *, char_uuid: str | None = None
    ) -> ImuSamples:
        self._check_char(char_uuid, (NOTIFY_UUID,))
        data = as_bytes(payload)
        if len(data) < 2:
            raise DecodeError("MetaWear message shorter than module + register", payload=data)
        module, register = data[0], data[1]
        k = self._samples_per_message(module, register)
        if k == 0:
            self.last_response = data
            if data[:2] == bytes([MODULE_SETTINGS, REGISTER_BATTERY | READ_BIT]):
                try:
                    self._battery_percent = parse_battery(data).charge_percent
                except DecodeError:
                    pass  # a malformed answer is no battery reading; the message is still consumed
            return ImuSamples.empty()
        if len(data) != 2 + 6 * k:
            raise DecodeError(
                f"MetaWear data message {module:#04x} {register:#04x} must be {2 + 6 * k} bytes, "
                f"got {len(data)}",
                payload=data,
            )
        counts = np.frombuffer(data, dtype="<i2", offset=2).reshape(k, 3).astype(np.float64)
        stream = self._streams[module]
        placement = stream.clock.place(k, received_at_s)
        gaps: tuple[Gap, ...] = ()
        if placement.gap_before and stream.last_t_s is not None:
            gaps = (
                Gap(stream.last_t_s, float(placement.t_s[0]), None, GapReason.RECEIVE_TIME_JUMP),
            )
        stream.last_t_s = float(placement.t_s[-1])
        if module == MODULE_ACC:
            return ImuSamples(t_s=placement.t_s, acc_ms2=counts * self._acc_scale, gaps=gaps)
        return ImuSamples(t_s=placement.t_s, gyr_rad_s=counts * self._gyr_scale, gaps=gaps)

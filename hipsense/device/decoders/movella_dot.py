"""Movella (Xsens) DOT in "rate quantities" payload mode.

Protocol facts from sensors.md §2, which cites the *Movella DOT BLE Service Specification*
(XD0506P rev C, July 2023) and the official example server ``xsens/xsens_dot_server:bleHandler.js``.

Rate-quantities payload (mode 21, on the 40-byte medium-payload characteristic 0x2003)::

    0..3    uint32 LE   timestamp, µs on the sensor clock; wraps every 2**32 µs ≈ 71.6 min
    4..15   3 × float32 LE   acceleration, m/s², calibrated, gravity included
    16..27  3 × float32 LE   angular rate, deg/s
    28..    zero padding (mode 20 puts a 6-byte magnetometer field here; it is ignored)

Start: enable notifications on 0x2003 first, then write ``01 01 15`` to the measurement control
0x2001; stop with ``01 00 15``, then disable notifications. The output rate (60 Hz by default)
is a read-modify-write of the 32-byte device-control characteristic 0x1002
(:func:`build_output_rate_control`) and cannot change once measuring.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hipsense.device.clock import DeviceClockAligner, increasing_after
from hipsense.device.decoders._base import Gatt, GattWrite, SensorDecoder, as_bytes
from hipsense.device.gaps import Continuity, SensorTimeGapDetector, unwrap_counter
from hipsense.device.samples import Gap, GapReason, ImuSamples
from hipsense.errors import DecodeError

__all__ = [
    "ALLOWED_OUTPUT_RATES_HZ",
    "BATTERY_UUID",
    "DEVICE_CONTROL_UUID",
    "MEASUREMENT_CONTROL_UUID",
    "MEASUREMENT_SERVICE_UUID",
    "MEDIUM_PAYLOAD_UUID",
    "MovellaDotDecoder",
    "PayloadMode",
    "RateQuantities",
    "build_measurement_control",
    "build_output_rate_control",
    "dot_uuid",
    "parse_battery",
    "parse_rate_quantities",
]


def dot_uuid(short: int) -> str:
    """Full UUID in the DOT base ``1517xxxx-4947-11e9-8646-d663bd873d93``."""
    return f"1517{short:04x}-4947-11e9-8646-d663bd873d93"


CONFIGURATION_SERVICE_UUID = dot_uuid(0x1000)
DEVICE_INFO_UUID = dot_uuid(0x1001)  # 34 B read: MAC, firmware, serial, product code
DEVICE_CONTROL_UUID = dot_uuid(0x1002)  # 32 B read/write: output rate, filter profile, ...
DEVICE_REPORT_UUID = dot_uuid(0x1004)  # notify: power-off, button clicks
MEASUREMENT_SERVICE_UUID = dot_uuid(0x2000)
MEASUREMENT_CONTROL_UUID = dot_uuid(0x2001)  # 3 B: [type = 1, action, payload mode]
LONG_PAYLOAD_UUID = dot_uuid(0x2002)  # modes > 40 B
MEDIUM_PAYLOAD_UUID = dot_uuid(0x2003)  # modes of 21-40 B, including rate quantities
SHORT_PAYLOAD_UUID = dot_uuid(0x2004)  # modes <= 20 B
BATTERY_SERVICE_UUID = dot_uuid(0x3000)
BATTERY_UUID = dot_uuid(0x3001)  # proprietary, not SIG 0x2A19: [level %, charging 0/1]

MOVELLA_COMPANY_ID = 0x0886  # 2182
ALLOWED_OUTPUT_RATES_HZ = (1, 4, 10, 12, 15, 20, 30, 60)  # 120 Hz is recording-only
DEVICE_CONTROL_LENGTH = 32
_VISIT_OUTPUT_RATE = 0x10  # device-control byte 0 bit 4: "write the output rate field"
_OUTPUT_RATE_OFFSET = 24

RATE_QUANTITIES_LENGTH = 28
MEDIUM_PAYLOAD_LENGTH = 40
_RATE_QUANTITIES = struct.Struct("<I6f")


class PayloadMode(enum.IntEnum):
    """Measurement payload modes (decimal, as the spec numbers them) this module knows of."""

    EXTENDED_QUATERNION = 2
    COMPLETE_EULER = 16
    DELTA_QUANTITIES = 19
    RATE_QUANTITIES_WITH_MAG = 20
    RATE_QUANTITIES = 21
    CUSTOM_MODE_5 = 26


def build_measurement_control(*, start: bool, mode: int = PayloadMode.RATE_QUANTITIES) -> bytes:
    """``01 <action> <mode>``: ``01 01 15`` starts rate quantities, ``01 00 15`` stops."""
    return bytes([0x01, 0x01 if start else 0x00, mode])


def build_output_rate_control(device_control: bytes | bytearray, rate_hz: int) -> bytes:
    """The 32 bytes to write back to device control (0x1002) to set the output rate.

    Parameters
    ----------
    device_control
        The 32 bytes just read from 0x1002.
    rate_hz
        One of :data:`ALLOWED_OUTPUT_RATES_HZ`.

    Byte 0 (the "visit index") becomes 0x10 so only the output rate is applied; the rate goes
    as uint16 LE at offset 24.
    """
    data = bytearray(as_bytes(device_control))
    if len(data) != DEVICE_CONTROL_LENGTH:
        raise DecodeError(
            f"DOT device control is {DEVICE_CONTROL_LENGTH} bytes, got {len(data)}", payload=data
        )
    if rate_hz not in ALLOWED_OUTPUT_RATES_HZ:
        raise ValueError(
            f"DOT output rate {rate_hz} Hz unsupported; choose {ALLOWED_OUTPUT_RATES_HZ}"
        )
    data[0] = _VISIT_OUTPUT_RATE
    data[_OUTPUT_RATE_OFFSET : _OUTPUT_RATE_OFFSET + 2] = rate_hz.to_bytes(2, "little")
    return bytes(data)


def parse_battery(payload: bytes | bytearray) -> tuple[int, bool]:
    """Battery characteristic 0x3001 → (level in %, charging)."""
    data = as_bytes(payload)
    if len(data) != 2 or data[0] > 100 or data[1] > 1:
        raise DecodeError("not a DOT battery value", payload=data)
    return data[0], bool(data[1])


@dataclass(frozen=True, slots=True)
class RateQuantities:
    """One rate-quantities sample: raw µs timestamp, acc x/y/z (m/s²), gyro x/y/z (deg/s)."""

    timestamp_us: int
    acc_ms2: tuple[float, ...]
    gyr_dps: tuple[float, ...]


def parse_rate_quantities(payload: bytes | bytearray) -> RateQuantities:
    """Decode a mode-21 (or mode-20) notification. Raises DecodeError on bad length or NaN/inf."""
    data = as_bytes(payload)
    if not RATE_QUANTITIES_LENGTH <= len(data) <= MEDIUM_PAYLOAD_LENGTH:
        raise DecodeError(
            f"DOT rate-quantities payload must be {RATE_QUANTITIES_LENGTH}-"
            f"{MEDIUM_PAYLOAD_LENGTH} bytes, got {len(data)}",
            payload=data,
        )
    timestamp_us, *floats = _RATE_QUANTITIES.unpack_from(data)
    if not np.all(np.isfinite(floats)):
        raise DecodeError("DOT payload holds non-finite values", payload=data)
    return RateQuantities(timestamp_us, tuple(floats[:3]), tuple(floats[3:]))


_TIMESTAMP_MODULUS = 2**32


class MovellaDotDecoder(SensorDecoder):
    """Decoder for Movella DOT rate-quantities notifications (one sample each).

    ``sensor_time_s`` is the unwrapped µs counter in seconds (it starts wherever the sensor's
    counter was); wraps are unwrapped using host receive times, so even a silence longer than
    71.6 min keeps the count right.

    Parameters
    ----------
    rate_hz
        The output rate the sensor is set to (60 by default); used for gap detection only.
    """

    sensor_type: ClassVar[str] = "movella_dot"
    service_uuid: ClassVar[str] = MEASUREMENT_SERVICE_UUID
    data_uuid: ClassVar[str] = MEDIUM_PAYLOAD_UUID
    notify_uuids: ClassVar[tuple[str, ...]] = (MEDIUM_PAYLOAD_UUID,)
    name_prefixes: ClassVar[tuple[str, ...]] = ("Movella DOT", "Xsens DOT")
    display_name: ClassVar[str] = "Movella DOT"
    rates_hz: ClassVar[tuple[int, ...]] = ALLOWED_OUTPUT_RATES_HZ
    default_rate_hz: ClassVar[int] = 60

    def __init__(self, rate_hz: int = 60) -> None:
        if rate_hz not in ALLOWED_OUTPUT_RATES_HZ:
            raise ValueError(
                f"DOT output rate {rate_hz} Hz unsupported; choose {ALLOWED_OUTPUT_RATES_HZ}"
            )
        self.nominal_rate_hz = float(rate_hz)
        self._rate_hz = rate_hz
        self._gaps = SensorTimeGapDetector(self.nominal_rate_hz)
        self._clock = DeviceClockAligner(window_s=2.0, history_s=300.0)
        self._last_unwrapped_us: int | None = None
        self._last_t_s: float | None = None

    def options(self) -> dict[str, Any]:
        return {"rate_hz": self._rate_hz}

    def start_writes(self) -> tuple[GattWrite, ...]:
        return (GattWrite(MEASUREMENT_CONTROL_UUID, build_measurement_control(start=True)),)

    def stop_writes(self) -> tuple[GattWrite, ...]:
        return (GattWrite(MEASUREMENT_CONTROL_UUID, build_measurement_control(start=False)),)

    async def configure(self, gatt: Gatt) -> None:
        """Set the output rate: a read-modify-write of the 32-byte device control (sensors.md
        §2.2), which cannot change while measuring, hence before the start command."""
        if not gatt.has_characteristic(DEVICE_CONTROL_UUID):
            return
        current = await gatt.read(DEVICE_CONTROL_UUID)
        if len(current) == 32 and int.from_bytes(current[24:26], "little") != self._rate_hz:
            await gatt.write(DEVICE_CONTROL_UUID, build_output_rate_control(current, self._rate_hz), response=True)

    async def read_battery(self, gatt: Gatt) -> int | None:
        """The SIG battery level when offered, else the DOT's own [level %, charging]."""
        level = await super().read_battery(gatt)
        if level is not None or not gatt.has_characteristic(BATTERY_UUID):
            return level
        try:
            level, _charging = parse_battery(await gatt.read(BATTERY_UUID))
        except DecodeError:
            return None
        return level

    def decode(
        self, payload: bytes | bytearray, received_at_s: float, *, char_uuid: str | None = None
    ) -> ImuSamples:
        self._check_char(char_uuid, (MEDIUM_PAYLOAD_UUID,))
        sample = parse_rate_quantities(payload)

        # ---- from here on nothing can fail on bad input ----
        unwrapped = self._unwrap(sample.timestamp_us, received_at_s)
        device_s = unwrapped / 1e6
        verdict = self._gaps.check(device_s, 1, received_at_s)
        if verdict.continuity is Continuity.CLOCK_RESET:
            unwrapped = sample.timestamp_us  # start counting afresh from the new clock
            device_s = unwrapped / 1e6
            self._clock.reset()
        self._clock.observe(device_s, received_at_s)
        t_s = increasing_after(self._clock.to_host(np.array([device_s])), self._last_t_s)
        gaps: tuple[Gap, ...] = ()
        if self._last_t_s is not None and verdict.continuity is Continuity.CLOCK_RESET:
            gaps = (Gap(self._last_t_s, float(t_s[0]), None, GapReason.SENSOR_CLOCK_RESET),)
        elif self._last_t_s is not None and verdict.continuity is Continuity.SAMPLES_LOST:
            gaps = (
                Gap(
                    self._last_t_s, float(t_s[0]), verdict.samples_lost, GapReason.SENSOR_TIME_JUMP
                ),
            )
        self._gaps.commit(device_s, received_at_s)
        self._last_unwrapped_us = unwrapped
        self._last_t_s = float(t_s[0])
        return ImuSamples(
            t_s=t_s,
            acc_ms2=np.array([sample.acc_ms2]),
            gyr_rad_s=np.deg2rad(np.array([sample.gyr_dps])),
            sensor_time_s=np.array([device_s]),
            gaps=gaps,
        )

    def _unwrap(self, raw_us: int, received_at_s: float) -> int:
        previous = self._last_unwrapped_us
        last_received = self._gaps.last_received_s
        if previous is None or last_received is None:
            return raw_us
        expected_us = (received_at_s - last_received) * 1e6
        return unwrap_counter(previous, raw_us, _TIMESTAMP_MODULUS, expected_us)

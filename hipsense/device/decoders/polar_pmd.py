"""Polar Verity Sense (and H10 ACC) over the Polar Measurement Data (PMD) service.

Protocol facts from sensors.md §3, which cites ``polarofficial/polar-ble-sdk``
(``.../gatt/client/pmd/BlePMDClient.kt``, ``PmdSetting.kt``, ``PmdControlPointCommand.kt``,
``PmdControlPointResponse.kt``, ``PmdMeasurementType.kt``, their unit tests, and
``technical_documentation/Polar_Measurement_Data_Specification.pdf``) and
``fsmeraldi/bleakheart:src/bleakheart/core.py``. Data-frame parsing lives in ``_pmd_frames``.

Order of operations (the link's job): subscribe to the control point (indications) AND the data
characteristic, then write each start command and wait for its control-point response before the
next. Feed every control-point indication to :meth:`PolarPmdDecoder.decode` too: the start
response carries the FACTOR that compressed frames must be scaled by.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hipsense.device.clock import DeviceClockAligner, increasing_after
from hipsense.device.decoders._base import Gatt, GattWrite, SensorDecoder, as_bytes
from hipsense.device.decoders._pmd_frames import PmdFrame, parse_data_frame, sample_times_ns
from hipsense.device.gaps import Continuity, SensorTimeGapDetector
from hipsense.device.samples import Gap, GapReason, ImuSamples
from hipsense.errors import DecodeError

__all__ = [
    "PMD_CONTROL_POINT_UUID",
    "PMD_DATA_UUID",
    "PMD_SERVICE_UUID",
    "POLAR_EPOCH_UNIX_NS",
    "ControlPointResponse",
    "MeasurementType",
    "OpCode",
    "PmdFrame",
    "PolarPmdDecoder",
    "ResponseStatus",
    "SettingType",
    "StreamsStoppedByDevice",
    "build_settings_query",
    "build_start",
    "build_stop",
    "parse_control_point",
    "parse_data_frame",
    "parse_features",
    "parse_settings",
    "serialize_settings",
]

PMD_SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_POINT_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"  # read features, write, indicate
PMD_DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"  # notify

# Sensor timestamps count from 2000-01-01T00:00:00Z; add this for the Unix epoch.
POLAR_EPOCH_UNIX_NS = 946_684_800_000_000_000
STANDARD_GRAVITY_MS2 = 9.80665

RESPONSE_CODE = 0xF0  # first byte of a control-point response
DEVICE_STOPPED_CODE = 0x01  # first byte of a sensor-initiated "online measurement stopped"
FEATURES_CODE = 0x0F  # first byte of the control-point read (feature bitmap)


class MeasurementType(enum.IntEnum):
    """PMD measurement types (low 6 bits of the type byte; upper bits 0 when streaming)."""

    ECG = 0
    PPG = 1
    ACC = 2
    PPI = 3
    GYRO = 5
    MAG = 6
    SDK_MODE = 9


class OpCode(enum.IntEnum):
    GET_MEASUREMENT_SETTINGS = 0x01
    REQUEST_MEASUREMENT_START = 0x02
    STOP_MEASUREMENT = 0x03
    GET_SDK_MODE_MEASUREMENT_SETTINGS = 0x04
    GET_MEASUREMENT_STATUS = 0x05
    GET_SDK_MODE_STATUS = 0x06


class SettingType(enum.IntEnum):
    SAMPLE_RATE = 0  # Hz
    RESOLUTION = 1  # bits
    RANGE = 2  # g or deg/s
    RANGE_MILLIUNIT = 3
    CHANNELS = 4
    FACTOR = 5  # float32, sent only by the sensor


# Value width in bytes of each setting type.
SETTING_WIDTHS: dict[int, int] = {0: 2, 1: 2, 2: 2, 3: 4, 4: 1, 5: 4}


class ResponseStatus(enum.IntEnum):
    SUCCESS = 0
    INVALID_OP_CODE = 1
    INVALID_MEASUREMENT_TYPE = 2
    NOT_SUPPORTED = 3
    INVALID_LENGTH = 4
    INVALID_PARAMETER = 5
    ALREADY_IN_STATE = 6
    INVALID_RESOLUTION = 7
    INVALID_SAMPLE_RATE = 8
    INVALID_RANGE = 9
    INVALID_MTU = 10
    INVALID_NUMBER_OF_CHANNELS = 11
    INVALID_STATE = 12
    DEVICE_IN_CHARGER = 13
    DISK_FULL = 14


# ---------------------------------------------------------------------------- settings


def serialize_settings(settings: Mapping[int, int]) -> bytes:
    """``[type][count = 1][value LE]`` groups, in ascending setting type. FACTOR is refused."""
    out = bytearray()
    for setting_type in sorted(settings):
        if setting_type == SettingType.FACTOR or setting_type not in SETTING_WIDTHS:
            raise ValueError(f"setting type {setting_type} cannot be requested")
        width = SETTING_WIDTHS[setting_type]
        out += bytes([setting_type, 1]) + int(settings[setting_type]).to_bytes(
            width, "little", signed=setting_type == SettingType.RANGE_MILLIUNIT
        )
    return bytes(out)


def parse_settings(data: bytes) -> dict[int, tuple[float, ...]]:
    """Parse ``[type][count][count × value LE]`` groups (a settings response or start response).

    Returns setting type → values (ints; FACTOR as float). Raises DecodeError on an unknown type
    (its width is unknown, so nothing after it could be trusted) or a cut-short group.
    """
    settings: dict[int, tuple[float, ...]] = {}
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise DecodeError("PMD setting group header cut short", payload=data)
        setting_type, count = data[offset], data[offset + 1]
        offset += 2
        width = SETTING_WIDTHS.get(setting_type)
        if width is None:
            raise DecodeError(f"unknown PMD setting type {setting_type}", payload=data)
        end = offset + count * width
        if end > len(data):
            raise DecodeError(
                f"PMD setting {setting_type} needs {count * width} bytes", payload=data
            )
        chunk = data[offset:end]
        if setting_type == SettingType.FACTOR:
            values: tuple[float, ...] = struct.unpack(f"<{count}f", chunk)
        else:
            signed = setting_type == SettingType.RANGE_MILLIUNIT
            values = tuple(
                int.from_bytes(chunk[i : i + width], "little", signed=signed)
                for i in range(0, len(chunk), width)
            )
        settings[setting_type] = settings.get(setting_type, ()) + values
        offset = end
    return settings


# ---------------------------------------------------------------------------- commands


def build_settings_query(measurement: int) -> bytes:
    """GET_MEASUREMENT_SETTINGS ``01 <type>``: which rates/ranges/... the sensor allows."""
    return bytes([OpCode.GET_MEASUREMENT_SETTINGS, measurement])


def build_start(measurement: int, settings: Mapping[int, int] | None = None) -> bytes:
    """REQUEST_MEASUREMENT_START ``02 <type> <settings…>``.

    E.g. Verity ACC at 52 Hz, 16 bit, ±8 g, 3 channels:
    ``build_start(ACC, {SAMPLE_RATE: 52, RESOLUTION: 16, RANGE: 8, CHANNELS: 3})``.
    SDK mode is ``build_start(SDK_MODE)`` (``02 09``).
    """
    return bytes([OpCode.REQUEST_MEASUREMENT_START, measurement]) + serialize_settings(
        settings or {}
    )


def build_stop(measurement: int) -> bytes:
    """STOP_MEASUREMENT ``03 <type>``."""
    return bytes([OpCode.STOP_MEASUREMENT, measurement])


# ---------------------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True)
class ControlPointResponse:
    """A control-point response: ``F0 <op> <type> <status> <more> <parameters…>``.

    ``status`` is a :class:`ResponseStatus` when known, else the raw int. ``more`` means the
    parameters continue in the next indication. ``parameters`` is empty on errors.
    """

    op_code: int
    measurement_type: int
    status: int
    more: bool
    parameters: bytes

    @property
    def ok(self) -> bool:
        return self.status == ResponseStatus.SUCCESS

    @property
    def settings(self) -> dict[int, tuple[float, ...]]:
        """The parameters parsed as settings (DecodeError if they are not settings)."""
        return parse_settings(self.parameters)


@dataclass(frozen=True, slots=True)
class StreamsStoppedByDevice:
    """Sensor-initiated indication ``01 <types…>``: it stopped these online streams."""

    measurement_types: tuple[int, ...]


def parse_control_point(
    payload: bytes | bytearray,
) -> ControlPointResponse | StreamsStoppedByDevice:
    """Parse an indication from the PMD control point. Raises DecodeError if neither kind."""
    data = as_bytes(payload)
    if data[:1] == bytes([DEVICE_STOPPED_CODE]):
        return StreamsStoppedByDevice(tuple(data[1:]))
    if len(data) < 4 or data[0] != RESPONSE_CODE:
        raise DecodeError("not a PMD control-point response", payload=data)
    status_code = data[3]
    status: int = (
        ResponseStatus(status_code)
        if status_code in ResponseStatus._value2member_map_
        else status_code
    )
    success = status_code == ResponseStatus.SUCCESS
    return ControlPointResponse(
        op_code=data[1],
        measurement_type=data[2],
        status=status,
        more=success and len(data) > 4 and data[4] != 0,
        parameters=data[5:] if success else b"",
    )


def parse_features(payload: bytes | bytearray) -> frozenset[int]:
    """Measurement types a sensor offers, from reading the control point.

    The bitmap starts at byte 1: bit n is measurement type n (ACC 0x04 and GYRO 0x20 in byte 1,
    SDK mode 0x02 in byte 2).
    """
    data = as_bytes(payload)
    if len(data) < 2 or data[0] != FEATURES_CODE:
        raise DecodeError("not a PMD feature read", payload=data)
    bitmap = int.from_bytes(data[1:], "little")
    return frozenset(bit for bit in range(8 * (len(data) - 1)) if bitmap >> bit & 1)


# ---------------------------------------------------------------------------- decoder


@dataclass(slots=True)
class _Stream:
    """Per measurement type: scale factor, timestamp continuity, last emitted host time."""

    gaps: SensorTimeGapDetector
    factor: float | None = None
    last_t_s: float | None = None
    last_frame_ns: int | None = None


_CLOCK_DISAGREEMENT_S = 5.0

_STREAM_NAMES = {"acc": MeasurementType.ACC, "gyro": MeasurementType.GYRO}


class PolarPmdDecoder(SensorDecoder):
    """Decoder for Polar PMD ACC and GYRO streams (Verity Sense; an H10 offers ACC only).

    Each data frame becomes a block with either ``acc_ms2`` or ``gyr_rad_s``; both streams
    share the sensor clock, hence one clock fit. ``sensor_time_s`` is seconds since
    2000-01-01 UTC on the sensor's clock (which resets to a firmware default on power loss).

    Parameters
    ----------
    rate_hz
        Requested sample rate (Hz): 52 on a Verity in normal mode; 26–416 in SDK mode;
        25/50/100/200 on an H10.
    acc_range_g, gyr_range_dps
        Requested ranges (±g, ±deg/s).
    streams
        Which of ``"acc"``, ``"gyro"`` to start, of those the unit offers: :meth:`configure`
        reads its features, so an H10 (no gyroscope) streams ACC alone, and so does a Verity
        asked for ``("acc",)``. The service counts on the accelerometer alone either way.
    sdk_mode
        Enter SDK mode first (Verity firmware ≥ 1.1.5) to unlock other rates.
    send_channels
        Include the CHANNELS setting (Verity yes; the H10 start command omits it).
    factors
        Known FACTORs by stream name, for decoding without having seen the start responses.
    """

    sensor_type: ClassVar[str] = "polar"
    service_uuid: ClassVar[str] = PMD_SERVICE_UUID
    data_uuid: ClassVar[str] = PMD_DATA_UUID
    notify_uuids: ClassVar[tuple[str, ...]] = (PMD_CONTROL_POINT_UUID, PMD_DATA_UUID)
    name_prefixes: ClassVar[tuple[str, ...]] = ("Polar Sense", "Polar H10")
    display_name: ClassVar[str] = "Polar Verity Sense"
    # What a configuration may ask for: a Verity in normal mode streams 52 Hz only. SDK mode's
    # other rates need ``sdk_mode=True``, which the service's configuration does not offer yet.
    rates_hz: ClassVar[tuple[int, ...]] = (52,)
    default_rate_hz: ClassVar[int] = 52
    accelerometer_only: ClassVar[dict[str, Any] | None] = {"streams": ("acc",)}
    streams_apart: ClassVar[bool] = True

    def __init__(
        self,
        rate_hz: int = 52,
        *,
        acc_range_g: int = 8,
        gyr_range_dps: int = 2000,
        streams: Iterable[str] = ("acc", "gyro"),
        sdk_mode: bool = False,
        send_channels: bool = True,
        factors: Mapping[str, float] | None = None,
    ) -> None:
        self._streams_requested = tuple(streams)
        unknown = set(self._streams_requested) - set(_STREAM_NAMES)
        if unknown or not self._streams_requested:
            raise ValueError(f"streams must be a non-empty subset of {sorted(_STREAM_NAMES)}")
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        self.nominal_rate_hz = float(rate_hz)
        self._rate_hz = rate_hz
        self._acc_range_g = acc_range_g
        self._gyr_range_dps = gyr_range_dps
        self._sdk_mode = sdk_mode
        self._send_channels = send_channels
        self._factors = dict(factors or {})
        self._streams = {
            measurement: _Stream(
                SensorTimeGapDetector(self.nominal_rate_hz),
                factor=self._factors.get(name),
            )
            for name, measurement in _STREAM_NAMES.items()
        }
        # Frames come every ~0.5-1 s, so windows are long enough to hold several.
        self._clock = DeviceClockAligner(window_s=10.0, history_s=600.0)
        self.last_control_point: ControlPointResponse | StreamsStoppedByDevice | None = None
        """The most recent control-point indication, for the link to check statuses."""
        self._offered: frozenset[int] | None = None  # the unit's features; None: not read

    def options(self) -> dict[str, Any]:
        return {
            "rate_hz": self._rate_hz,
            "acc_range_g": self._acc_range_g,
            "gyr_range_dps": self._gyr_range_dps,
            "streams": list(self._streams_requested),
            "sdk_mode": self._sdk_mode,
            "send_channels": self._send_channels,
            "factors": dict(self._factors),
        }

    def start_settings(self, measurement: int) -> dict[int, int]:
        """The settings this decoder requests for ``measurement``."""
        ranges = {MeasurementType.ACC: self._acc_range_g, MeasurementType.GYRO: self._gyr_range_dps}
        settings = {
            SettingType.SAMPLE_RATE: self._rate_hz,
            SettingType.RESOLUTION: 16,
            SettingType.RANGE: ranges[MeasurementType(measurement)],
        }
        if self._send_channels:
            settings[SettingType.CHANNELS] = 3
        return settings

    async def configure(self, gatt: Gatt) -> None:
        """Read which measurements the unit offers (the control point's feature bitmap)."""
        self._offered = None
        if not gatt.has_characteristic(PMD_CONTROL_POINT_UUID):
            return
        try:
            self._offered = parse_features(await gatt.read(PMD_CONTROL_POINT_UUID))
        except DecodeError:
            pass  # unknown: ask for every stream; a refusal then names the one it lacks

    def _streams_started(self) -> tuple[str, ...]:
        """The requested streams the unit offers; all requested if none is (the refusal says why)."""
        offered = self._offered
        started = tuple(n for n in self._streams_requested if offered is None or _STREAM_NAMES[n] in offered)
        return started or self._streams_requested

    def start_writes(self) -> tuple[GattWrite, ...]:
        writes = []
        if self._sdk_mode:
            writes.append(self._cp_write(build_start(MeasurementType.SDK_MODE)))
        for name in self._streams_started():
            measurement = _STREAM_NAMES[name]
            writes.append(
                self._cp_write(build_start(measurement, self.start_settings(measurement)))
            )
        return tuple(writes)

    def stop_writes(self) -> tuple[GattWrite, ...]:
        writes = [
            self._cp_write(build_stop(_STREAM_NAMES[n])) for n in reversed(self._streams_started())
        ]
        if self._sdk_mode:
            writes.append(self._cp_write(build_stop(MeasurementType.SDK_MODE)))
        return tuple(writes)

    @staticmethod
    def _cp_write(data: bytes) -> GattWrite:
        return GattWrite(
            PMD_CONTROL_POINT_UUID, data, response=True, reply_uuid=PMD_CONTROL_POINT_UUID
        )

    def decode(
        self, payload: bytes | bytearray, received_at_s: float, *, char_uuid: str | None = None
    ) -> ImuSamples:
        uuid = self._check_char(char_uuid, (PMD_DATA_UUID, PMD_CONTROL_POINT_UUID))
        data = as_bytes(payload)
        if uuid == PMD_CONTROL_POINT_UUID:
            self._note_control_point(parse_control_point(data))
            return ImuSamples.empty()
        return self._decode_data(data, received_at_s)

    def _note_control_point(self, message: ControlPointResponse | StreamsStoppedByDevice) -> None:
        if (
            isinstance(message, ControlPointResponse)
            and message.ok
            and message.op_code == OpCode.REQUEST_MEASUREMENT_START
            and message.measurement_type in self._streams
        ):
            factors = message.settings.get(SettingType.FACTOR, (1.0,))
            if len(factors) == 0:
                # a FACTOR setting that lists no value: nothing to scale by, nothing changed
                raise DecodeError("start reply carries an empty FACTOR setting", payload=b"")
            self._streams[message.measurement_type].factor = float(factors[0])
        self.last_control_point = message

    def _decode_data(self, data: bytes, received_at_s: float) -> ImuSamples:
        measurement = data[0] if data else -1
        stream = self._streams.get(measurement)
        frame = parse_data_frame(data, factor=stream.factor if stream else None)
        assert stream is not None  # parse_data_frame rejects other measurement types
        n = frame.values.shape[0]
        frame_s = frame.timestamp_ns / 1e9
        verdict = stream.gaps.check(frame_s, n, received_at_s)
        previous_ns = stream.last_frame_ns
        if verdict.continuity in (Continuity.FIRST, Continuity.CLOCK_RESET):
            previous_ns = None
        missing = verdict.samples_lost
        times_ns = sample_times_ns(
            previous_ns, frame.timestamp_ns, n, self.nominal_rate_hz, missing=missing
        )

        # ---- everything below changes state; nothing below can raise for bad input ----
        if verdict.continuity is Continuity.CLOCK_RESET or self._clock_disagrees(
            frame_s, received_at_s
        ):
            self._clock.reset()
        self._clock.observe(frame_s, received_at_s)
        sensor_time_s = np.array(times_ns, dtype=np.float64) / 1e9
        t_s = increasing_after(self._clock.to_host(sensor_time_s), stream.last_t_s)
        gaps: tuple[Gap, ...] = ()
        if stream.last_t_s is not None and verdict.continuity is Continuity.CLOCK_RESET:
            gaps = (Gap(stream.last_t_s, float(t_s[0]), None, GapReason.SENSOR_CLOCK_RESET),)
        elif stream.last_t_s is not None and verdict.continuity is Continuity.SAMPLES_LOST:
            gaps = (Gap(stream.last_t_s, float(t_s[0]), missing, GapReason.SENSOR_TIME_JUMP),)
        stream.gaps.commit(frame_s, received_at_s)
        stream.last_frame_ns = frame.timestamp_ns
        stream.last_t_s = float(t_s[-1])
        if measurement == MeasurementType.ACC:
            return ImuSamples(
                t_s=t_s,
                acc_ms2=frame.values * (STANDARD_GRAVITY_MS2 / 1000.0),
                sensor_time_s=sensor_time_s,
                gaps=gaps,
            )
        return ImuSamples(
            t_s=t_s, gyr_rad_s=np.deg2rad(frame.values), sensor_time_s=sensor_time_s, gaps=gaps
        )

    def _clock_disagrees(self, frame_s: float, received_at_s: float) -> bool:
        # A reset seen first by the other stream has already re-anchored the clock; only reset
        # again if this frame does not fit the current fit either. BLE latency is far below
        # the bound; a sensor clock that jumped is far above it.
        if not self._clock.ready:
            return False
        lag = received_at_s - float(self._clock.to_host(frame_s))
        return abs(lag) > _CLOCK_DISAGREEMENT_S

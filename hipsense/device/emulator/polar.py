"""An emulated Polar Verity Sense on Bumble: the PMD service, ACC and GYRO in compressed frames.

Protocol facts from ``docs/sensors.md`` §3; wire encoding in :mod:`.pmd_encoder`. What a client
sees:

* advertises ``Polar Sense <id>`` (and the SIG heart-rate service, as the armband does);
* PMD service ``fb005c80-…``: control point ``…5c81`` (read → feature bitmap; write; indicate)
  and data ``…5c82`` (notify); SIG battery service with 0x2A19;
* ``01 <type>`` (settings query) → ``F0 01 <type> 00 00`` + the allowed settings;
* ``02 <type> <settings>`` (start) → ``F0 02 <type> 00 00 05 01 <FACTOR f32>``, or an error
  status (invalid rate / range / resolution / channels, already started, …) without parameters;
* ``03 <type>`` (stop), ``02 09`` / ``03 09`` (enter / leave SDK mode: other rates and ranges);
* streams each started type as its own delta-compressed frames, stamped with the sensor clock
  (ns since 2000-01-01, starting at the firmware's default after power-on, 2017-01-01);
* forgets its streams when the link drops, as the real unit does (the link must start again).

Replies are indications sent after the write response, as on the real control point.

Known simplifications: ACC and GYRO share one sample rate (a start asking for another rate
than the running stream's is refused with "invalid sample rate", which a real unit would
accept); the SDK mode does not send the "streams stopped" indication when it closes streams.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence

import numpy as np
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from hipsense.device.bumble_backend._radio import VirtualRadio
from hipsense.device.emulator._peripheral import EmulatedPeripheral
from hipsense.device.emulator._recording import STANDARD_GRAVITY_MS2, ImuRecording
from hipsense.device.emulator.pmd_encoder import (
    ACC,
    GYRO,
    SDK_MODE,
    SETTING_WIDTHS,
    encode_compressed_frame,
    encode_features,
    encode_response,
    encode_settings,
)

logger = logging.getLogger(__name__)

__all__ = [
    "PMD_CONTROL_POINT_UUID",
    "PMD_DATA_UUID",
    "PMD_SERVICE_UUID",
    "VERITY_CLOCK_ORIGIN_NS",
    "PolarVeritySenseEmulator",
]

PMD_SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_POINT_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
HEART_RATE_SERVICE_UUID = "180d"
BATTERY_SERVICE_UUID = "180f"
BATTERY_LEVEL_UUID = "2a19"

#: The Verity's clock restarts at 2017-01-01 after power loss: ns since 2000-01-01.
VERITY_CLOCK_ORIGIN_NS = 536_544_000 * 1_000_000_000

# Op codes and statuses of sensors.md §3.2.
OP_GET_SETTINGS, OP_START, OP_STOP = 0x01, 0x02, 0x03
OK, INVALID_OP, INVALID_TYPE, NOT_SUPPORTED, INVALID_LENGTH, INVALID_PARAMETER = 0, 1, 2, 3, 4, 5
ALREADY_IN_STATE, INVALID_RESOLUTION, INVALID_RATE, INVALID_RANGE, INVALID_CHANNELS = 6, 7, 8, 9, 11
SETTING_RATE, SETTING_RESOLUTION, SETTING_RANGE, SETTING_CHANNELS = 0, 1, 2, 4

# What a Verity offers (sensors.md §3.2 capabilities): normal mode, then SDK mode.
_OFFERED = {
    False: {
        ACC: {SETTING_RATE: (52,), SETTING_RESOLUTION: (16,), SETTING_RANGE: (8,), SETTING_CHANNELS: (3,)},
        GYRO: {SETTING_RATE: (52,), SETTING_RESOLUTION: (16,), SETTING_RANGE: (2000,), SETTING_CHANNELS: (3,)},
    },
    True: {
        ACC: {
            SETTING_RATE: (26, 52, 104, 208, 416),
            SETTING_RESOLUTION: (16,),
            SETTING_RANGE: (2, 4, 8, 16),
            SETTING_CHANNELS: (3,),
        },
        GYRO: {
            SETTING_RATE: (26, 52, 104, 208, 416),
            SETTING_RESOLUTION: (16,),
            SETTING_RANGE: (250, 500, 1000, 2000),
            SETTING_CHANNELS: (3,),
        },
    },
}
_SETTING_ERRORS = {
    SETTING_RATE: INVALID_RATE,
    SETTING_RESOLUTION: INVALID_RESOLUTION,
    SETTING_RANGE: INVALID_RANGE,
    SETTING_CHANNELS: INVALID_CHANNELS,
}
# PPG, ACC, PPI, GYRO, MAG and SDK mode: the feature bits of a Verity.
_FEATURES = (1, ACC, 3, GYRO, 6, SDK_MODE)
_HEADER_AND_REFERENCE = 10 + 6 + 2  # header, 16-bit reference sample, one block header


class _Stream:
    """A started measurement: its range, FACTOR and frame type, and what it put on the air."""

    def __init__(self, measurement: int, range_: int, frame_type: int) -> None:
        self.measurement = measurement
        self.frame_type = frame_type
        full_scale = float(range_)
        if measurement == ACC:
            # Compressed ACC type 1 → mG after the factor; type 0 → g (sensors.md §3.3).
            self.factor = full_scale * (1000.0 if frame_type == 1 else 1.0) / 32768.0
        else:
            self.factor = full_scale / 32768.0  # deg/s per count
        # Send the value the decoder will see as a float32, so the quantisation is exact.
        self.factor = float(np.float32(self.factor))


class PolarVeritySenseEmulator(EmulatedPeripheral):
    """A Verity Sense on a :class:`VirtualRadio`, replaying an :class:`ImuRecording`.

    Parameters
    ----------
    radio
        The virtual radio to join.
    recording
        What to replay: the sample shown at sensor time ``t`` (s since power-on) is
        ``recording.index_at(t)``, wrapping around (unless ``loop`` is false: then the last
        sample repeats, as a sensor lying still would).
    name, address
        Advertised name (real units: ``Polar Sense`` and an 8-hex-digit id) and address.
    speed
        Replay speed (1.0 real time). The sensor clock runs ``speed`` times faster too, so a
        client must stamp receive times on a clock scaled alike for clock alignment to hold.
    samples_per_frame
        Samples in one frame (real units send ~0.5–1 s of data per frame); capped so that even
        16-bit deltas fit the link's MTU.
    block_samples
        Most samples per delta block inside a frame.
    acc_frame_type
        1 (values in mG after the factor) or 0 (in g; the SDK's special case).
    clock_origin_ns
        Sensor time at power-on, ns since 2000-01-01.
    battery_percent
        Value of the SIG battery level.
    """

    default_rate_hz = 52.0

    def __init__(
        self,
        radio: VirtualRadio,
        recording: ImuRecording,
        *,
        name: str = "Polar Sense B5A4E12F",
        address: str = "E0:9E:1A:00:00:01",
        speed: float = 1.0,
        samples_per_frame: int = 26,
        block_samples: int = 255,
        acc_frame_type: int = 1,
        clock_origin_ns: int = VERITY_CLOCK_ORIGIN_NS,
        battery_percent: int = 87,
        loop: bool = True,
    ) -> None:
        super().__init__(radio, name=name, address=address, speed=speed)
        if acc_frame_type not in (0, 1):
            raise ValueError(f"acc_frame_type must be 0 or 1, got {acc_frame_type}")
        self.recording = recording
        self.loop = loop
        # A recording without angular rate is replayed as a unit without a gyroscope (an H10
        # offers ACC only): GYRO is left out of the features and refused as not supported.
        self.features = _FEATURES if recording.has_gyro else tuple(f for f in _FEATURES if f != GYRO)
        self.max_samples_per_frame = samples_per_frame
        self.block_samples = block_samples
        self.acc_frame_type = acc_frame_type
        self.clock_origin_ns = clock_origin_ns
        self.battery_percent = battery_percent
        self.sdk_mode = False
        self.streams: dict[int, _Stream] = {}
        self.commands: list[bytes] = []
        self.replies: list[bytes] = []
        #: Sensor times (s since power-on) of every sample put on the air, per measurement type.
        self.sent_times_s: dict[int, list[float]] = {ACC: [], GYRO: []}
        self._reply_tasks: set[asyncio.Task[None]] = set()
        self._control_point = Characteristic(
            PMD_CONTROL_POINT_UUID,
            Characteristic.Properties.READ | Characteristic.Properties.WRITE | Characteristic.Properties.INDICATE,
            Characteristic.Permissions.READABLE | Characteristic.Permissions.WRITEABLE,
            CharacteristicValue(read=lambda _connection: encode_features(self.features), write=self._on_write),
        )
        self._data = Characteristic(
            PMD_DATA_UUID, Characteristic.Properties.NOTIFY, Characteristic.Permissions.READABLE, b""
        )
        self._battery = Characteristic(
            BATTERY_LEVEL_UUID,
            Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
            Characteristic.Permissions.READABLE,
            CharacteristicValue(read=lambda _connection: bytes([self.battery_percent])),
        )

    # -- protocol -------------------------------------------------------------------------------

    def services(self) -> Sequence[Service]:
        return [
            Service(PMD_SERVICE_UUID, [self._control_point, self._data]),
            Service(BATTERY_SERVICE_UUID, [self._battery]),
        ]

    def advertising_data(self) -> bytes:
        # Flags + name + one 16-bit UUID stay within the 31 bytes of a legacy advertisement;
        # the 128-bit PMD UUID would not, so scanners find a Verity by its name.
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.Type.FLAGS, bytes([0x06])),
                    (AdvertisingData.Type.COMPLETE_LOCAL_NAME, self.name.encode()),
                    (
                        AdvertisingData.Type.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        UUID(HEART_RATE_SERVICE_UUID).to_bytes(),
                    ),
                ]
            )
        )

    @property
    def data_characteristic(self) -> Characteristic:
        return self._data

    def is_subscribed(self) -> bool:
        """Data notifications are on and at least one measurement is started."""
        return bool(self.streams) and super().is_subscribed()

    def frames_per_notification(self) -> int:
        mtus = [c.att_mtu for c in self.connections]
        if not mtus:
            return self.max_samples_per_frame
        return min(self.max_samples_per_frame, frame_capacity(min(mtus), self.block_samples))

    def device_time_ns(self, sensor_time_s: float) -> int:
        """The timestamp a sample taken ``sensor_time_s`` after power-on carries."""
        return self.clock_origin_ns + round(sensor_time_s * 1e9)

    def counts(self, measurement: int, sensor_times_s: Sequence[float]) -> np.ndarray:
        """The int16 counts the running ``measurement`` stream sends for these sample times."""
        stream = self.streams[measurement]
        rows = [self.recording.index_at(t, loop=self.loop) for t in sensor_times_s]
        if measurement == ACC:
            values = self.recording.acc_ms2[rows] / STANDARD_GRAVITY_MS2 * (1000.0 if stream.frame_type == 1 else 1.0)
        else:
            assert self.recording.gyr_dps is not None  # GYRO starts only with a gyroscope
            values = self.recording.gyr_dps[rows]
        return np.clip(np.rint(values / stream.factor), -32768, 32767).astype(np.int64)

    def notifications(self, sensor_times_s: Sequence[float]) -> list[tuple[Characteristic, bytes]]:
        timestamp_ns = self.device_time_ns(sensor_times_s[-1])
        out = []
        for measurement in (ACC, GYRO):
            if measurement not in self.streams:
                continue
            frame = encode_compressed_frame(
                measurement,
                timestamp_ns,
                self.counts(measurement, sensor_times_s),
                frame_type=self.streams[measurement].frame_type,
                block_samples=self.block_samples,
            )
            self.sent_times_s[measurement].extend(sensor_times_s)
            out.append((self._data, frame))
        return out

    def on_disconnected(self, connection: Connection) -> None:
        # A real unit ends online streams with the link; the client starts them again.
        self.streams.clear()

    # -- the control point ----------------------------------------------------------------------

    def _on_write(self, connection: Connection, value: bytes) -> None:
        command = bytes(value)
        self.commands.append(command)
        reply = self._answer(command)
        # The reply is an indication after the write response: send it from a task, which
        # runs once this callback has returned and Bumble has answered the write.
        task = asyncio.get_running_loop().create_task(self._indicate(connection, reply))
        self._reply_tasks.add(task)
        task.add_done_callback(self._reply_tasks.discard)

    async def _indicate(self, connection: Connection, reply: bytes) -> None:
        self.replies.append(reply)
        try:
            await self.device.indicate_subscriber(connection, self._control_point, reply)
        except Exception as exc:  # noqa: BLE001 - the link may have dropped meanwhile
            logger.debug("%s: indication not delivered: %s", self.name, exc)

    def _answer(self, command: bytes) -> bytes:
        if len(command) < 2:
            return encode_response(command[0] if command else 0, 0, INVALID_LENGTH)
        op_code, measurement = command[0], command[1]
        if op_code == OP_GET_SETTINGS:
            offered = self._offered(measurement)
            if offered is None:
                return encode_response(op_code, measurement, NOT_SUPPORTED)
            return encode_response(op_code, measurement, OK, encode_settings(offered))
        if op_code == OP_START:
            return self._start(measurement, command[2:])
        if op_code == OP_STOP:
            return self._stop(measurement)
        return encode_response(op_code, measurement, INVALID_OP)

    def _offered(self, measurement: int) -> dict[int, tuple[int, ...]] | None:
        """The settings this unit allows for ``measurement`` now; None: not a stream it has."""
        return _OFFERED[self.sdk_mode].get(measurement) if measurement in self.features else None

    def _start(self, measurement: int, parameters: bytes) -> bytes:
        if measurement == SDK_MODE:
            if self.sdk_mode:
                return encode_response(OP_START, measurement, ALREADY_IN_STATE)
            self.sdk_mode = True
            self.streams.clear()  # entering SDK mode closes running streams
            return encode_response(OP_START, measurement, OK)
        offered = self._offered(measurement)
        if offered is None:
            return encode_response(OP_START, measurement, NOT_SUPPORTED)
        if measurement in self.streams:
            return encode_response(OP_START, measurement, ALREADY_IN_STATE)
        settings, status = _parse_request(parameters)
        if status != OK:
            return encode_response(OP_START, measurement, status)
        for setting_type, allowed in offered.items():
            if setting_type not in settings and setting_type != SETTING_CHANNELS:
                return encode_response(OP_START, measurement, INVALID_PARAMETER)
            if setting_type in settings and settings[setting_type] not in allowed:
                return encode_response(OP_START, measurement, _SETTING_ERRORS[setting_type])
        rate = settings[SETTING_RATE]
        if self.streams and rate != self.rate_hz:
            return encode_response(OP_START, measurement, INVALID_RATE)  # see module docstring
        frame_type = self.acc_frame_type if measurement == ACC else 0
        stream = _Stream(measurement, settings[SETTING_RANGE], frame_type)
        if not self.streams:
            self.discard_pending()  # the first frame holds samples taken after the start
        self.rate_hz = float(rate)
        self.streams[measurement] = stream
        return encode_response(OP_START, measurement, OK, encode_settings({5: (stream.factor,)}))

    def _stop(self, measurement: int) -> bytes:
        if measurement == SDK_MODE:
            if not self.sdk_mode:
                return encode_response(OP_STOP, measurement, ALREADY_IN_STATE)
            self.sdk_mode = False
            self.streams.clear()
            return encode_response(OP_STOP, measurement, OK)
        if measurement not in (ACC, GYRO):
            return encode_response(OP_STOP, measurement, NOT_SUPPORTED)
        if self.streams.pop(measurement, None) is None:
            return encode_response(OP_STOP, measurement, ALREADY_IN_STATE)
        return encode_response(OP_STOP, measurement, OK)


def _parse_request(parameters: bytes) -> tuple[dict[int, int], int]:
    """The settings of a start request as ``{type: value}``, and a status (OK or why not)."""
    settings: dict[int, int] = {}
    offset = 0
    while offset < len(parameters):
        if offset + 2 > len(parameters):
            return settings, INVALID_LENGTH
        setting_type, count = parameters[offset], parameters[offset + 1]
        width = SETTING_WIDTHS.get(setting_type)
        if width is None or setting_type == 5 or count != 1:
            return settings, INVALID_PARAMETER
        end = offset + 2 + width
        if end > len(parameters):
            return settings, INVALID_LENGTH
        settings[setting_type] = int.from_bytes(parameters[offset + 2 : end], "little")
        offset = end
    return settings, OK


def frame_capacity(mtu: int, block_samples: int = 255) -> int:
    """Samples a frame may hold so that worst-case 16-bit deltas fit one notification.

    A frame longer than the MTU allows would be cut short by the stack, so the encoder never
    relies on deltas being small: at 16 bits each, a sample after the reference costs 6 bytes,
    and every block of up to ``block_samples`` adds its 2-byte header.
    """
    room = mtu - 3 - _HEADER_AND_REFERENCE
    n = 1
    while True:
        deltas = n  # samples after the reference if the frame held n + 1
        if 6 * deltas + 2 * (math.ceil(deltas / block_samples) - 1) > room:
            return n
        n += 1

"""An emulated MbientLab MetaMotion R (BMI160) on Bumble: raw acc + gyro in packed messages.

Protocol facts from ``docs/sensors.md`` §4, written independently of the project's decoder:

* advertises its name, ``MetaWear``; serves the MetaWear service ``326a9000-…``: command ``…9001`` (write
  without response) and notify ``…9006``, which carries every response and data packet;
* every message is ``[module][register][payload…]``; accelerometer module 0x03, gyro 0x13,
  settings 0x11; a read sets bit 7 of the register;
* ``03 03 <acc_conf> <range>`` / ``13 03 <odr|bwp> <range>`` configure rate and range;
  ``03 1C 01`` / ``13 07 01`` subscribe to the packed data (3 samples a message), ``03 04 01`` /
  ``13 05 01`` to single samples; ``.. 02 01 00`` enables sampling, ``.. 01 01`` starts it and
  ``.. 01 00`` stops it;
* data is int16 LE x, y, z per sample: acc in LSB per g (±2/4/8/16 g → 16384/8192/4096/2048),
  gyro in LSB per deg/s (±2000…125 → 16.4…262.4); no timestamp or counter;
* ``11 CC`` (battery read) is answered ``11 8C <charge %> <mV u16 LE>``.

A recording without angular rate (:class:`ImuRecording` ``gyr_dps=None``) is replayed as a
board whose gyroscope sends nothing: configure it to stream the accelerometer alone.

Known simplifications: both streams run at the accelerometer's rate (the client configures the
same rate for both); below 12.5 Hz the BMI160's undersampling codes are not emulated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import numpy as np
from bumble.core import AdvertisingData
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from hipsense.device.bumble_backend._radio import VirtualRadio
from hipsense.device.emulator._peripheral import EmulatedPeripheral
from hipsense.device.emulator._recording import STANDARD_GRAVITY_MS2, ImuRecording

logger = logging.getLogger(__name__)

__all__ = ["METAWEAR_SERVICE_UUID", "MetaMotionEmulator"]

METAWEAR_SERVICE_UUID = "326a9000-85cb-9195-d9dd-464cfbbae75a"
COMMAND_UUID = "326a9001-85cb-9195-d9dd-464cfbbae75a"
NOTIFY_UUID = "326a9006-85cb-9195-d9dd-464cfbbae75a"

ACC, GYRO, SETTINGS = 0x03, 0x13, 0x11
REG_POWER, REG_ENABLE, REG_CONFIG = 0x01, 0x02, 0x03
ACC_DATA, ACC_PACKED, GYRO_DATA, GYRO_PACKED = 0x04, 0x1C, 0x05, 0x07
BATTERY_READ = 0xCC

# sensors.md §4.3 / §4.4 tables.
ACC_ODR_HZ = {0x5: 12.5, 0x6: 25.0, 0x7: 50.0, 0x8: 100.0, 0x9: 200.0, 0xA: 400.0, 0xB: 800.0, 0xC: 1600.0}
ACC_LSB_PER_G = {0x03: 16384.0, 0x05: 8192.0, 0x08: 4096.0, 0x0C: 2048.0}
GYRO_LSB_PER_DPS = {0: 16.4, 1: 32.8, 2: 65.6, 3: 131.2, 4: 262.4}
SAMPLES_PER_PACKED = 3


class MetaMotionEmulator(EmulatedPeripheral):
    """A MetaMotion R on a :class:`VirtualRadio`, replaying an :class:`ImuRecording`.

    Parameters
    ----------
    radio
        The virtual radio to join.
    recording
        What to replay: the sample shown at sensor time ``t`` is ``recording.index_at(t)``,
        wrapping around unless ``loop`` is false (then the last sample repeats).
    name, address
        Advertised name (``MetaWear`` on real boards) and address.
    speed
        Replay speed (1.0 real time).
    battery_percent, battery_mv
        What a battery read answers.
    """

    default_rate_hz = 0.0  # silent until the client configures and starts the sensors

    def __init__(
        self,
        radio: VirtualRadio,
        recording: ImuRecording,
        *,
        name: str = "MetaWear",
        address: str = "C7:3D:00:00:00:01",
        speed: float = 1.0,
        battery_percent: int = 99,
        battery_mv: int = 4148,
        loop: bool = True,
    ) -> None:
        super().__init__(radio, name=name, address=address, speed=speed)
        self.recording = recording
        self.loop = loop
        self.battery_percent = battery_percent
        self.battery_mv = battery_mv
        self.commands: list[bytes] = []
        self._answer_tasks: set[asyncio.Task[None]] = set()
        self.acc_lsb_per_g = ACC_LSB_PER_G[0x08]
        self.gyro_lsb_per_dps = GYRO_LSB_PER_DPS[0]
        self.configured_rate_hz = 0.0
        self.packed = {ACC: False, GYRO: False}
        self.subscribed = {ACC: False, GYRO: False}
        self.running = {ACC: False, GYRO: False}
        self._notify = Characteristic(
            NOTIFY_UUID, Characteristic.Properties.NOTIFY, Characteristic.Permissions.READABLE, b""
        )
        self._command = Characteristic(
            COMMAND_UUID,
            Characteristic.Properties.WRITE_WITHOUT_RESPONSE | Characteristic.Properties.WRITE,
            Characteristic.Permissions.WRITEABLE,
            CharacteristicValue(write=self._on_command),
        )

    # -- protocol -------------------------------------------------------------------------------

    def services(self) -> Sequence[Service]:
        return [Service(METAWEAR_SERVICE_UUID, [self._command, self._notify])]

    def advertising_data(self) -> bytes:
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.Type.FLAGS, bytes([0x06])),
                    (AdvertisingData.Type.COMPLETE_LOCAL_NAME, self.name.encode()),
                ]
            )
        )

    @property
    def data_characteristic(self) -> Characteristic:
        return self._notify

    def is_subscribed(self) -> bool:
        """Some stream is started and subscribed, and notifications are on."""
        return any(self.running[m] and self.subscribed[m] for m in (ACC, GYRO)) and super().is_subscribed()

    def frames_per_notification(self) -> int:
        return SAMPLES_PER_PACKED if any(self.packed.values()) else 1

    def notifications(self, sensor_times_s: Sequence[float]) -> list[tuple[Characteristic, bytes]]:
        rows = [self.recording.index_at(t, loop=self.loop) for t in sensor_times_s]
        recorded = {ACC: self.recording.acc_ms2, GYRO: self.recording.gyr_dps}
        per_unit = {ACC: STANDARD_GRAVITY_MS2, GYRO: 1.0}  # counts are per g and per deg/s
        out = []
        for module, scale, data_reg, packed_reg in (
            (ACC, self.acc_lsb_per_g, ACC_DATA, ACC_PACKED),
            (GYRO, self.gyro_lsb_per_dps, GYRO_DATA, GYRO_PACKED),
        ):
            source = recorded[module]
            # an accelerometer-only recording: the gyroscope, if started, has nothing to send
            if source is None or not (self.running[module] and self.subscribed[module]):
                continue
            values = source[rows] / per_unit[module]
            counts = np.clip(np.rint(values * scale), -32768, 32767).astype("<i2")
            if self.packed[module]:
                out.append((self._notify, bytes([module, packed_reg]) + counts.tobytes()))
            else:  # one message per sample
                out.extend((self._notify, bytes([module, data_reg]) + row.tobytes()) for row in counts)
        return out

    def on_disconnected(self, connection: Connection) -> None:
        # The board stops streaming to a client that is gone; the client starts it again.
        self.running = {ACC: False, GYRO: False}
        self.subscribed = {ACC: False, GYRO: False}
        self._update_rate()

    # -- commands -------------------------------------------------------------------------------

    def _on_command(self, connection: Connection, value: bytes) -> None:
        data = bytes(value)
        self.commands.append(data)
        if len(data) < 2:
            return
        module, register, payload = data[0], data[1], data[2:]
        if module == SETTINGS and register == BATTERY_READ:
            answer = bytes([SETTINGS, 0x8C, self.battery_percent]) + self.battery_mv.to_bytes(2, "little")
            task = asyncio.get_running_loop().create_task(self.device.notify_subscribers(self._notify, answer))
            self._answer_tasks.add(task)
            task.add_done_callback(self._answer_tasks.discard)
            return
        if module not in (ACC, GYRO):
            logger.debug("%s ignores %s", self.name, data.hex(" "))
            return
        if register == REG_CONFIG and len(payload) >= 2:
            if module == ACC:
                self.configured_rate_hz = ACC_ODR_HZ.get(payload[0] & 0x0F, self.configured_rate_hz)
                self.acc_lsb_per_g = ACC_LSB_PER_G.get(payload[1], self.acc_lsb_per_g)
            else:
                self.gyro_lsb_per_dps = GYRO_LSB_PER_DPS.get(payload[1], self.gyro_lsb_per_dps)
        elif register in (ACC_DATA, ACC_PACKED, GYRO_DATA, GYRO_PACKED) and payload:
            self.subscribed[module] = payload[0] == 0x01
            self.packed[module] = register in (ACC_PACKED, GYRO_PACKED)
        elif register == REG_POWER and payload:
            starting = payload[0] == 0x01 and not any(self.running.values())
            self.running[module] = payload[0] == 0x01
            if starting:
                self.discard_pending()  # samples start with the sensors
        self._update_rate()

    def _update_rate(self) -> None:
        self.rate_hz = self.configured_rate_hz if any(self.running.values()) else 0.0

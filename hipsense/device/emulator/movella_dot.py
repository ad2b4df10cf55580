"""An emulated Movella DOT on Bumble, streaming "rate quantities" with a wrapping µs clock.

Protocol facts from ``docs/sensors.md`` §2, written independently of the project's decoder:

* base UUID ``1517xxxx-4947-11e9-8646-d663bd873d93``; advertises ``Movella DOT`` with the
  Movella company id (0x0886) in its manufacturer data;
* configuration service 0x1000: device info 0x1001 (34 B read), device control 0x1002 (32 B
  read/write: byte 0 a "visit index" bitmask, bit 4 = apply the output rate, uint16 LE rate
  at offset 24; 1, 4, 10, 12, 15, 20, 30 or 60 Hz, and not while measuring);
* measurement service 0x2000: control 0x2001 (3 B read/write: ``01 01 15`` starts rate
  quantities, ``01 00 15`` stops), payload characteristics 0x2002 / 0x2003 / 0x2004 (notify);
* battery 0x3001 (read/notify, ``[level %, charging]``);
* rate quantities on 0x2003, one sample per notification: uint32 LE µs timestamp (wrapping
  every 2**32 µs ≈ 71.6 min), acc x/y/z (m/s², float32 LE), gyro x/y/z (deg/s, float32 LE),
  zero padding to the characteristic's 40 bytes;
* measuring stops when the link drops (the client starts it again after reconnecting).

Device info holds only the MAC here (bytes 0–5, LSB first); the rest of its 34 bytes is
zero, because the protocol sheet gives no byte layout for it.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence

from bumble.core import AdvertisingData
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from hipsense.device.bumble_backend._radio import VirtualRadio
from hipsense.device.emulator._peripheral import EmulatedPeripheral
from hipsense.device.emulator._recording import ImuRecording

logger = logging.getLogger(__name__)

__all__ = ["MovellaDotEmulator", "dot_uuid", "encode_rate_quantities"]

MOVELLA_COMPANY_ID = 0x0886
ALLOWED_RATES_HZ = (1, 4, 10, 12, 15, 20, 30, 60)
RATE_QUANTITIES_MODE = 21
PAYLOAD_LENGTH = 40  # the medium-payload characteristic's size; mode 21 uses the first 28
TIMESTAMP_MODULUS = 2**32
DEVICE_CONTROL_LENGTH = 32
VISIT_OUTPUT_RATE = 0x10
OUTPUT_RATE_OFFSET = 24
FILTER_PROFILE_OFFSET = 26


def dot_uuid(short: int) -> str:
    """Full UUID in the DOT base ``1517xxxx-4947-11e9-8646-d663bd873d93``."""
    return f"1517{short:04x}-4947-11e9-8646-d663bd873d93"


def encode_rate_quantities(timestamp_us: int, acc_ms2: Sequence[float], gyr_dps: Sequence[float]) -> bytes:
    """One 40-byte mode-21 notification: raw µs timestamp (already wrapped), floats, padding."""
    body = struct.pack("<I6f", timestamp_us % TIMESTAMP_MODULUS, *acc_ms2, *gyr_dps)
    return body + bytes(PAYLOAD_LENGTH - len(body))


class MovellaDotEmulator(EmulatedPeripheral):
    """A Movella DOT on a :class:`VirtualRadio`, replaying an :class:`ImuRecording`.

    Parameters
    ----------
    radio
        The virtual radio to join.
    recording
        What to replay: the sample shown at sensor time ``t`` (s since power-on) is
        ``recording.index_at(t)``, wrapping around (unless ``loop`` is false: then the last
        sample repeats, as a sensor lying still would).
    name, address
        Advertised name ("Xsens DOT" on firmware up to 2.4.x) and address (real units:
        D4:22:CD:…).
    speed
        Replay speed (1.0 real time); the sensor clock runs that much faster too.
    clock_start_us
        The µs counter at power-on. Set it just below 2**32 to see the wrap within seconds.
    battery_percent, charging
        The battery characteristic's value.
    """

    default_rate_hz = 60.0

    def __init__(
        self,
        radio: VirtualRadio,
        recording: ImuRecording,
        *,
        name: str = "Movella DOT",
        address: str = "D4:22:CD:00:00:01",
        speed: float = 1.0,
        clock_start_us: int = 0,
        battery_percent: int = 73,
        charging: bool = False,
        loop: bool = True,
    ) -> None:
        super().__init__(radio, name=name, address=address, speed=speed)
        self.recording = recording
        self.loop = loop
        self.clock_start_us = clock_start_us
        self.battery_percent = battery_percent
        self.charging = charging
        self.measuring = False
        self.filter_profile = 0
        self.commands: list[tuple[str, bytes]] = []
        self._measurement_control = bytes([0x01, 0x00, RATE_QUANTITIES_MODE])
        self._device_info = Characteristic(
            dot_uuid(0x1001),
            Characteristic.Properties.READ,
            Characteristic.Permissions.READABLE,
            CharacteristicValue(read=lambda _c: bytes(reversed(bytes.fromhex(self.address.replace(":", ""))))
                                + bytes(28)),
        )
        self._device_control = Characteristic(
            dot_uuid(0x1002),
            Characteristic.Properties.READ | Characteristic.Properties.WRITE,
            Characteristic.Permissions.READABLE | Characteristic.Permissions.WRITEABLE,
            CharacteristicValue(read=self._read_device_control, write=self._write_device_control),
        )
        self._device_report = Characteristic(
            dot_uuid(0x1004), Characteristic.Properties.NOTIFY, Characteristic.Permissions.READABLE, b""
        )
        self._control = Characteristic(
            dot_uuid(0x2001),
            Characteristic.Properties.READ | Characteristic.Properties.WRITE,
            Characteristic.Permissions.READABLE | Characteristic.Permissions.WRITEABLE,
            CharacteristicValue(read=lambda _c: self._measurement_control, write=self._write_control),
        )
        self._payloads = {
            short: Characteristic(
                dot_uuid(short), Characteristic.Properties.NOTIFY, Characteristic.Permissions.READABLE, b""
            )
            for short in (0x2002, 0x2003, 0x2004)
        }
        self._battery = Characteristic(
            dot_uuid(0x3001),
            Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
            Characteristic.Permissions.READABLE,
            CharacteristicValue(read=lambda _c: bytes([self.battery_percent, int(self.charging)])),
        )

    # -- protocol -------------------------------------------------------------------------------

    def services(self) -> Sequence[Service]:
        return [
            Service(dot_uuid(0x1000), [self._device_info, self._device_control, self._device_report]),
            Service(dot_uuid(0x2000), [self._control, *self._payloads.values()]),
            Service(dot_uuid(0x3000), [self._battery]),
        ]

    def advertising_data(self) -> bytes:
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.Type.FLAGS, bytes([0x06])),
                    (AdvertisingData.Type.COMPLETE_LOCAL_NAME, self.name.encode()),
                    (
                        AdvertisingData.Type.MANUFACTURER_SPECIFIC_DATA,
                        MOVELLA_COMPANY_ID.to_bytes(2, "little") + b"\x00\x00",
                    ),
                ]
            )
        )

    @property
    def data_characteristic(self) -> Characteristic:
        return self._payloads[0x2003]

    def is_subscribed(self) -> bool:
        """Measuring, and notifications on the medium payload are on."""
        return self.measuring and super().is_subscribed()

    def frames_per_notification(self) -> int:
        return 1  # one rate-quantities sample per notification

    def timestamp_us(self, sensor_time_s: float) -> int:
        """The unwrapped µs counter at ``sensor_time_s`` after power-on (wrap it mod 2**32)."""
        return self.clock_start_us + round(sensor_time_s * 1e6)

    def encode(self, sensor_times_s: Sequence[float]) -> bytes:
        (t,) = sensor_times_s
        row = self.recording.index_at(t, loop=self.loop)
        return encode_rate_quantities(self.timestamp_us(t), self.recording.acc_ms2[row], self.recording.gyr_dps[row])

    def on_disconnected(self, connection: Connection) -> None:
        self.measuring = False
        self._measurement_control = bytes([0x01, 0x00, RATE_QUANTITIES_MODE])

    # -- writes ---------------------------------------------------------------------------------

    def _read_device_control(self, _connection: Connection) -> bytes:
        value = bytearray(DEVICE_CONTROL_LENGTH)
        value[OUTPUT_RATE_OFFSET : OUTPUT_RATE_OFFSET + 2] = int(self.rate_hz).to_bytes(2, "little")
        value[FILTER_PROFILE_OFFSET] = self.filter_profile
        return bytes(value)

    def _write_device_control(self, _connection: Connection, value: bytes) -> None:
        data = bytes(value)
        self.commands.append(("device_control", data))
        if len(data) != DEVICE_CONTROL_LENGTH or not data[0] & VISIT_OUTPUT_RATE:
            return  # other fields (identify, power-off, tag, …) are not emulated
        rate = int.from_bytes(data[OUTPUT_RATE_OFFSET : OUTPUT_RATE_OFFSET + 2], "little")
        if self.measuring:
            logger.debug("%s: the output rate cannot change while measuring", self.name)
        elif rate not in ALLOWED_RATES_HZ:
            logger.debug("%s ignores output rate %d Hz", self.name, rate)
        else:
            self.rate_hz = float(rate)

    def _write_control(self, _connection: Connection, value: bytes) -> None:
        data = bytes(value)
        self.commands.append(("measurement_control", data))
        if len(data) != 3 or data[0] != 0x01:
            logger.debug("%s ignores measurement control %s", self.name, data.hex())
            return
        action, mode = data[1], data[2]
        if mode != RATE_QUANTITIES_MODE:
            logger.debug("%s: payload mode %d is not emulated", self.name, mode)
            return
        if action == 0x01 and not self.measuring:
            self.discard_pending()  # measuring starts afresh
        self.measuring = action == 0x01
        self._measurement_control = data

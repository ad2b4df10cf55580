"""What every sensor type declares, and what its decoder offers the BLE link.

A :class:`SensorDecoder` subclass is the one place a sensor type is described: its registry
name, what it advertises, the rates it can be configured to, the writes that configure and
start it, how its battery is read, and how its notifications decode. The link
(:mod:`hipsense.device.link`), the scan, the service's config validation and ``hipsense
calibrate`` all read it here, so adding a sensor means adding one decoder module.

The decoder does no I/O of its own: where a step needs the sensor's answer (a read-modify-write
of a setting, a battery read), it is written against :class:`Gatt`, which the link implements.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from hipsense.device.samples import ImuSamples
from hipsense.errors import DecodeError

__all__ = ["BATTERY_LEVEL_UUID", "Gatt", "GattWrite", "SensorDecoder", "as_bytes"]

BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
"""The Bluetooth SIG battery level characteristic (one byte, percent)."""


@dataclass(frozen=True, slots=True)
class GattWrite:
    """One write the link performs on the sensor, in order.

    Attributes
    ----------
    char_uuid
        Full 128-bit characteristic UUID, lower case.
    data
        The value to write.
    response
        Write with response (True) or without (False).
    pause_after_s
        How long (s) to wait before the next write; some sensors need time between steps.
    reply_uuid
        When set, the sensor answers this write on that characteristic (an indication); wait
        for it, and feed it to ``decode``, before the next write.
    """

    char_uuid: str
    data: bytes
    response: bool = True
    pause_after_s: float = 0.0
    reply_uuid: str | None = None


class Gatt(Protocol):
    """The connected sensor's GATT, as the link lends it to a decoder for set-up steps."""

    def has_characteristic(self, uuid: str) -> bool:
        """Whether the sensor offers the characteristic ``uuid``."""
        ...

    async def read(self, uuid: str) -> bytes:
        """Read the characteristic's value."""
        ...

    async def write(self, uuid: str, data: bytes, *, response: bool) -> None:
        """Write ``data`` to the characteristic."""
        ...


def as_bytes(payload: object) -> bytes:
    """Accept what bleak hands a notify callback (``bytearray``), or bytes / memoryview."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bytearray | memoryview):
        return bytes(payload)
    raise DecodeError(f"payload must be bytes-like, got {type(payload).__name__}")


class SensorDecoder(abc.ABC):
    """Turns one sensor's notifications into :class:`ImuSamples`.

    A decoder is pure in the sense that matters for replay: no I/O and no clock of its own;
    its output depends only on the sequence of ``(payload, received_at_s, char_uuid)`` it was
    fed. It does keep state between notifications (clock fit, previous timestamps, scale
    factors), so use one decoder per sensor and feed it every notification of every
    subscribed characteristic, in arrival order.

    ``decode`` either decodes the whole notification or raises :class:`DecodeError` and
    leaves the decoder's state as it was: no half-decoded sample ever comes out.
    """

    sensor_type: ClassVar[str]
    """Registry key, e.g. ``"witmotion"``."""
    service_uuid: ClassVar[str]
    """The primary GATT service that identifies the sensor."""
    data_uuid: ClassVar[str]
    """The characteristic that carries samples."""
    notify_uuids: ClassVar[tuple[str, ...]]
    """Characteristics to subscribe to, in this order, before :meth:`start_writes`."""
    name_prefixes: ClassVar[tuple[str, ...]]
    """Advertised-name prefixes that suggest this sensor when scanning."""
    display_name: ClassVar[str]
    """What a person calls it, e.g. ``"WitMotion WT901BLE"``."""
    rates_hz: ClassVar[tuple[int, ...]]
    """The rates (Hz) the configuration may ask for: ``cls(rate_hz=r)`` streams at ``r``."""
    default_rate_hz: ClassVar[int]
    """The rate used when the configuration names none (one of :attr:`rates_hz`)."""
    accelerometer_only: ClassVar[dict[str, Any] | None] = None
    """Constructor options that make the sensor stream its accelerometer alone (the service's
    ``gyroscope = false``; counting needs the accelerometer only); None: it always sends both."""
    streams_apart: ClassVar[bool] = False
    """True: acceleration and angular rate come in separate blocks, each timed on its own
    (Polar PMD, MetaMotion), to be joined by :class:`~hipsense.device.joining.AccGyroJoiner`;
    False: a block carries both (or the sensor has no gyroscope)."""
    full_scale: ClassVar[tuple[float, float] | None] = None
    """(acceleration m/s², angular rate rad/s) limits when the decoder's settings fix them,
    for the calibration's saturation check; None when they depend on options."""

    nominal_rate_hz: float

    @abc.abstractmethod
    def decode(
        self, payload: bytes | bytearray, received_at_s: float, *, char_uuid: str | None = None
    ) -> ImuSamples:
        """Decode one notification.

        Parameters
        ----------
        payload
            The characteristic value exactly as received (no ATT header).
        received_at_s
            Host receive time (s) from a monotonic clock; ``t_s`` of the result is in this clock.
        char_uuid
            The characteristic it came from; None means :attr:`data_uuid`.

        Returns
        -------
        ImuSamples
            Possibly empty (control responses, register replies), possibly carrying gaps.

        Raises
        ------
        DecodeError
            The bytes do not decode; nothing was used and the decoder state is unchanged.
        """

    def start_writes(self) -> tuple[GattWrite, ...]:
        """Writes that configure and start streaming, after subscribing to :attr:`notify_uuids`."""
        return ()

    def stop_writes(self) -> tuple[GattWrite, ...]:
        """Writes that stop streaming, before unsubscribing."""
        return ()

    async def configure(self, gatt: Gatt) -> None:
        """Settings a fixed :class:`GattWrite` cannot express, before subscribing.

        Called once per connection, before :attr:`notify_uuids` are subscribed and
        :meth:`start_writes` are sent. Most sensors need nothing here.
        """

    async def read_battery(self, gatt: Gatt) -> int | None:
        """The battery level (percent) right after connecting, or None.

        The default reads the Bluetooth SIG battery level when the sensor offers it. A sensor
        that answers in its notification stream instead asks here and returns None; the answer
        then comes out of :meth:`take_battery_percent`.
        """
        if not gatt.has_characteristic(BATTERY_LEVEL_UUID):
            return None
        value = await gatt.read(BATTERY_LEVEL_UUID)
        return int(value[0]) if value else None

    def take_battery_percent(self) -> int | None:
        """A battery level that arrived in the notifications decoded since the last call."""
        return None

    @abc.abstractmethod
    def options(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``type(self)(**options())`` decodes alike."""

    def _check_char(self, char_uuid: str | None, accepted: tuple[str, ...]) -> str:
        uuid = self.data_uuid if char_uuid is None else char_uuid.lower()
        if uuid not in accepted:
            raise DecodeError(f"{self.sensor_type}: no notifications expected from {uuid}")
        return uuid

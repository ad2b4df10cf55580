"""What every sensor decoder offers the BLE link: GATT facts, command writes, and ``decode``."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

from hipsense.device.samples import ImuSamples
from hipsense.errors import DecodeError

__all__ = ["GattWrite", "SensorDecoder", "as_bytes"]


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

    @abc.abstractmethod
    def options(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``type(self)(**options())`` decodes alike."""

    def _check_char(self, char_uuid: str | None, accepted: tuple[str, ...]) -> str:
        uuid = self.data_uuid if char_uuid is None else char_uuid.lower()
        if uuid not in accepted:
            raise DecodeError(f"{self.sensor_type}: no notifications expected from {uuid}")
        return uuid

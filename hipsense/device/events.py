"""What a sensor link emits: raw notifications, link events and counters.

Kept apart from the link itself (:mod:`hipsense.device.ble`, which imports bleak) so that the
service and the calibration can read a link's stream without importing a Bluetooth stack.
"""

from __future__ import annotations

import dataclasses
import enum

from hipsense.device.samples import Gap
from hipsense.errors import DeviceError

__all__ = ["LinkEvent", "LinkEventKind", "LinkStats", "Notification"]


@dataclasses.dataclass(frozen=True, slots=True)
class Notification:
    """One notification exactly as received: the bytes and the host receive time."""

    received_at_s: float
    payload: bytes
    char_uuid: str


class LinkEventKind(enum.StrEnum):
    """What happened to the link."""

    CONNECTED = "connected"
    """Connected, subscribed and configured: data should flow now."""
    DISCONNECTED = "disconnected"
    """The link dropped (the sensor left, or went silent: see ``detail``)."""
    GAP = "gap"
    """Data flows again after a loss or a queue overflow; ``gap`` spans the missing stretch."""
    BATTERY = "battery"
    """A battery reading (``battery_percent``)."""
    ATTEMPT_FAILED = "attempt_failed"
    """A scan or connection attempt failed (``error``); the link will retry after ``retry_in_s``."""


@dataclasses.dataclass(frozen=True, slots=True)
class LinkEvent:
    """An event of the link, in stream order with the notifications."""

    kind: LinkEventKind
    at_s: float
    detail: str = ""
    gap: Gap | None = None
    battery_percent: int | None = None
    error: DeviceError | None = None
    retry_in_s: float | None = None


@dataclasses.dataclass(slots=True)
class LinkStats:
    """Counters for monitoring, diagnostics and tests."""

    notifications: int = 0
    """Notifications received and queued."""
    queue_drops: int = 0
    """Notifications dropped because the consumer fell behind (queue full)."""
    undecodable: int = 0
    """Notifications that did not decode (garbage), counted and dropped by :meth:`SensorLink.decoded`."""
    connects: int = 0
    disconnects: int = 0
    silences: int = 0
    """Losses declared by the silence watchdog."""
    failed_attempts: int = 0
    reconnect_s: list[float] = dataclasses.field(default_factory=list)
    """For each reconnection: seconds from the loss to being connected and configured again."""

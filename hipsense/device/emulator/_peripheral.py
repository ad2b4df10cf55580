"""What every emulated sensor shares: a Bumble device, advertising, pacing, and fault controls."""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import enum
import logging
from collections import deque
from collections.abc import Sequence

from bumble.device import Connection, Device
from bumble.gatt import Characteristic, Service
from bumble.link import LocalLink

from hipsense.device.bumble_backend._radio import VirtualRadio, create_device

logger = logging.getLogger(__name__)

__all__ = ["EmulatedPeripheral", "Fate", "SampleFate"]

# HCI reason a real sensor's drop shows up as: the central stopped hearing it.
HCI_CONNECTION_TIMEOUT = 0x08


class Fate(enum.Enum):
    """What became of one sample the emulated sensor produced."""

    SENT = "sent"
    """Handed to the stack in a notification while a client was subscribed."""
    NO_SUBSCRIBER = "no_subscriber"
    """Produced while disconnected or not subscribed: lost, as on a real sensor."""
    SILENT = "silent"
    """Produced while the sensor was told to go silent: lost."""


@dataclasses.dataclass(frozen=True, slots=True)
class SampleFate:
    """Ground truth for tests: sample ``seq`` (0, 1, 2, … in production order), taken at
    ``sensor_time_s`` on the sensor's clock, and its fate."""

    seq: int
    sensor_time_s: float
    fate: Fate


class EmulatedPeripheral(abc.ABC):
    """A sensor on a virtual radio: advertises, serves GATT, streams a recording, misbehaves.

    Subclasses describe one sensor's protocol (services, advertising, encoding, commands). This
    class paces the stream: samples are produced on the sensor's own clock at ``rate_hz ×
    speed`` whether or not anyone listens, like a real sensor on a moving leg, packed
    ``frames_per_notification`` to a notification and notified to subscribers. What happened to
    every sample is logged in :attr:`fates` so tests can check exactly-once delivery.

    Parameters
    ----------
    radio
        The :class:`VirtualRadio` (or a bare :class:`~bumble.link.LocalLink`) to join.
    address
        Random static address, e.g. ``"F1:00:00:00:00:01"`` (top two bits set).
    speed
        Replay speed: 1.0 is real time, 20.0 is twenty times faster.
    """

    #: Default output rate before a client configures one (Hz).
    default_rate_hz: float = 10.0

    def __init__(self, radio: VirtualRadio | LocalLink, *, name: str, address: str, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        link = radio.link if isinstance(radio, VirtualRadio) else radio
        self.name = name
        self.address = address
        self.speed = float(speed)
        self.rate_hz = float(self.default_rate_hz)
        self.device: Device = create_device(link, name, address)
        self.fates: list[SampleFate] = []
        self.garbage_sent = 0
        self.notifications_sent = 0
        self.connections_accepted = 0
        self._silent = False
        self._silent_until_reconnect = False
        self._garbage: deque[bytes] = deque()
        self._task: asyncio.Task[None] | None = None
        self._pending: list[tuple[int, float]] = []
        self._advertising = False
        # Deciding a sample's fate and handing its notification to the stack is one step:
        # force_disconnect must not slip in between (Bumble sends from a task of its own).
        self._send_lock = asyncio.Lock()
        self.device.on(self.device.EVENT_CONNECTION, self._on_connection)

    # -- protocol hooks -------------------------------------------------------------------------

    @abc.abstractmethod
    def services(self) -> Sequence[Service]:
        """The GATT services to serve."""

    @abc.abstractmethod
    def advertising_data(self) -> bytes:
        """The advertising payload (name, service UUIDs, …)."""

    @property
    @abc.abstractmethod
    def data_characteristic(self) -> Characteristic:
        """The characteristic samples are notified on."""

    @abc.abstractmethod
    def frames_per_notification(self) -> int:
        """How many samples to pack into the next notification."""

    def encode(self, sensor_times_s: Sequence[float]) -> bytes:
        """One notification payload holding the samples taken at ``sensor_times_s``.

        Sensors that send one notification per batch on :attr:`data_characteristic` override
        this; sensors that send several (Polar: an ACC frame and a GYRO frame) override
        :meth:`notifications` instead.
        """
        raise NotImplementedError(f"{type(self).__name__} must override encode or notifications")

    def notifications(self, sensor_times_s: Sequence[float]) -> list[tuple[Characteristic, bytes]]:
        """The notifications (characteristic, payload) that carry one batch of samples."""
        return [(self.data_characteristic, self.encode(sensor_times_s))]

    def on_disconnected(self, connection: Connection) -> None:
        """Called when a link ends; sensors that forget their stream state on a drop reset it."""

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Power on, advertise and start the sensor clock."""
        self.device.add_services(list(self.services()))
        await self.device.power_on()
        await self.start_advertising()
        self._task = asyncio.create_task(self._run(), name=f"emulated {self.name}")

    async def stop(self) -> None:
        """Stop streaming, drop any link and power off."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.force_disconnect(reason=0x15)  # remote device terminated: power off
        await self.stop_advertising()
        await self.device.power_off()

    async def __aenter__(self) -> EmulatedPeripheral:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start_advertising(self) -> None:
        """Advertise (connectable), restarting by itself after every disconnection."""
        await self.device.start_advertising(
            advertising_data=self.advertising_data(),
            auto_restart=True,
            advertising_interval_min=20.0,
            advertising_interval_max=20.0,
        )
        self._advertising = True

    async def stop_advertising(self) -> None:
        """Stop advertising: the sensor is switched off or out of range for scanners."""
        if self._advertising:
            await self.device.stop_advertising()
            self._advertising = False

    # -- controls for tests ---------------------------------------------------------------------

    @property
    def connections(self) -> list[Connection]:
        return list(self.device.connections.values())

    @property
    def is_connected(self) -> bool:
        return bool(self.device.connections)

    def is_subscribed(self) -> bool:
        """Whether some connected client has notifications enabled on the data characteristic."""
        handle = self.data_characteristic.handle
        for cccds in self.device.gatt_server.subscribers.values():
            cccd = cccds.get(handle)
            if cccd and cccd[0] & 0x01:
                return True
        return False

    async def force_disconnect(self, reason: int = HCI_CONNECTION_TIMEOUT, *, drain_s: float = 0.02) -> int:
        """Drop every link, as a sensor walking out of range does. Returns how many were dropped.

        Sending stops at once (samples produced from now on are lost, fate ``NO_SUBSCRIBER``);
        the link itself drops ``drain_s`` later, so that notifications already handed to the
        stack arrive and :attr:`fates` stays exact. With ``drain_s=0`` those in-flight
        notifications may be lost with the link, as on a real radio.
        """
        async with self._send_lock:
            connections = self.connections
            # Forget subscribers first, so that no sample produced from now on counts as sent.
            self.device.gatt_server.subscribers.clear()
        if connections and drain_s > 0:
            await asyncio.sleep(drain_s)
        for connection in connections:
            try:
                await connection.disconnect(reason)
            except Exception as exc:  # noqa: BLE001 - already gone is fine for a test control
                logger.debug("force_disconnect: %s", exc)
        return len(connections)

    def go_silent(self, *, until_reconnect: bool = True) -> None:
        """Stay connected but send nothing (firmware hang); samples produced meanwhile are lost."""
        self._silent = True
        self._silent_until_reconnect = until_reconnect

    def resume(self) -> None:
        """End a silence started with :meth:`go_silent`."""
        self._silent = False

    def send_garbage(self, payload: bytes) -> None:
        """Queue one notification with ``payload`` verbatim, sent before the next data."""
        self._garbage.append(bytes(payload))

    def discard_pending(self) -> None:
        """Samples taken but not yet packed into a notification are lost (fate ``NO_SUBSCRIBER``).

        Sensors that only sample while a measurement runs call this when one starts, so that
        the first notification holds samples taken after the start, as on the real unit, and
        not ones left over from before a drop.
        """
        pending, self._pending = self._pending, []
        self.fates.extend(SampleFate(seq, t, Fate.NO_SUBSCRIBER) for seq, t in pending)

    # -- ground truth ---------------------------------------------------------------------------

    def seqs(self, fate: Fate) -> list[int]:
        """Sequence numbers of samples that met ``fate``."""
        return [f.seq for f in self.fates if f.fate is fate]

    def lost_runs(self) -> list[tuple[int, int]]:
        """Runs ``(first_seq, last_seq)`` of consecutive samples that were not sent."""
        runs: list[tuple[int, int]] = []
        start: int | None = None
        previous = -1
        for f in self.fates:
            if f.fate is Fate.SENT:
                if start is not None:
                    runs.append((start, previous))
                    start = None
            elif start is None:
                start = f.seq
            previous = f.seq
        if start is not None:
            runs.append((start, previous))
        return runs

    # -- pacing ---------------------------------------------------------------------------------

    def _on_connection(self, connection: Connection) -> None:
        self.connections_accepted += 1
        connection.on(connection.EVENT_DISCONNECTION, lambda _reason: self.on_disconnected(connection))
        if self._silent and self._silent_until_reconnect:
            self._silent = False

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        sensor_time_s = 0.0  # the sensor's clock, advancing at `speed` × wall time
        next_seq = 0
        next_due_s = 0.0
        while True:
            now = loop.time()
            sensor_time_s += (now - last) * self.speed
            last = now
            while self._garbage and self.is_subscribed():
                async with self._send_lock:
                    await self.device.notify_subscribers(self.data_characteristic, self._garbage.popleft())
                    self.garbage_sent += 1
            if self.rate_hz > 0:
                while next_due_s <= sensor_time_s:
                    self._pending.append((next_seq, next_due_s))
                    next_seq += 1
                    next_due_s += 1.0 / self.rate_hz
                await self._flush(complete_only=True)
            else:
                next_due_s = sensor_time_s
            per_notification = max(1, self.frames_per_notification())
            if self.rate_hz > 0:
                # Wake when the sample that completes the next notification is due, as a sensor
                # sends right after its last sample: a fixed sleep of one notification's period
                # drifts against the sample grid, and each notification then waited for the
                # next wake-up, 0 to 40 ms at 100 Hz in 4s, a sawtooth on every latency measured
                # through the emulator (benchmarks/bench_service.py: half its median latency).
                missing = max(1, per_notification - len(self._pending))
                wait_s = (next_due_s + (missing - 1) / self.rate_hz - sensor_time_s) / self.speed
            else:
                wait_s = per_notification / self.speed
            await asyncio.sleep(min(max(wait_s, 0.001), 0.05))

    async def _flush(self, *, complete_only: bool) -> None:
        per_notification = max(1, self.frames_per_notification())
        while len(self._pending) >= per_notification or (self._pending and not complete_only):
            batch, self._pending = self._pending[:per_notification], self._pending[per_notification:]
            async with self._send_lock:
                if self._silent:
                    fate = Fate.SILENT
                elif self.is_subscribed():
                    fate = Fate.SENT
                else:
                    fate = Fate.NO_SUBSCRIBER
                self.fates.extend(SampleFate(seq, t, fate) for seq, t in batch)
                if fate is Fate.SENT:
                    for characteristic, payload in self.notifications([t for _, t in batch]):
                        self.notifications_sent += 1
                        await self.device.notify_subscribers(characteristic, payload)

"""The BLE link to a sensor, and the scan that finds one: bleak's client and scanner.

:class:`SensorLink` finds a sensor, connects, subscribes, sends the decoder's start commands and
streams notifications for the whole session, coming back by itself when the link drops::

    decoder = make_decoder(sensor_type)      # from the registry: hipsense.device.decoders
    async with SensorLink(decoder, address="F1:57:00:00:00:01") as link:
        async for item in link:                 # raw: for recordings
            ...                                 # Notification | LinkEvent
    # or, decoded:  async for item in link.decoded():  ImuSamples | LinkEvent

What it guarantees:

* The notification callback only stamps the receive time and enqueues the bytes
  (``put_nowait`` on a bounded count); when the consumer falls behind, notifications are
  counted as dropped and a gap is reported, never an unbounded backlog on a Pi Zero.
* Unsolicited disconnects and silence (connected, nothing received for ``silence_timeout_s``)
  end the connection; the link rescans for the same address and reconnects after a capped,
  jittered exponential backoff (:mod:`hipsense.device.reconnect`). Each loss becomes a
  ``DISCONNECTED`` event and, when data flows again, one ``GAP`` event whose
  :class:`~hipsense.device.samples.Gap` spans from the last notification before the loss to
  the first one after it.
* Every bleak, BlueZ and D-Bus exception is translated once
  (:func:`hipsense.device.ble_errors.translate_error`) into :mod:`hipsense.errors` types whose
  message says what a person can do about it.
* Nothing here knows a sensor type: what to look for, what to subscribe to, how to configure
  the rate and read the battery all come from the decoder (:mod:`hipsense.device.decoders`).
  What the link emits (:mod:`hipsense.device.events`) can be read without importing bleak.
* Commands that the sensor answers (``GattWrite.reply_uuid``: Polar's PMD control point) are
  sent one at a time: subscribe to the reply characteristic first, write, wait (bounded by
  ``reply_timeout_s``) for the indication that answers it (:mod:`hipsense.device.replies`),
  and stop with advice if the sensor refused. The answer also travels the ordinary queue, so
  the decoder sees it (with its ``char_uuid``) in arrival order, before the data it governs
  (Polar's start reply carries the FACTOR the data frames are scaled by), and recordings keep
  it.
* Two sensors (left and right thigh) share one adapter: give their links one ``adapter_lock``
  (:class:`hipsense.device.pair.SensorPair` does) so that connection attempts never overlap,
  as BlueZ creates one LE connection at a time; scanning and streaming run side by side.

bleak's ``backend=`` argument is exposed as ``scanner_backend`` / ``client_backend``: on the Pi
they stay ``None`` (BlueZ); tests and demos pass the Bumble backend of a
:class:`hipsense.device.bumble_backend.VirtualRadio`.

Raspberry Pi / BlueZ pitfalls this module handles or documents (sensors.md §7):

* notifications use ``StartNotify`` (``bluez={"use_start_notify": True}``), not
  ``AcquireNotify``, which drops empty notifications and ones sent before the CCCD write reply;
* every reconnect rescans first, so BlueZ knows the device again (a stale object is the usual
  cause of "device not found" after a drop) and a sensor that reboots with the same address is
  found;
* "Not connected", "le-connection-abort-by-local" and "Software caused connection abort" on a
  Pi are usually the shared Wi-Fi/Bluetooth chip: the advice says so (``rfkill block wlan``, 5 GHz
  Wi-Fi or a USB dongle);
* one event loop, no blocking calls: all waiting is ``asyncio``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError

from hipsense.device.ble_errors import ADVICE_RADIO, ADVICE_SENSOR_MISSING, translate_error
from hipsense.device.decoders import DECODERS, GattWrite, SensorDecoder
from hipsense.device.events import LinkEvent, LinkEventKind, LinkStats, Notification
from hipsense.device.reconnect import Backoff, BackoffPolicy, SilenceWatchdog
from hipsense.device.replies import is_reply_to, refusal
from hipsense.device.samples import Gap, GapReason, ImuSamples
from hipsense.errors import DecodeError, DeviceError, DeviceNotFoundError, LinkLostError

logger = logging.getLogger(__name__)

__all__ = ["FoundSensor", "SensorLink", "scan_sensors"]



@dataclasses.dataclass(frozen=True, slots=True)
class FoundSensor:
    """A supported sensor seen while scanning."""

    name: str | None
    address: str
    sensor_type: str
    rssi: int
    device: BLEDevice = dataclasses.field(repr=False, compare=False)


def _subscriptions(notify_uuids: Sequence[str], writes: Sequence[GattWrite]) -> list[str]:
    """The decoder's notify characteristics, then any reply characteristic they lack.

    Replies arrive as indications, which a client only receives once subscribed: subscribing
    to every reply characteristic before the first write is what lets the link wait for them.
    """
    uuids = [u.lower() for u in notify_uuids]
    for write in writes:
        if write.reply_uuid is not None and write.reply_uuid.lower() not in uuids:
            uuids.append(write.reply_uuid.lower())
    return uuids


def _sensor_type_of(
    adv: AdvertisementData, name: str | None, decoders: Iterable[type[SensorDecoder]]
) -> str | None:
    uuids = {u.lower() for u in adv.service_uuids}
    local = adv.local_name or name or ""
    for decoder in decoders:
        if decoder.service_uuid in uuids:
            return decoder.sensor_type
    for decoder in decoders:
        if any(local.startswith(prefix) for prefix in decoder.name_prefixes):
            return decoder.sensor_type
    return None


async def scan_sensors(
    timeout_s: float = 5.0,
    *,
    decoders: Iterable[type[SensorDecoder]] | None = None,
    backend: type[BaseBleakScanner] | None = None,
) -> list[FoundSensor]:
    """Scan for ``timeout_s`` and list the supported sensors seen, strongest signal first.

    A device counts when it advertises a known sensor service or a known name prefix.
    Raises a :class:`~hipsense.errors.DeviceError` (with advice) when scanning is impossible.
    """
    classes = list(DECODERS.values() if decoders is None else decoders)
    try:
        seen = await BleakScanner.discover(timeout=timeout_s, return_adv=True, backend=backend)
    except Exception as exc:
        raise translate_error(exc, action="scanning for sensors") from exc
    found = []
    for device, adv in seen.values():
        sensor_type = _sensor_type_of(adv, device.name, classes)
        if sensor_type is not None:
            found.append(FoundSensor(adv.local_name or device.name, device.address, sensor_type, adv.rssi, device))
    return sorted(found, key=lambda f: -f.rssi)


# ------------------------------------------------------------------------------------------------
# The link


class _BleakGatt:
    """A connected :class:`BleakClient` as the :class:`~hipsense.device.decoders.Gatt` a decoder
    uses for its set-up steps (rate settings, battery reads)."""

    def __init__(self, client: BleakClient) -> None:
        self._client = client

    def has_characteristic(self, uuid: str) -> bool:
        return self._client.services.get_characteristic(uuid) is not None

    async def read(self, uuid: str) -> bytes:
        return bytes(await self._client.read_gatt_char(uuid))

    async def write(self, uuid: str, data: bytes, *, response: bool) -> None:
        await self._client.write_gatt_char(uuid, data, response=response)


class _Stop(enum.Enum):
    STOP = "stop"


class _LinkLost(Exception):
    """Internal: the connection ended (``silent`` says whether the watchdog decided)."""

    def __init__(self, silent: bool) -> None:
        super().__init__("silent" if silent else "disconnected")
        self.silent = silent


class SensorLink:
    """A self-healing link to one sensor, as an async context manager and async iterator.

    Parameters
    ----------
    decoder
        The sensor's decoder (from :func:`hipsense.device.decoders.make_decoder`): it says which
        service to look for, what to subscribe to and which commands start streaming.
        :meth:`decoded` feeds it; the raw iterator leaves it untouched.
    address
        The sensor's address. When None, the first device whose advertisement matches the
        decoder (service UUID, or ``name`` / a known name prefix) is taken, and its address is
        kept for every reconnection.
    name
        Only accept a device advertising exactly this name (when ``address`` is None).
    silence_timeout_s
        Connected but no notification for this long → the link counts as lost and reconnects.
    backoff
        Reconnect delays; attempt 0 follows a loss, the count grows with each failed attempt
        and resets once connected.
    max_failed_attempts
        Give up after this many consecutive failed attempts: iteration then raises the last
        error. None retries forever (a patient's Pi has no keyboard).
    queue_size
        Most notifications waiting for the consumer; beyond that they are dropped and counted.
    scan_timeout_s, connect_timeout_s
        Bounds of one scan and of one connection (incl. service discovery).
    reply_timeout_s
        How long to wait for the sensor's answer to a command that has one (Polar).
    adapter_lock
        Shared by the links of one adapter so their connection attempts take turns.
    pause_scale
        Multiplies the decoder's pauses between start writes (1.0 on hardware; a test replaying
        the emulated sensor faster than real time may shorten them).
    scanner_backend, client_backend
        bleak ``backend=`` classes; None = the platform's (BlueZ on the Pi).
    clock
        Monotonic seconds; receive times and event times use it.
    rng
        Randomness for the backoff jitter.
    """

    def __init__(
        self,
        decoder: SensorDecoder,
        *,
        address: str | None = None,
        name: str | None = None,
        silence_timeout_s: float = 5.0,
        backoff: BackoffPolicy | None = None,
        max_failed_attempts: int | None = None,
        queue_size: int = 4096,
        scan_timeout_s: float = 10.0,
        connect_timeout_s: float = 20.0,
        pause_scale: float = 1.0,
        reply_timeout_s: float = 5.0,
        adapter_lock: asyncio.Lock | None = None,
        scanner_backend: type[BaseBleakScanner] | None = None,
        client_backend: type[BaseBleakClient] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.decoder = decoder
        self.address = address
        self.name = name
        self.silence_timeout_s = silence_timeout_s
        self.backoff_policy = backoff or BackoffPolicy()
        self.max_failed_attempts = max_failed_attempts
        self.queue_size = queue_size
        self.scan_timeout_s = scan_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.pause_scale = pause_scale
        self.reply_timeout_s = reply_timeout_s
        self.adapter_lock = adapter_lock
        self.stats = LinkStats()
        self.mtu: int | None = None
        self._scanner_backend = scanner_backend
        self._client_backend = client_backend
        self._clock = clock
        self._rng = rng or random.Random()
        self._queue: asyncio.Queue[Notification | LinkEvent | _Stop | DeviceError] = asyncio.Queue()
        self._queued = 0
        self._overflow_since: float | None = None
        self._last_rx_s: float | None = None
        self._watchdog = SilenceWatchdog(silence_timeout_s)
        self._task: asyncio.Task[None] | None = None
        self._client: BleakClient | None = None
        self._lost = asyncio.Event()
        self._connected = False
        # consumer-side state
        self._gap_start_s: float | None = None
        self._last_yielded_rx_s: float | None = None
        self._finished = False
        # Characteristic → the inbox of a command waiting for its answer there (see _write_all).
        self._reply_inboxes: dict[str, asyncio.Queue[bytes]] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> SensorLink:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def start(self) -> None:
        """Start finding, connecting and streaming in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=f"sensor link {self.address or self.name or ''}")

    async def close(self) -> None:
        """Stop streaming (sending the decoder's stop commands if connected) and disconnect."""
        task, self._task = self._task, None
        client, self._client = self._client, None  # the supervisor must not drop it ungracefully
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._client = client
        await self._drop_client(graceful=True)
        self._queue.put_nowait(_Stop.STOP)

    @property
    def is_connected(self) -> bool:
        """Connected, subscribed and configured."""
        return self._connected

    # -- raw stream -----------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Notification | LinkEvent]:
        return self._raw()

    async def _raw(self) -> AsyncIterator[Notification | LinkEvent]:
        while not self._finished:
            item = await self._queue.get()
            if item is _Stop.STOP:
                self._finished = True
                return
            if isinstance(item, DeviceError):
                self._finished = True
                raise item
            if isinstance(item, Notification):
                self._queued -= 1
                if self._gap_start_s is not None:
                    gap = Gap(self._gap_start_s, item.received_at_s, None, GapReason.RECEIVE_TIME_JUMP)
                    self._gap_start_s = None
                    yield LinkEvent(LinkEventKind.GAP, item.received_at_s, "data flows again", gap=gap)
                self._last_yielded_rx_s = item.received_at_s
                yield item
            elif isinstance(item, LinkEvent):
                if item.kind is LinkEventKind.DISCONNECTED or (
                    item.kind is LinkEventKind.GAP and item.gap is None
                ):
                    # The gap opens at the last notification handed out before the loss.
                    if self._gap_start_s is None:
                        self._gap_start_s = (
                            self._last_yielded_rx_s if self._last_yielded_rx_s is not None else item.at_s
                        )
                    if item.kind is LinkEventKind.GAP:
                        continue  # overflow marker: reported with the next notification
                yield item

    async def decoded(self) -> AsyncIterator[ImuSamples | LinkEvent]:
        """The stream decoded by :attr:`decoder`: sample blocks and link events.

        Notifications that do not decode are counted in :attr:`LinkStats.undecodable` and
        dropped; the session goes on. A link gap is reported once, in the sample stream: as an
        empty :class:`ImuSamples` carrying the :class:`Gap` just before the first block after
        it, unless that block already carries the decoder's own gap. ``GAP`` events are
        therefore not repeated here. A battery level the decoder finds in the stream (WitMotion
        answers a register read there) becomes a ``BATTERY`` event.
        """
        pending_gap: Gap | None = None
        async for item in self:
            if isinstance(item, LinkEvent):
                if item.kind is LinkEventKind.GAP and item.gap is not None:
                    pending_gap = item.gap  # reported in the sample stream, once
                else:
                    yield item
                continue
            try:
                block = self.decoder.decode(item.payload, item.received_at_s, char_uuid=item.char_uuid)
            except DecodeError as exc:
                self.stats.undecodable += 1
                logger.debug("dropped an undecodable notification: %s", exc)
                continue
            battery = self.decoder.take_battery_percent()
            if battery is not None:
                yield LinkEvent(LinkEventKind.BATTERY, item.received_at_s, "in the stream", battery_percent=battery)
            if block.n == 0 and not block.gaps:
                continue
            if pending_gap is not None and block.n > 0:
                if not block.gaps:
                    yield ImuSamples.empty(gaps=(pending_gap,))
                pending_gap = None
            yield block

    # -- the notification callback: stamp, count, enqueue; nothing else --------------------------

    def _make_callback(self, char_uuid: str) -> Callable[[Any, bytearray], None]:
        def on_notify(_characteristic: Any, data: bytearray) -> None:
            now = self._clock()
            self._watchdog.feed(now)
            inbox = self._reply_inboxes.get(char_uuid)
            if inbox is not None:  # a command waits for its answer: hand it a copy, even on overflow
                inbox.put_nowait(bytes(data))
            if self._queued >= self.queue_size:
                self.stats.queue_drops += 1
                if self._overflow_since is None:
                    self._overflow_since = now
                return
            if self._overflow_since is not None:
                self._queue.put_nowait(LinkEvent(LinkEventKind.GAP, self._overflow_since, "consumer fell behind"))
                self._overflow_since = None
            self._queued += 1
            self.stats.notifications += 1
            self._queue.put_nowait(Notification(now, bytes(data), char_uuid))

        return on_notify

    def _emit(self, event: LinkEvent) -> None:
        self._queue.put_nowait(event)

    # -- supervisor -----------------------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff = Backoff(self.backoff_policy)
        failures = 0
        lost_at_s: float | None = None
        while True:
            try:
                await self._connect_once(lost_at_s)
                backoff.reset()
                failures = 0
                await self._stream_until_lost()
            except _LinkLost as lost:
                lost_at_s = self._clock()
                self.stats.disconnects += 1
                self.stats.silences += int(lost.silent)
                detail = f"no data for {self.silence_timeout_s:g} s" if lost.silent else "link dropped"
                self._emit(LinkEvent(LinkEventKind.DISCONNECTED, lost_at_s, detail))
                delay = backoff.next_delay_s(self._rng.random())
            except DeviceError as error:
                failures += 1
                self.stats.failed_attempts += 1
                delay = backoff.next_delay_s(self._rng.random())
                if self.max_failed_attempts is not None and failures >= self.max_failed_attempts:
                    self._queue.put_nowait(error)
                    return
                self._emit(
                    LinkEvent(LinkEventKind.ATTEMPT_FAILED, self._clock(), str(error), error=error, retry_in_s=delay)
                )
                logger.info("sensor link: %s; retrying in %.2f s", error, delay)
            finally:
                await self._drop_client(graceful=False)
            await asyncio.sleep(delay)

    async def _find(self) -> BLEDevice:
        def matches(device: BLEDevice, adv: AdvertisementData) -> bool:
            if self.address is not None:
                return device.address.upper() == self.address.upper()
            local = adv.local_name or device.name
            if self.name is not None:
                return local == self.name
            return _sensor_type_of(adv, device.name, (type(self.decoder),)) is not None

        what = self.address or self.name or f"a {self.decoder.sensor_type} sensor"
        try:
            device = await BleakScanner.find_device_by_filter(
                matches, timeout=self.scan_timeout_s, backend=self._scanner_backend
            )
        except Exception as exc:
            raise translate_error(exc, action=f"scanning for {what}") from exc
        if device is None:
            raise DeviceNotFoundError(
                f"scanning for {what} found nothing in {self.scan_timeout_s:g} s. {ADVICE_SENSOR_MISSING}",
                address=self.address,
            )
        return device

    async def _connect_once(self, lost_at_s: float | None) -> None:
        device = await self._find()
        self._lost = asyncio.Event()
        lost = self._lost
        client = BleakClient(
            device,
            disconnected_callback=lambda _client: lost.set(),
            timeout=self.connect_timeout_s,
            backend=self._client_backend,
        )
        self._client = client
        action = f"connecting to {device.name or 'the sensor'}"
        start_writes = self.decoder.start_writes()
        try:
            async with self.adapter_lock or contextlib.nullcontext():
                await client.connect()
            self.address = device.address
            action = f"starting the stream of {device.name or device.address}"
            gatt = _BleakGatt(client)
            await self.decoder.configure(gatt)
            start_writes = self.decoder.start_writes()  # configure may learn what the unit offers
            for uuid in _subscriptions(self.decoder.notify_uuids, start_writes):
                await client.start_notify(uuid, self._make_callback(uuid), bluez={"use_start_notify": True})
            await self._write_all(client, start_writes)
            battery = await self.decoder.read_battery(gatt)
        except Exception as exc:
            if lost.is_set():
                raise _LinkLost(silent=False) from exc
            raise translate_error(exc, action=action, address=device.address) from exc
        self.mtu = client.mtu_size
        self._connected = True
        now = self._clock()
        self._watchdog.arm(now)
        self.stats.connects += 1
        if lost_at_s is not None:
            self.stats.reconnect_s.append(now - lost_at_s)
        self._emit(LinkEvent(LinkEventKind.CONNECTED, now, f"{device.name or ''} {device.address}".strip()))
        if battery is not None:
            self._emit(LinkEvent(LinkEventKind.BATTERY, now, "read on connecting", battery_percent=battery))

    async def _write_all(self, client: BleakClient, writes: Sequence[GattWrite]) -> None:
        for write in writes:
            if write.reply_uuid is None:
                await client.write_gatt_char(write.char_uuid, write.data, response=write.response)
            else:
                answer = await self._write_and_wait(client, write)
                problem = refusal(write, answer)
                if problem is not None:
                    raise DeviceError(f"{problem}.")
            if write.pause_after_s > 0 and self.pause_scale > 0:
                await asyncio.sleep(write.pause_after_s * self.pause_scale)

    async def _write_and_wait(self, client: BleakClient, write: GattWrite) -> bytes:
        """Write, then wait for the indication on ``write.reply_uuid`` that answers it.

        The inbox opens before the write so an answer that overtakes the write response is not
        missed; a dropped link ends the wait at once instead of after the timeout.
        """
        assert write.reply_uuid is not None
        reply_uuid = write.reply_uuid.lower()  # as subscribed (see _subscriptions)
        inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._reply_inboxes[reply_uuid] = inbox
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await client.write_gatt_char(write.char_uuid, write.data, response=write.response)
            async with asyncio.timeout(self.reply_timeout_s):
                while True:
                    answer = asyncio.ensure_future(inbox.get())
                    await asyncio.wait([answer, lost], return_when=asyncio.FIRST_COMPLETED)
                    if not answer.done():
                        answer.cancel()
                        raise BleakError("Not connected: the link dropped while waiting for a reply")
                    if is_reply_to(write, answer.result()):
                        return answer.result()
        except TimeoutError:
            raise LinkLostError(
                f"the sensor did not answer command {write.data.hex(' ')} within "
                f"{self.reply_timeout_s:g} s. {ADVICE_RADIO}"
            ) from None
        finally:
            lost.cancel()
            if self._reply_inboxes.get(reply_uuid) is inbox:
                del self._reply_inboxes[reply_uuid]

    async def _stream_until_lost(self) -> None:
        lost = self._lost
        while True:
            remaining = self._watchdog.remaining_s(self._clock())
            if remaining > 0:
                try:
                    async with asyncio.timeout(remaining):
                        await lost.wait()
                except TimeoutError:
                    pass
            if lost.is_set():
                raise _LinkLost(silent=False)
            if self._watchdog.is_silent(self._clock()):
                raise _LinkLost(silent=True)

    async def _drop_client(self, *, graceful: bool) -> None:
        client, self._client = self._client, None
        self._connected = False
        if client is None or not client.is_connected:
            return
        if graceful:
            # A stop command the sensor refuses or leaves unanswered must not keep the link open.
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    await self._write_all(client, self.decoder.stop_writes())
            except Exception as exc:  # noqa: BLE001 - stopping a stream that is going away anyway
                logger.debug("stopping the stream: %s", translate_error(exc, action="stopping the stream"))
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                await client.disconnect()
        except Exception as exc:  # noqa: BLE001 - closing a link that is going away anyway
            logger.debug("disconnecting: %s", translate_error(exc, action="disconnecting"))

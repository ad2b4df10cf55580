"""Two sensors on one adapter (left and right thigh), as one tagged stream.

Each side keeps its own :class:`~hipsense.device.ble.SensorLink`: its own decoder, queue,
watchdog and reconnect loop, so a drop on one side is that side's business alone. What they
share is the adapter, and the one thing an adapter cannot do twice at once is create a
connection (BlueZ answers ``InProgress``): the pair gives its links one lock for that, held
only while connecting, never while scanning or streaming::

    pair = SensorPair({
        "left": SensorLink(make_decoder("polar"), address=LEFT),
        "right": SensorLink(make_decoder("polar"), address=RIGHT),
    })
    async with pair:
        async for tagged in pair.decoded():     # SideItem(side="left", item=ImuSamples | LinkEvent)
            ...

Two plain ``SensorLink`` s on one adapter work too; pass them one ``adapter_lock`` yourself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Self

from hipsense.device.ble import SensorLink
from hipsense.device.events import LinkEvent
from hipsense.device.samples import ImuSamples
from hipsense.errors import DeviceError

__all__ = ["SensorPair", "SideItem"]


@dataclasses.dataclass(frozen=True, slots=True)
class SideItem:
    """One decoded block or link event, and the side it came from."""

    side: str
    item: ImuSamples | LinkEvent


@dataclasses.dataclass(frozen=True, slots=True)
class _Ended:
    side: str
    error: DeviceError | None


class SensorPair:
    """Run several :class:`SensorLink` s (usually two) side by side; merge their decoded streams.

    Parameters
    ----------
    links
        Side name → link. Links without an ``adapter_lock`` get the pair's shared one.
    queue_size
        Most tagged items waiting for the consumer. When it is full the per-side readers wait,
        so each link's own bounded queue fills and counts its drops, as for a single sensor.
    """

    def __init__(self, links: Mapping[str, SensorLink], *, queue_size: int = 256) -> None:
        if not links:
            raise ValueError("a SensorPair needs at least one link")
        self.links = dict(links)
        lock = asyncio.Lock()
        for link in self.links.values():
            if link.adapter_lock is None:
                link.adapter_lock = lock
        self._queue: asyncio.Queue[SideItem | _Ended] = asyncio.Queue(maxsize=queue_size)
        self._readers: list[asyncio.Task[None]] = []
        self._closed = False

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def start(self) -> None:
        """Start every link and a reader per side."""
        if self._readers:
            return
        for side, link in self.links.items():
            link.start()
            self._readers.append(asyncio.create_task(self._read(side, link), name=f"sensor pair {side}"))

    async def close(self, *, drain_timeout_s: float = 2.0) -> None:
        """Stop every link (each sends its stop commands), let the readers hand over what is
        left for up to ``drain_timeout_s``, then end :meth:`decoded`."""
        await asyncio.gather(*(link.close() for link in self.links.values()))
        readers, self._readers = self._readers, []
        if readers:
            # A consumer that stopped reading must not keep a reader waiting on a full queue.
            _done, stuck = await asyncio.wait(readers, timeout=drain_timeout_s)
            for reader in stuck:
                reader.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        self._closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_Ended("", None))  # wakes a consumer waiting on an empty queue

    async def _read(self, side: str, link: SensorLink) -> None:
        error: DeviceError | None = None
        try:
            async for item in link.decoded():
                await self._queue.put(SideItem(side, item))
        except DeviceError as exc:  # the link gave up (only with max_failed_attempts set)
            error = exc
        await self._queue.put(_Ended(side, error))

    async def decoded(self) -> AsyncIterator[SideItem]:
        """Every side's decoded blocks and link events, tagged, each side in its own order.

        Ends when every side has ended; a side whose link gave up raises its error here.
        """
        remaining = set(self.links)
        while remaining and not (self._closed and self._queue.empty()):
            entry = await self._queue.get()
            if isinstance(entry, SideItem):
                yield entry
                continue
            if entry.error is not None:
                raise entry.error
            if not entry.side:  # the pair was closed
                return
            remaining.discard(entry.side)

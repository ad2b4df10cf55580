"""Fan-out of live updates from the ingest threads to the web pages' SSE streams.

Ingest runs on paho's and the writer's threads; each SSE stream is an asyncio task. A
subscriber hands its loop and a bounded queue; :meth:`LiveHub.publish` schedules the put on
that loop. A slow browser loses updates (the queue is bounded) instead of growing memory:
live angles are worthless after a second, and stored events are re-read from the database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Mapping
from typing import Any

QUEUE_LIMIT = 256


@dataclasses.dataclass(frozen=True, slots=True)
class Update:
    """One thing a page may want: ``kind`` is ``live``, ``status`` or ``stored``."""

    kind: str
    patient: str
    data: Mapping[str, Any]


@dataclasses.dataclass(slots=True)
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue
    patient: str | None  # None: every patient (the patients list)


class LiveHub:
    """Thread-safe publish; asyncio subscribe. Also remembers each patient's last live data."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[_Subscriber] = []
        self._last_live: dict[str, tuple[float, Mapping[str, Any]]] = {}

    def publish(self, update: Update) -> None:
        if update.kind == "live":
            with self._lock:
                self._last_live[update.patient] = (time.monotonic(), update.data)
        with self._lock:
            targets = [s for s in self._subscribers if s.patient in (None, update.patient)]
        for subscriber in targets:
            try:
                subscriber.loop.call_soon_threadsafe(_offer, subscriber.queue, update)
            except RuntimeError:  # that loop is closed: the page went away
                self.unsubscribe(subscriber.queue)

    def subscribe(self, patient: str | None) -> asyncio.Queue:
        """Return a queue of :class:`Update` for ``patient`` (None: all); call from the loop."""
        queue: asyncio.Queue = asyncio.Queue(QUEUE_LIMIT)
        with self._lock:
            self._subscribers.append(_Subscriber(asyncio.get_running_loop(), queue, patient))
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._subscribers = [s for s in self._subscribers if s.queue is not queue]

    def last_live(self, patient: str, max_age_s: float) -> Mapping[str, Any] | None:
        """The newest live payload of ``patient`` if it is at most ``max_age_s`` old."""
        with self._lock:
            entry = self._last_live.get(patient)
        if entry is None or time.monotonic() - entry[0] > max_age_s:
            return None
        return entry[1]


def _offer(queue: asyncio.Queue, update: Update) -> None:
    try:
        queue.put_nowait(update)
    except asyncio.QueueFull:
        pass  # see the module docstring

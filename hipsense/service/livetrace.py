"""Where a live message's latency goes: a wall-clock stamp per stage (for bench_service).

Off unless the environment names a file (``HIPSENSE_LIVE_TRACE=/path``); then every live
message the MQTT client publishes adds one tab-separated line::

    t  submitted  dequeued  built  returned  written

``t`` is the message's own ``t`` (its newest sample's UTC time, as on the wire); the rest are
``time.time()`` seconds: the notification of that newest sample queued for the processing thread
by the BLE loop (``submitted``), taken off the queue by the processing thread (``dequeued``),
the live message built and handed to paho (``built``), paho's ``publish`` returned
(``returned``), and the packet written to the socket by paho's network thread (``written``,
from paho's ``on_publish``, which it calls for a QoS 0 message once its last byte is written).
A subscriber's arrival time completes the path (``benchmarks/bench_service.py``). Both ends
read the same host clock.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["ENVIRONMENT_VARIABLE", "LiveTrace", "live_trace_from_environment"]

ENVIRONMENT_VARIABLE = "HIPSENSE_LIVE_TRACE"
_KEEP = 256  # stamps waiting for their other half (a write before publish returned, or a QoS 1 mid)


class LiveTrace:
    """The stamps of live messages, written as they complete (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], stamps: Any) -> None:
        self._file = open(Path(path), "a", buffering=1, encoding="utf-8")  # a line at a time
        self._stamps = stamps  # the processing thread's (submitted, dequeued) of the current item
        self._lock = threading.Lock()
        self._published: dict[int, tuple[str, float, float, float, float]] = {}
        self._written: dict[int, float] = {}

    def published(self, payload: bytes, mid: int, built: float, returned: float) -> None:
        """On the processing thread, after paho's ``publish`` returned ``mid``."""
        submitted, dequeued = self._stamps()
        record = (json.loads(payload)["t"], submitted, dequeued, built, returned)
        with self._lock:
            written = self._written.pop(mid, None)
            if written is None:
                self._keep(self._published, mid, record)
                return
        self._write(record, written)

    def written(self, mid: int) -> None:
        """On paho's network thread: ``mid`` is on the socket (QoS 0), or acknowledged (QoS 1: ignored)."""
        now = time.time()
        with self._lock:
            record = self._published.pop(mid, None)
            if record is None:  # the write beat publish() returning, or not a live message
                self._keep(self._written, mid, now)
                return
        self._write(record, now)

    @staticmethod
    def _keep(table: dict, mid: int, value: Any) -> None:
        if len(table) >= _KEEP:
            table.pop(next(iter(table)))
        table[mid] = value

    def _write(self, record: tuple[str, float, float, float, float], written: float) -> None:
        self._file.write("\t".join([record[0], *(f"{x:.6f}" for x in record[1:]), f"{written:.6f}"]) + "\n")

    def close(self) -> None:
        self._file.close()


def live_trace_from_environment(stamps: Any, environ: dict[str, str] | None = None) -> LiveTrace | None:
    path = (os.environ if environ is None else environ).get(ENVIRONMENT_VARIABLE)
    return LiveTrace(path, stamps) if path else None

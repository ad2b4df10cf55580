"""Helpers for link tests against emulated sensors that have a clock (Polar, Movella DOT).

Those sensors stamp samples with their own clock, which the emulator runs ``speed`` times
faster than real time when replaying faster. The decoders check that clock against the host's
receive times (a sensor clock that runs ahead of the host by seconds is a reset), so the link
under test stamps receive times on a host clock scaled by the same factor: both clocks then
agree, and every time the link reports (reconnect times, gaps, the silence watchdog) is in
"sensor seconds".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hipsense.device.ble import SensorLink
from hipsense.device.events import LinkEvent, LinkEventKind
from hipsense.device.bumble_backend import VirtualRadio
from hipsense.device.decoders import SensorDecoder
from hipsense.device.reconnect import BackoffPolicy
from hipsense.device.samples import Gap, ImuSamples

FAST_BACKOFF = BackoffPolicy(initial_s=0.05, multiplier=2.0, max_s=0.4, jitter=0.5)


def scaled_clock(speed: float) -> Callable[[], float]:
    """A monotonic clock running ``speed`` times faster than real time."""
    start = time.monotonic()
    return lambda: start + (time.monotonic() - start) * speed


def clocked_link(radio: VirtualRadio, decoder: SensorDecoder, speed: float, **overrides: object) -> SensorLink:
    options: dict[str, object] = {
        "silence_timeout_s": 2.0 * speed,  # two wall seconds
        "backoff": FAST_BACKOFF,
        "scan_timeout_s": 2.0,
        "connect_timeout_s": 2.0,
        "reply_timeout_s": 2.0,
        "scanner_backend": radio.scanner_backend,
        "client_backend": radio.client_backend,
        "clock": scaled_clock(speed),
    }
    options.update(overrides)
    return SensorLink(decoder, **options)  # type: ignore[arg-type]


@dataclass
class Stream:
    """One decoded stream (acc or gyro): sensor times, values, and where gaps fell."""

    sensor_time_s: list[float] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    t_s: list[float] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    gap_positions: list[int] = field(default_factory=list)

    def add(self, block: ImuSamples, values: np.ndarray) -> None:
        for gap in block.gaps:
            self.gaps.append(gap)
            self.gap_positions.append(len(self.sensor_time_s))
        if block.n:
            assert block.sensor_time_s is not None
            self.sensor_time_s.extend(block.sensor_time_s.tolist())
            self.values.extend(values)
            self.t_s.extend(block.t_s.tolist())

    @property
    def n(self) -> int:
        return len(self.sensor_time_s)


@dataclass
class Collected:
    acc: Stream = field(default_factory=Stream)
    gyr: Stream = field(default_factory=Stream)
    events: list[LinkEvent] = field(default_factory=list)

    def kinds(self, kind: LinkEventKind) -> list[LinkEvent]:
        return [e for e in self.events if e.kind is kind]

    def add(self, item: ImuSamples | LinkEvent) -> None:
        if isinstance(item, LinkEvent):
            self.events.append(item)
            return
        # A block with only gaps (a link gap) belongs to both streams' accounting; Polar and
        # DOT always carry the decoder's own gap with the data, so it is not expected here.
        if item.acc_ms2 is not None:
            self.acc.add(item, item.acc_ms2)
        if item.gyr_rad_s is not None:
            self.gyr.add(item, np.degrees(item.gyr_rad_s))
        if item.acc_ms2 is None and item.gyr_rad_s is None and item.gaps:
            self.acc.add(item, np.empty((0, 3)))
            self.gyr.add(item, np.empty((0, 3)))


async def collect(link: SensorLink, out: Collected) -> None:
    async for item in link.decoded():
        out.add(item)

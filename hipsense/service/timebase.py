"""Sample times → wall-clock UTC, with one offset captured at start.

Sample times are host-monotonic seconds (what the BLE link stamps), possibly scaled when an
emulated sensor replays faster than real time. The protocol wants wall-clock UTC. Mapping every
instant through one offset captured at start keeps durations exact (an NTP step during a
session does not stretch a hold) and costs nothing per sample.

A replay's speed never reaches the timestamps a therapist reads: an instant ``t_s`` of the
scaled clock is stamped with the wall time at which it happened (``(t_s - start) / scale``
after the start), so at ``--speed 2`` a result is stamped when it was counted, not minutes in
the future. Durations the counting measures (``duration_s``, ``hold_s``) stay in sample time:
a 5 s hold replayed at 2x is still a 5 s hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Timebase"]


class Timebase:
    """The service's sample clock and its mapping to UTC epoch seconds.

    ``scale`` > 1 makes the sample clock run that many times faster than real time (an
    emulated sensor at ``speed`` = ``scale``), so that the counting sees real-time motion.
    """

    def __init__(self, scale: float = 1.0, *, monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = float(scale)
        self._monotonic = monotonic
        self._mono0 = monotonic()
        self._utc0 = wall()

    def now(self) -> float:
        """The sample clock now: what a sample received at this instant is stamped with."""
        return self._mono0 + (self._monotonic() - self._mono0) * self.scale

    def to_utc(self, t_s: float) -> float:
        """UTC epoch seconds (wall time) at which sample time ``t_s`` happened."""
        return self._utc0 + (t_s - self._mono0) / self.scale

    def utc_now(self) -> float:
        return self.to_utc(self.now())

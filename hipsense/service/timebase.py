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

The offset follows a stepped wall clock. A Pi has no battery clock: after a power cut it boots
with the time fake-hwclock saved (hours or weeks behind) or systemd's build date, and the
service starts before NTP steps the clock (``time-sync.target`` does not wait for a sync).
An offset captured once then stamped every result of the whole uptime, weeks of them, with
that wrong date: sessions on the wrong days for the therapist, "missed today" alerts, and
with a clock before 2020 every result dead-lettered by the dashboard and so forgotten by the
Pi. So each conversion compares the wall clock with the monotonic one; when they disagree by
more than ``STEP_S`` (a step, not NTP's slewing, which moves both), the offset is taken
again. Durations stay on the sample clock; every sample time maps through the newest offset,
which is right for samples before the step too (the monotonic clock did not jump).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["STEP_S", "Timebase"]

STEP_S = 1.0
"""A wall clock this far from where the monotonic clock says it should be was stepped."""


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
        self._wall = wall
        self._utc0 = wall()

    def now(self) -> float:
        """The sample clock now: what a sample received at this instant is stamped with."""
        return self._mono0 + (self._monotonic() - self._mono0) * self.scale

    def to_utc(self, t_s: float) -> float:
        """UTC epoch seconds (wall time) at which sample time ``t_s`` happened."""
        self._follow_steps()
        return self._utc0 + (t_s - self._mono0) / self.scale

    def _follow_steps(self) -> None:
        mono, wall = self._monotonic(), self._wall()
        step = wall - (self._utc0 + (mono - self._mono0))
        if abs(step) > STEP_S:
            self._utc0 += step

    def utc_now(self) -> float:
        return self.to_utc(self.now())

    def monotonic_now(self) -> float:
        """The host's monotonic clock now (real seconds, the same for every process of one boot)."""
        return self._monotonic()

    def to_monotonic(self, t_s: float) -> float:
        """The host-monotonic instant (real seconds) at which sample time ``t_s`` happened: a
        time another process of the same boot can map onto its own sample clock."""
        return self._mono0 + (t_s - self._mono0) / self.scale

    def from_monotonic(self, mono_s: float) -> float:
        """The sample time of host-monotonic instant ``mono_s`` (the inverse of :meth:`to_monotonic`)."""
        return self._mono0 + (mono_s - self._mono0) * self.scale

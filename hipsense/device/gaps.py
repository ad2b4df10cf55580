"""Detect lost samples from a sensor's own timestamps, and unwrap wrapping counters.

Lost packets are only ever *reported* (as :class:`~hipsense.device.samples.Gap` records built
by the decoders); nothing here invents data to fill them.

Sensors without any clock or counter (WitMotion) cannot use this module: their losses can only
be guessed from receive times, which :class:`hipsense.device.clock.ReceiveTimeClock` does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "Continuity",
    "ContinuityCheck",
    "SensorTimeGapDetector",
    "count_missing_samples",
    "unwrap_counter",
]


def count_missing_samples(
    elapsed_s: float, n_received: int, period_s: float, *, tolerance: float = 0.5
) -> int:
    """Samples the sensor produced but we never got, judged from its timestamps.

    Parameters
    ----------
    elapsed_s
        Sensor time (s) from the last sample received before, to the last sample of the group
        just received.
    n_received
        Samples in the group just received (1 for one-sample notifications).
    period_s
        Nominal sample period (s).
    tolerance
        Fraction of a period the spacing may exceed nominal before it counts as a loss. 0.5
        keeps a slightly slow sensor clock (a few % off nominal) from looking like loss.

    Returns
    -------
    int
        0 when the spacing is consistent with no loss, else the rounded number of missing
        samples (at least 1).
    """
    if elapsed_s <= (n_received + tolerance) * period_s:
        return 0
    return max(1, round(elapsed_s / period_s) - n_received)


def unwrap_counter(previous: int, raw: int, modulus: int, expected_elapsed: float) -> int:
    """Unwrap a counter that wraps at ``modulus`` (e.g. uint32 microseconds, every ~71.6 min).

    Parameters
    ----------
    previous
        The previous reading, already unwrapped (any size).
    raw
        The new raw reading, ``0 <= raw < modulus``.
    modulus
        Where the counter wraps (``2**32`` for a uint32).
    expected_elapsed
        How far the counter should have advanced, in counter ticks, judged from host receive
        times. Used to count whole wraps after a long silence; any value below ``modulus / 2``
        means "at most one wrap happened".

    Returns
    -------
    int
        The unwrapped reading: ``previous`` plus the forward distance to ``raw``, plus as many
        whole wraps as bring it closest to ``expected_elapsed``. May lie below ``previous`` only
        if ``raw`` itself is ahead by more than half the range and no time passed: callers treat
        that as a clock reset (see :class:`SensorTimeGapDetector`).
    """
    forward = (raw - previous) % modulus
    # A counter that is read far more often than it wraps advances by less than half its range
    # between readings; a longer host-time silence tells how many whole wraps we slept through.
    whole_wraps = max(0, round((expected_elapsed - forward) / modulus))
    return previous + forward + whole_wraps * modulus


class Continuity(enum.Enum):
    """How a newly received group of samples continues the previous one."""

    FIRST = "first"
    CONTINUOUS = "continuous"
    SAMPLES_LOST = "samples_lost"
    CLOCK_RESET = "clock_reset"


@dataclass(frozen=True, slots=True)
class ContinuityCheck:
    """Verdict of :meth:`SensorTimeGapDetector.check`.

    ``samples_lost`` is > 0 only for :attr:`Continuity.SAMPLES_LOST`. ``previous_device_s`` is
    the sensor time of the last sample before this group (None for the first group or after a
    reset).
    """

    continuity: Continuity
    samples_lost: int = 0
    previous_device_s: float | None = None


class SensorTimeGapDetector:
    """Follows one stream's sensor timestamps and classifies each new group of samples.

    Parameters
    ----------
    nominal_rate_hz
        The rate the sensor was asked for (Hz).
    tolerance
        See :func:`count_missing_samples`.
    max_clock_lead_s
        A sensor clock cannot run ahead of host time by more than BLE latency. If the sensor
        time advanced this much (s) more than the receive time did, or went backwards, the sensor
        clock was reset (power loss, firmware reset) and nothing can be said about losses.
    """

    def __init__(
        self, nominal_rate_hz: float, *, tolerance: float = 0.5, max_clock_lead_s: float = 2.0
    ) -> None:
        if nominal_rate_hz <= 0:
            raise ValueError(f"nominal_rate_hz must be > 0, got {nominal_rate_hz}")
        self.period_s = 1.0 / nominal_rate_hz
        self.tolerance = tolerance
        self.max_clock_lead_s = max_clock_lead_s
        self._last_device_s: float | None = None
        self._last_received_s: float | None = None

    @property
    def last_device_s(self) -> float | None:
        """Sensor time (s) of the last sample accepted, or None before the first."""
        return self._last_device_s

    @property
    def last_received_s(self) -> float | None:
        """Host receive time (s) of the last group accepted, or None before the first."""
        return self._last_received_s

    def check(self, last_device_s: float, n_samples: int, received_at_s: float) -> ContinuityCheck:
        """Classify a group without changing any state (decoders commit only after success)."""
        previous_device = self._last_device_s
        previous_received = self._last_received_s
        if previous_device is None or previous_received is None:
            return ContinuityCheck(Continuity.FIRST)
        device_elapsed = last_device_s - previous_device
        host_elapsed = received_at_s - previous_received
        if device_elapsed <= 0 or device_elapsed > host_elapsed + self.max_clock_lead_s:
            return ContinuityCheck(Continuity.CLOCK_RESET)
        lost = count_missing_samples(
            device_elapsed, n_samples, self.period_s, tolerance=self.tolerance
        )
        if lost:
            return ContinuityCheck(Continuity.SAMPLES_LOST, lost, previous_device)
        return ContinuityCheck(Continuity.CONTINUOUS, 0, previous_device)

    def commit(self, last_device_s: float, received_at_s: float) -> None:
        """Record the group that was just emitted."""
        self._last_device_s = last_device_s
        self._last_received_s = received_at_s

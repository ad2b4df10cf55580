"""Put sensor samples on the host clock.

Two cases:

* Sensors with a clock (Polar: ns since 2000; Movella DOT: µs, wrapping uint32) —
  :class:`DeviceClockAligner` learns ``host ≈ device + offset + drift · device`` online.
* Sensors without one (WitMotion) — :class:`ReceiveTimeClock` numbers the samples, treats
  ``sample_number / nominal_rate`` as a device clock and aligns that the same way, so the fit
  also learns the sensor's true rate and per-sample times never drift away from receive times.

Why the *lower envelope*: a notification's receive time is its send time plus a BLE latency that
is never negative but often tens of milliseconds (connection interval, retransmissions, host
scheduling). The smallest ``receive - device`` offsets are the ones that waited least, so the
line under the per-window minima tracks the true offset plus a constant minimum latency, while
the mean would be dragged around by every late packet. That constant minimum latency cannot be
measured from one side and stays in ``t_s``.

All times are float seconds. Host times are whatever clock the link stamps receive times with
(``time.monotonic()`` on the Pi); the output is in that clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from hipsense.device.samples import FloatArray

__all__ = ["DeviceClockAligner", "ReceiveTimeClock", "ReceiveTimePlacement", "increasing_after"]

_PPM = 1e-6


@dataclass(slots=True)
class _Window:
    index: int
    device_s: float  # device time (relative to the aligner's origin) of the lowest offset seen
    offset_s: float  # lowest receive-minus-device offset seen in this window


class DeviceClockAligner:
    """Online map from a sensor clock to the host clock, robust to BLE latency jitter.

    Device time is cut into windows of ``window_s``; each keeps its lowest
    ``received - device`` offset. The drift (slope) is a least-squares line through the minima
    of the completed windows of the last ``history_s``; the line is then lowered until it
    touches the lowest minimum, so it is a lower envelope.

    Parameters
    ----------
    window_s
        Length of one window of device time (s). Wants several notifications per window.
    history_s
        How much device time (s) the fit remembers. Longer is steadier; shorter follows
        temperature-driven drift faster.
    max_drift_ppm
        Largest believable rate difference between the clocks (ppm); the fitted slope is
        clipped to it, which keeps an early fit over few windows sane.
    """

    def __init__(
        self, *, window_s: float = 2.0, history_s: float = 300.0, max_drift_ppm: float = 500.0
    ) -> None:
        if window_s <= 0 or history_s < 2 * window_s:
            raise ValueError("need window_s > 0 and history_s >= 2 * window_s")
        self.window_s = window_s
        self.max_windows = max(2, math.ceil(history_s / window_s))
        self.max_drift = max_drift_ppm * _PPM
        self._origin_s: float | None = None
        self._windows: deque[_Window] = deque()
        self._slope = 0.0
        self._intercept = 0.0

    @property
    def ready(self) -> bool:
        """True once at least one observation has been made."""
        return self._origin_s is not None

    @property
    def drift_ppm(self) -> float:
        """Current estimate of how much faster the host clock runs than the device clock (ppm)."""
        return self._slope / _PPM

    def reset(self, *, keep_drift: bool = False) -> None:
        """Forget everything (sensor clock reset); optionally keep the drift estimate."""
        self._origin_s = None
        self._windows.clear()
        self._intercept = 0.0
        if not keep_drift:
            self._slope = 0.0

    def observe(self, device_s: float, received_at_s: float) -> None:
        """Add one notification: the device time of its newest sample and its receive time."""
        if self._origin_s is None:
            self._origin_s = device_s
        device_rel = device_s - self._origin_s
        offset = received_at_s - device_rel
        index = math.floor(device_rel / self.window_s)
        windows = self._windows
        if windows and index <= windows[-1].index:
            # Same window, or a slightly older time from a second stream sharing this clock
            # (Polar ACC and GYRO frames interleave): either way it belongs to the newest window.
            current = windows[-1]
            if offset < current.offset_s:
                current.device_s, current.offset_s = device_rel, offset
            self._update_intercept_with(current)
            return
        completed_a_window = bool(windows)
        windows.append(_Window(index, device_rel, offset))
        while windows[0].index <= index - self.max_windows:
            windows.popleft()
        if completed_a_window:
            self._refit_slope()
        self._refit_intercept()

    def to_host(self, device_s: FloatArray | float) -> FloatArray:
        """Host times (s) for device times (s), same shape. Needs one observation first."""
        if self._origin_s is None:
            raise RuntimeError("DeviceClockAligner.to_host called before any observe()")
        device_rel = np.asarray(device_s, dtype=np.float64) - self._origin_s
        return device_rel + self._intercept + self._slope * device_rel

    def _refit_slope(self) -> None:
        completed = list(self._windows)[:-1]
        if len(completed) < 2:
            return
        device = np.array([w.device_s for w in completed])
        offset = np.array([w.offset_s for w in completed])
        device_centred = device - device.mean()
        denominator = float(device_centred @ device_centred)
        if denominator <= 0:
            return
        slope = float(device_centred @ (offset - offset.mean())) / denominator
        self._slope = min(self.max_drift, max(-self.max_drift, slope))

    def _refit_intercept(self) -> None:
        self._intercept = min(w.offset_s - self._slope * w.device_s for w in self._windows)

    def _update_intercept_with(self, window: _Window) -> None:
        # Cheap path between refits: only the current window changed, and only downwards.
        self._intercept = min(self._intercept, window.offset_s - self._slope * window.device_s)


def increasing_after(times_s: FloatArray, previous_s: float | None) -> FloatArray:
    """Make a block's times strictly later than the previous block's last time.

    While the clock fit is still settling (first seconds, or after a lower-latency packet), the
    offset estimate can step back by a few milliseconds, which would put a new block before the
    old one. Consumers need increasing time, so such samples are moved to just (1 µs steps)
    after the previous block. Nothing is moved once the fit has settled.
    """
    if previous_s is None or times_s.size == 0 or times_s[0] > previous_s:
        return times_s
    floor = previous_s + 1e-6 * np.arange(1, times_s.size + 1)
    return np.maximum(times_s, floor)


@dataclass(frozen=True, slots=True)
class ReceiveTimePlacement:
    """Result of :meth:`ReceiveTimeClock.place`.

    ``t_s`` are the host times of the block (shape (n,)). ``gap_before`` is True when the block
    arrived so late that samples were probably lost before it (count unknown).
    """

    t_s: FloatArray
    gap_before: bool


class ReceiveTimeClock:
    """Per-sample host times for a sensor with neither clock nor counter (WitMotion).

    Each notification carries ``k`` consecutive samples taken at the nominal rate and sent right
    after the last one. Samples are numbered, ``number / nominal_rate_hz`` serves as a device
    clock, and a :class:`DeviceClockAligner` maps it to receive times. The fitted slope absorbs
    the sensor's rate error, so times follow the sensor without accumulating drift.

    Parameters
    ----------
    nominal_rate_hz
        The configured output rate (Hz).
    gap_threshold_s
        A notification arriving this much later (s) than the fit predicts means the sensor went
        on sampling while nothing arrived: a gap of unknown size. Shorter losses cannot be told
        apart from BLE latency without a counter; they are absorbed by the fit.
    max_rate_error
        Largest believable relative error of the sensor's rate (0.05 = 5 %).
    window_s, history_s
        Passed to :class:`DeviceClockAligner`.
    """

    def __init__(
        self,
        nominal_rate_hz: float,
        *,
        gap_threshold_s: float = 0.5,
        max_rate_error: float = 0.05,
        window_s: float = 2.0,
        history_s: float = 120.0,
    ) -> None:
        if nominal_rate_hz <= 0:
            raise ValueError(f"nominal_rate_hz must be > 0, got {nominal_rate_hz}")
        self.nominal_rate_hz = nominal_rate_hz
        self.gap_threshold_s = gap_threshold_s
        self._aligner = DeviceClockAligner(
            window_s=window_s, history_s=history_s, max_drift_ppm=max_rate_error / _PPM
        )
        self._next_number = 0
        self._last_t_s: float | None = None

    @property
    def rate_error_ppm(self) -> float:
        """Estimated (actual - nominal) / nominal sample rate, in ppm, as seen by the host."""
        # One nominal sample period lasts (1 + slope) host seconds, so the actual rate is
        # nominal / (1 + slope).
        slope = self._aligner.drift_ppm * _PPM
        return (1.0 / (1.0 + slope) - 1.0) / _PPM

    def place(self, n_samples: int, received_at_s: float) -> ReceiveTimePlacement:
        """Host times for ``n_samples`` consecutive samples that arrived at ``received_at_s``."""
        if n_samples <= 0:
            return ReceiveTimePlacement(np.empty(0), False)
        numbers = self._next_number + np.arange(n_samples, dtype=np.float64)
        device_s = numbers / self.nominal_rate_hz
        last_device = float(device_s[-1])
        gap_before = False
        if self._aligner.ready:
            lateness = received_at_s - float(self._aligner.to_host(last_device))
            if lateness > self.gap_threshold_s:
                # Re-anchor on this notification; the rate estimate is still good.
                self._aligner.reset(keep_drift=True)
                gap_before = True
        self._aligner.observe(last_device, received_at_s)
        t_s = increasing_after(self._aligner.to_host(device_s), self._last_t_s)
        self._next_number += n_samples
        self._last_t_s = float(t_s[-1])
        return ReceiveTimePlacement(t_s, gap_before)

"""One stream of acceleration with angular rate, from a sensor that sends the two apart.

Polar PMD and MetaMotion notify ACC and GYRO as separate streams: a block carries one or the
other, each timed on its own (``samples.py``). The counter wants both on the same sample times,
so :class:`AccGyroJoiner` holds accelerometer blocks until the gyroscope stream has reached their
times, then hands them on with the angular rate interpolated (linearly) onto the accelerometer's
times: the two streams run at one rate, so this moves the angular rate by less than a sample
period. Without it the service counted these sensors on the accelerometer alone (their
gyroscope blocks were dropped), which on UCI is exact 0.69 / MAE 0.44 instead of 0.81 / 0.19.

The service uses one only for a sensor that sends the two apart and is configured to stream
its gyroscope (``service.read_sensor``); an accelerometer-only sensor's blocks go straight on.
What passes through unchanged: blocks that carry both (WitMotion, Movella DOT). Once the
accelerometer has gone on for ``wait_s`` past a block with no angular rate near it, that block
goes on alone (a gyroscope that never starts, or stops while the accelerometer goes on); and
while the angular rate is more than ``wait_s`` behind (or has never come), the accelerometer's
blocks go on at once, not ``wait_s`` late: a Polar H10 left at ``gyroscope = true`` waits only
its first ``wait_s``, and the engine bridges what comes without angular rate. When the link
drops, the end of the last accelerometer block before the drop may never be covered: it is
joined with the last angular rate held over it, so one drop does not turn the rest of the
session into accelerometer-only counting. The price is latency: an accelerometer block waits
for the gyroscope frame that covers it (a Polar frame holds up to about a second; the
default ``wait_s`` of 3 s leaves room for the gyroscope to be a frame or two behind).

Gaps are handed on at once (in an empty block), so nothing about them is lost. Across a gap of
its own the angular rate would be interpolated linearly, but both streams drop together when
the link does, so no accelerometer sample falls inside such a gap in practice.
"""

from __future__ import annotations

import numpy as np

from hipsense.device.samples import FloatArray, ImuSamples

__all__ = ["AccGyroJoiner"]


class AccGyroJoiner:
    """Joins one sensor's accelerometer and gyroscope blocks (see the module docstring)."""

    def __init__(self, *, wait_s: float = 3.0) -> None:
        if wait_s <= 0:
            raise ValueError(f"wait_s must be > 0, got {wait_s}")
        self.wait_s = wait_s
        self._acc: list[ImuSamples] = []  # accelerometer blocks waiting for angular rate
        self._gyr_t: FloatArray = np.empty(0)
        self._gyr: FloatArray = np.empty((0, 3))
        self._acc_since_s = -np.inf  # the accelerometer has streamed on since (see push)
        self._acc_until_s: float | None = None  # ... up to here

    def push(self, block: ImuSamples) -> list[ImuSamples]:
        """Take one decoded block; return the blocks ready to count, in time order."""
        out: list[ImuSamples] = []
        if block.n == 0:
            if block.gaps:
                out.append(block)
            return out
        if block.acc_ms2 is not None and block.gyr_rad_s is not None:
            return [*self.flush(), block]
        if block.gyr_rad_s is not None:  # angular rate only
            self._gyr_t = np.concatenate([self._gyr_t, block.t_s])
            self._gyr = np.concatenate([self._gyr, block.gyr_rad_s])
            if block.gaps:
                out.append(ImuSamples(t_s=np.empty(0), gaps=block.gaps))
        elif block.acc_ms2 is not None:
            # since when the accelerometer has streamed on without a break: after a break (a
            # link drop) the angular rate is waited for again
            if self._acc_until_s is None or float(block.t_s[0]) - self._acc_until_s > self.wait_s:
                self._acc_since_s = float(block.t_s[0])
            self._acc_until_s = float(block.t_s[-1])
            self._acc.append(block)
        out += self._release(force=False)
        return out

    def flush(self) -> list[ImuSamples]:
        """Everything held, joined where the angular rate reaches (the stream ended)."""
        return self._release(force=True)

    def _release(self, *, force: bool) -> list[ImuSamples]:
        out: list[ImuSamples] = []
        while self._acc:
            block = self._acc[0]
            t0, t1 = float(block.t_s[0]), float(block.t_s[-1])
            newest_s = float(self._acc[-1].t_s[-1])
            gyro_reached_s = float(self._gyr_t[-1]) if len(self._gyr_t) else None
            # waited for, or no angular rate for wait_s of accelerometer (none at all, or it
            # stopped): nothing to wait for, the block goes on at once
            waited = force or newest_s - t1 > self.wait_s or newest_s - max(
                gyro_reached_s if gyro_reached_s is not None else -np.inf, self._acc_since_s) > self.wait_s
            if gyro_reached_s is not None and gyro_reached_s >= t1:
                out.append(self._joined(block))
            elif waited and gyro_reached_s is not None and gyro_reached_s >= t0 - self.wait_s:
                # the angular rate that was to cover its end is not coming (the link dropped):
                # joined, its last value held over the end (a frame or two)
                out.append(self._joined(block))
            elif waited:
                out.append(block)  # no angular rate near it: the accelerometer goes on alone
            else:
                break
            self._acc.pop(0)
        self._trim(out)
        return out

    def _joined(self, block: ImuSamples) -> ImuSamples:
        t = block.t_s
        gyr = np.stack([np.interp(t, self._gyr_t, self._gyr[:, k]) for k in range(3)], axis=1)
        return ImuSamples(t_s=t, acc_ms2=block.acc_ms2, gyr_rad_s=gyr, sensor_time_s=block.sensor_time_s,
                          euler_rad=block.euler_rad, gaps=block.gaps)

    def _trim(self, released: list[ImuSamples]) -> None:
        """Keep the angular rate from the sample before the next accelerometer time on (and no
        more than ``wait_s`` of it while no accelerometer block waits)."""
        if not len(self._gyr_t):
            return
        keep_from_s = float(self._gyr_t[-1]) - self.wait_s
        if self._acc:
            keep_from_s = min(keep_from_s, float(self._acc[0].t_s[0]))
        elif any(b.n for b in released):
            keep_from_s = min(keep_from_s, float([b for b in released if b.n][-1].t_s[-1]))
        first = max(int(np.searchsorted(self._gyr_t, keep_from_s, side="right")) - 1, 0)
        if first:
            self._gyr_t, self._gyr = self._gyr_t[first:], self._gyr[first:]

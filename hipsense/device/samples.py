"""What the device layer hands upward: blocks of decoded IMU samples, and gaps between them.

Everything here is in SI units and in the sensor's own axis frame: metres per second squared,
radians per second, radians, seconds. Host times come from the clock the BLE link stamps
notifications with (``time.monotonic()`` on the Pi), after clock alignment (``clock.py``).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

__all__ = ["FloatArray", "Gap", "GapReason", "ImuSamples"]


class GapReason(enum.StrEnum):
    """Why samples are missing between two blocks."""

    SENSOR_TIME_JUMP = "sensor_time_jump"
    """The sensor's own timestamps skip one or more sample periods: the count is exact."""

    RECEIVE_TIME_JUMP = "receive_time_jump"
    """The sensor has no clock or counter, and notifications stopped for longer than BLE
    latency explains. How many samples were lost is unknown."""

    SENSOR_CLOCK_RESET = "sensor_clock_reset"
    """The sensor clock went backwards or leapt ahead of host time (power loss, firmware reset).
    Samples may or may not have been lost; their number is unknown."""


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch of time in which the sensor sampled but no samples reached us.

    Nothing is ever invented to fill a gap; consumers decide how to bridge it.

    Attributes
    ----------
    start_s
        Host time (s) of the last sample received before the gap, or of the first sample after
        it when nothing came before (a reset at the start of a stream).
    end_s
        Host time (s) of the first sample received after the gap.
    samples_lost
        Number of sample periods missing, when the sensor's timestamps make it knowable;
        ``None`` otherwise. (Across a reconnect the sensor may simply not have sampled.)
    reason
        How the gap was detected.
    """

    start_s: float
    end_s: float
    samples_lost: int | None
    reason: GapReason


def _frozen_float_array(values: object, name: str, shape_tail: tuple[int, ...]) -> FloatArray:
    array = np.array(values, dtype=np.float64, copy=True)
    if array.shape[1:] != shape_tail or array.ndim != 1 + len(shape_tail):
        expected = "(n,)" if not shape_tail else f"(n, {', '.join(map(str, shape_tail))})"
        raise ValueError(f"{name} must have shape {expected}, got {array.shape}")
    # Blocks are shared between the service, recorders and tests; nobody may edit one in place.
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False, slots=True)
class ImuSamples:
    """A block of consecutive samples from one sensor stream.

    A block holds accelerometer data, gyroscope data or both, always row-aligned with ``t_s``.
    Polar streams ACC and GYRO separately, so its blocks carry one of the two; WitMotion and
    Movella DOT blocks carry both. A block may be empty (``n == 0``), e.g. after a control
    message; it may still carry gaps.

    Attributes
    ----------
    t_s
        Host-aligned sample times, float64, shape (n,), seconds. Strictly increasing within
        a block and across the blocks of one stream (Polar ACC and GYRO are two streams whose
        blocks interleave in time).
    acc_ms2
        Specific force (gravity included), float64, shape (n, 3), m/s², sensor frame; or None.
    gyr_rad_s
        Angular rate, float64, shape (n, 3), rad/s, sensor frame; or None.
    sensor_time_s
        The sensor's own clock for each sample, float64, shape (n,), seconds, unwrapped; or None
        when the sensor has no clock (WitMotion). Its epoch is per sensor: seconds since
        2000-01-01 for Polar, seconds since the first sample's counter origin for Movella DOT.
    euler_rad
        Sensor-fused roll, pitch, yaw, float64, shape (n, 3), radians, where the sensor sends
        them (WitMotion); otherwise None.
    gaps
        Gaps detected just before (or inside) this block, oldest first.
    """

    t_s: FloatArray
    acc_ms2: FloatArray | None = None
    gyr_rad_s: FloatArray | None = None
    sensor_time_s: FloatArray | None = None
    euler_rad: FloatArray | None = None
    gaps: tuple[Gap, ...] = field(default=())

    def __post_init__(self) -> None:
        t_s = _frozen_float_array(self.t_s, "t_s", ())
        object.__setattr__(self, "t_s", t_s)
        n = t_s.shape[0]
        for name, tail in (
            ("acc_ms2", (3,)),
            ("gyr_rad_s", (3,)),
            ("sensor_time_s", ()),
            ("euler_rad", (3,)),
        ):
            value = getattr(self, name)
            if value is None:
                continue
            array = _frozen_float_array(value, name, tail)
            if array.shape[0] != n:
                raise ValueError(f"{name} has {array.shape[0]} rows but t_s has {n}")
            object.__setattr__(self, name, array)
        object.__setattr__(self, "gaps", tuple(self.gaps))

    @property
    def n(self) -> int:
        """Number of samples in the block."""
        return int(self.t_s.shape[0])

    @classmethod
    def empty(cls, gaps: Sequence[Gap] = ()) -> ImuSamples:
        """A block without samples, optionally carrying gaps."""
        return cls(t_s=np.empty(0), gaps=tuple(gaps))

    def same_as(self, other: ImuSamples) -> bool:
        """True when both blocks hold bit-identical arrays and equal gaps (NaN-free data)."""

        def same(a: FloatArray | None, b: FloatArray | None) -> bool:
            if a is None or b is None:
                return a is None and b is None
            return a.shape == b.shape and bool(np.array_equal(a, b))

        return (
            same(self.t_s, other.t_s)
            and same(self.acc_ms2, other.acc_ms2)
            and same(self.gyr_rad_s, other.gyr_rad_s)
            and same(self.sensor_time_s, other.sensor_time_s)
            and same(self.euler_rad, other.euler_rad)
            and self.gaps == other.gaps
        )

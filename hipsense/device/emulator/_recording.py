"""What the emulated sensors replay: acceleration, and angular rate when it was recorded, in physical units.

The WitMotion emulator keeps its own raw-int16 recording because that sensor's wire format is
the recording; the sensors here quantise differently (Polar: integer counts × a factor; DOT:
float32), so they share a recording in physical units and each encodes it its own way.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt

__all__ = ["ImuRecording"]

STANDARD_GRAVITY_MS2 = 9.80665


@dataclasses.dataclass(frozen=True)
class ImuRecording:
    """Acceleration and angular rate sampled at a fixed rate, in the sensor frame.

    An accelerometer-only recording (MEx, a Polar H10) has no angular rate: sensors that can
    stream their accelerometer alone replay it as such (Polar, MetaMotion); sensors that always
    send their gyroscope cannot replay it (:func:`~hipsense.device.emulator.emulate` says so).

    Attributes
    ----------
    rate_hz
        The rate the samples were taken at.
    acc_ms2
        Shape (n, 3), m/s², gravity included.
    gyr_dps
        Shape (n, 3), deg/s (the unit the sensors put on the air before scaling); None when
        the recording has no gyroscope.
    """

    rate_hz: float
    acc_ms2: npt.NDArray[np.float64]
    gyr_dps: npt.NDArray[np.float64] | None

    def __post_init__(self) -> None:
        acc = np.array(self.acc_ms2, dtype=np.float64)
        if acc.ndim != 2 or acc.shape[1] != 3 or acc.shape[0] == 0:
            raise ValueError(f"acc_ms2 must have shape (n>0, 3), got {acc.shape}")
        if self.rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {self.rate_hz}")
        acc.setflags(write=False)
        object.__setattr__(self, "acc_ms2", acc)
        if self.gyr_dps is not None:
            gyr = np.array(self.gyr_dps, dtype=np.float64)
            if gyr.shape != acc.shape:
                raise ValueError(f"gyr_dps must have the shape of acc_ms2 {acc.shape}, got {gyr.shape}")
            gyr.setflags(write=False)
            object.__setattr__(self, "gyr_dps", gyr)

    @property
    def has_gyro(self) -> bool:
        return self.gyr_dps is not None

    @classmethod
    def from_samples(cls, t_s: npt.ArrayLike, acc_ms2: npt.ArrayLike, gyr_rad_s: npt.ArrayLike | None) -> ImuRecording:
        """Decoded samples (a UCI, MEx, CSV or raw recording read by ``read_samples``) at their
        median rate; without ``gyr_rad_s`` an accelerometer-only recording."""
        rate_hz = 1.0 / float(np.median(np.diff(np.asarray(t_s, dtype=np.float64))))
        gyr_dps = None if gyr_rad_s is None else np.degrees(np.asarray(gyr_rad_s, dtype=np.float64))
        return cls(round(rate_hz, 3), np.asarray(acc_ms2, dtype=np.float64), gyr_dps)

    @property
    def n(self) -> int:
        return int(self.acc_ms2.shape[0])

    def index_at(self, sensor_time_s: float, *, loop: bool = True) -> int:
        """The sample shown at ``sensor_time_s``: the latest one taken by then."""
        # The small epsilon keeps t = k / rate (computed in floating point) on sample k.
        index = math.floor(sensor_time_s * self.rate_hz + 1e-6)
        return index % self.n if loop else min(max(index, 0), self.n - 1)

    @classmethod
    def swing(cls, n: int, rate_hz: float = 52.0, *, period_s: float = 2.0, amplitude_deg: float = 40.0) -> ImuRecording:
        """A thigh swinging forward and back about the sensor's y axis (a straight-leg raise).

        Gravity turns in the x-z plane with the pitch, the y rate is the pitch's derivative, and
        a small x/z wobble keeps every channel moving so encoders see non-zero deltas.
        """
        t = np.arange(n) / rate_hz
        omega = 2 * math.pi / period_s
        pitch = np.radians(amplitude_deg) * np.sin(omega * t)
        pitch_rate_dps = amplitude_deg * omega * np.cos(omega * t)
        wobble = 0.3 * np.sin(2.7 * omega * t)
        acc = STANDARD_GRAVITY_MS2 * np.stack([np.sin(pitch), 0.05 * wobble, np.cos(pitch)], axis=1)
        gyr = np.stack([5.0 * wobble, pitch_rate_dps, -3.0 * wobble], axis=1)
        return cls(rate_hz=rate_hz, acc_ms2=acc, gyr_dps=gyr)

"""The streaming chain for one thigh sensor: resample → gravity → rep segmentation.

``ThighPipeline.push`` takes whatever the sensor delivered (any chunk size, irregular times,
gaps) and returns the events it completes. ``run_pipeline`` is the batch form: one push over
everything, then flush — the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .orientation import GravitySettings, gravity_init, gravity_step
from .resample import ResamplerSettings, resample_init, resample_step
from .reps import RepEvent, RepSettings, RestEvent, segment_reps_flush, segment_reps_init, segment_reps_step


@dataclass(frozen=True)
class PipelineSettings:
    resampler: ResamplerSettings = field(default_factory=ResamplerSettings)
    gravity: GravitySettings = field(default_factory=GravitySettings)
    reps: RepSettings = field(default_factory=RepSettings)


@dataclass
class PipelineOutput:
    reps: list[RepEvent] = field(default_factory=list)
    rests: list[RestEvent] = field(default_factory=list)
    gaps: list[tuple[float, float]] = field(default_factory=list)
    t_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    angle_deg: np.ndarray = field(default_factory=lambda: np.empty(0))
    speed_dps: np.ndarray = field(default_factory=lambda: np.empty(0))
    g_sf: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))


class ThighPipeline:
    """Holds the state of each kernel of the chain; no maths of its own."""

    def __init__(self, settings: PipelineSettings | None = None, *, has_gyro: bool = True) -> None:
        self.settings = settings or PipelineSettings()
        self.has_gyro = has_gyro
        self._resampler = resample_init(self.settings.resampler)
        self._gravity = gravity_init(self.settings.gravity)
        self._reps = segment_reps_init(self.settings.reps)

    def push(self, t_s: np.ndarray, acc_ms2: np.ndarray, gyr_rad_s: np.ndarray | None = None) -> PipelineOutput:
        acc = np.asarray(acc_ms2, dtype=float).reshape(-1, 3)
        if self.has_gyro:
            if gyr_rad_s is None:
                raise ValueError("this pipeline was built for a gyroscope; pass gyr_rad_s")
            x = np.hstack((acc, np.asarray(gyr_rad_s, dtype=float).reshape(-1, 3)))
        else:
            x = acc
        s = self.settings
        self._resampler, rs = resample_step(s.resampler, self._resampler, t_s, x)
        gyr = rs.x[:, 3:6] if self.has_gyro else None
        self._gravity, go = gravity_step(s.gravity, self._gravity, rs.t_s, rs.x[:, 0:3], gyr)
        self._reps, ro = segment_reps_step(
            s.reps, self._reps, go.t_s, go.g, go.tilt_rate_dps, go.speed_dps
        )
        return PipelineOutput(ro.reps, ro.rests, rs.gaps, go.t_s, ro.angle_deg, go.speed_dps, go.g)

    def flush(self) -> PipelineOutput:
        ro = segment_reps_flush(self.settings.reps, self._reps)
        return PipelineOutput(ro.reps, ro.rests)


def run_pipeline(
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
    settings: PipelineSettings | None = None,
) -> PipelineOutput:
    """Batch form: one push over everything, then flush."""
    p = ThighPipeline(settings, has_gyro=gyr_rad_s is not None)
    out = p.push(t_s, acc_ms2, gyr_rad_s)
    tail = p.flush()
    out.reps += tail.reps
    out.rests += tail.rests
    return out

"""The streaming chain for one thigh sensor: resample → gravity → the counters it needs.

``ThighPipeline.push`` takes whatever the sensor delivered (any chunk size, irregular times,
gaps) and returns the events it completes. ``run_pipeline`` is the batch form: one push over
everything, then flush — the same code.

Counters (``PipelineSettings.counters``): ``reps`` (excursions from rest, with holds),
``cycles`` (circles with direction), ``impacts`` (landings; on the raw samples, since
resampling would clip spikes) and ``steps`` (swings of the thigh). Only those asked for run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .cycles import CycleEvent, CycleSettings, count_cycles_flush, count_cycles_init, count_cycles_step
from .impacts import ImpactEvent, ImpactSettings, detect_impacts_init, detect_impacts_step
from .orientation import GravitySettings, gravity_init, gravity_lists
from .reps import RepEvent, RepSettings, RestEvent, segment_reps_flush, segment_reps_init, segment_reps_step
from .resample import ResamplerSettings, resample_init, resample_lists
from .steps import StepEvent, StepSettings, count_steps_init, count_steps_step

COUNTERS = frozenset({"reps", "cycles", "impacts", "steps"})


@dataclass(frozen=True)
class PipelineSettings:
    resampler: ResamplerSettings = field(default_factory=ResamplerSettings)
    gravity: GravitySettings = field(default_factory=GravitySettings)
    reps: RepSettings = field(default_factory=RepSettings)
    cycles: CycleSettings = field(default_factory=CycleSettings)
    impacts: ImpactSettings = field(default_factory=ImpactSettings)
    steps: StepSettings = field(default_factory=StepSettings)
    counters: frozenset[str] = frozenset({"reps"})

    def __post_init__(self) -> None:
        unknown = set(self.counters) - COUNTERS
        if unknown:
            raise ValueError(f"unknown counters {sorted(unknown)}; valid: {sorted(COUNTERS)}")


@dataclass
class PipelineOutput:
    reps: list[RepEvent] = field(default_factory=list)
    rests: list[RestEvent] = field(default_factory=list)
    cycles: list[CycleEvent] = field(default_factory=list)
    impacts: list[ImpactEvent] = field(default_factory=list)
    steps: list[StepEvent] = field(default_factory=list)
    gaps: list[tuple[float, float]] = field(default_factory=list)
    t_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    angle_deg: np.ndarray = field(default_factory=lambda: np.empty(0))
    speed_dps: np.ndarray = field(default_factory=lambda: np.empty(0))
    g_sf: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))
    n_invalid: int = 0  # samples dropped because a value was NaN or infinite
    # angles given out earlier, read again by the rep kernel (RepOutput.revised_*)
    revised_t_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    revised_angle_deg: np.ndarray = field(default_factory=lambda: np.empty(0))

    def extend(self, other: PipelineOutput) -> None:
        """Append the events of a later output (arrays are left as they are)."""
        for name in ("reps", "rests", "cycles", "impacts", "steps", "gaps"):
            getattr(self, name).extend(getattr(other, name))


class ThighPipeline:
    """Holds the state of each kernel of the chain; no maths of its own."""

    def __init__(self, settings: PipelineSettings | None = None, *, has_gyro: bool = True) -> None:
        self.settings = s = settings or PipelineSettings()
        self.has_gyro = has_gyro
        self._resampler = resample_init(s.resampler)
        self._gravity = gravity_init(s.gravity)
        self._reps = segment_reps_init(s.reps)
        self._cycles = count_cycles_init(s.cycles)
        self._impacts = detect_impacts_init(s.impacts)
        self._steps = count_steps_init(s.steps)

    def push(self, t_s: np.ndarray, acc_ms2: np.ndarray, gyr_rad_s: np.ndarray | None = None) -> PipelineOutput:
        acc = np.asarray(acc_ms2, dtype=float).reshape(-1, 3)
        if self.has_gyro:
            if gyr_rad_s is None:
                raise ValueError("this pipeline was built for a gyroscope; pass gyr_rad_s")
            x = np.concatenate((acc, np.asarray(gyr_rad_s, dtype=float).reshape(-1, 3)), axis=1)
        else:
            x = acc
        s = self.settings
        out = PipelineOutput()
        t_s = np.asarray(t_s, dtype=float).reshape(-1)
        if len(x) != len(t_s):
            raise ValueError(f"x must be (n, k) with n == len(t_s); got {x.shape} and {t_s.shape}")
        ts, rows = t_s.tolist(), x.tolist()
        # NaN and inf survive a sum: one cheap test per chunk, the exact mask only when it fails
        if not math.isfinite(sum(ts) + sum(map(sum, rows))):
            finite = np.isfinite(t_s) & np.all(np.isfinite(x), axis=1)
            # a NaN would poison every filter state after it: drop the sample, count it
            out.n_invalid = int((~finite).sum())
            t_s, x, acc = t_s[finite], x[finite], acc[finite]
            ts, rows = t_s.tolist(), x.tolist()
        if "impacts" in s.counters:
            self._impacts, io = detect_impacts_step(s.impacts, self._impacts, t_s, acc)
            out.impacts = io.impacts
        # The chain runs on plain lists from here (converted once): resample → gravity; numpy
        # arrays are made once, for the rep kernel and the output.
        self._resampler, grid_t, grid_x, out.gaps, _ = resample_lists(s.resampler, self._resampler, ts, rows)
        self._gravity, g, speed, tilt = gravity_lists(s.gravity, self._gravity, grid_t, grid_x, self.has_gyro)
        m = len(grid_t)
        out.t_s = np.array(grid_t, dtype=float)
        out.g_sf = np.array(g, dtype=float).reshape(m, 3)
        out.speed_dps = np.array(speed, dtype=float)
        if "reps" in s.counters:
            self._reps, ro = segment_reps_step(s.reps, self._reps, grid_t, g, tilt, speed)
            out.reps, out.rests, out.angle_deg = ro.reps, ro.rests, ro.angle_deg
            out.revised_t_s, out.revised_angle_deg = ro.revised_t_s, ro.revised_angle_deg
        else:
            out.angle_deg = np.full(m, np.nan)
        if "cycles" in s.counters:
            self._cycles, co = count_cycles_step(s.cycles, self._cycles, out.t_s, out.g_sf)
            out.cycles = co.cycles
        if "steps" in s.counters:
            self._steps, so = count_steps_step(s.steps, self._steps, out.t_s, out.speed_dps)
            out.steps = so.steps
        return out

    def flush(self) -> PipelineOutput:
        s = self.settings
        out = PipelineOutput()
        if "reps" in s.counters:
            ro = segment_reps_flush(s.reps, self._reps)
            out.reps, out.rests = ro.reps, ro.rests
            out.revised_t_s, out.revised_angle_deg = ro.revised_t_s, ro.revised_angle_deg
        if "cycles" in s.counters:
            out.cycles = count_cycles_flush(s.cycles, self._cycles).cycles
        return out


def run_pipeline(
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
    settings: PipelineSettings | None = None,
) -> PipelineOutput:
    """Batch form: one push over everything, then flush."""
    p = ThighPipeline(settings, has_gyro=gyr_rad_s is not None)
    out = p.push(t_s, acc_ms2, gyr_rad_s)
    out.extend(p.flush())
    return out

"""Steps: the swings of the instrumented thigh while walking (monster walks, marching).

Every step of the sensor leg is a swing: a burst of angular speed of the thigh, separated
from the next by the stance phase, when the thigh turns slowly over the planted foot. The
kernel smooths the angular speed (``smooth_s``), and counts a swing when it rises above
``swing_dps`` and then falls below ``release_dps`` — with a refractory ``min_interval_s`` so
one swing's double hump counts once. One event = one step of the instrumented leg; the
other leg's steps are not seen (a second sensor sees them).

Work: O(1) per sample. Latency: the end of the swing (speed back below ``release_dps``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .stream import shallow_copy


@dataclass(frozen=True)
class StepSettings:
    swing_dps: float = 40.0
    release_dps: float = 20.0
    smooth_s: float = 0.08
    min_interval_s: float = 0.5  # one swing's double hump counts once
    max_swing_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.release_dps < self.swing_dps:
            raise ValueError("need 0 < release_dps < swing_dps")


@dataclass(frozen=True)
class StepEvent:
    start_t_s: float
    end_t_s: float
    peak_speed_dps: float


@dataclass
class StepState:
    t: float | None = None
    speed_s: float = 0.0
    in_swing: bool = False
    start: float = 0.0
    peak: float = 0.0
    last_end: float = -1e18


@dataclass
class StepOutput:
    steps: list[StepEvent] = field(default_factory=list)


def count_steps_init(settings: StepSettings) -> StepState:
    return StepState()


def count_steps_step(
    settings: StepSettings, state: StepState, t_s: np.ndarray, speed_dps: np.ndarray
) -> tuple[StepState, StepOutput]:
    st = shallow_copy(state)
    s = settings
    out = StepOutput()
    for t, w in zip(np.asarray(t_s, dtype=float).tolist(), np.asarray(speed_dps, dtype=float).tolist()):
        dt = 0.0 if st.t is None else t - st.t
        st.t = t
        if dt <= 0 or dt > 1.0:
            st.speed_s = w
        else:
            a = dt / s.smooth_s
            st.speed_s += (1.0 if a > 1.0 else a) * (w - st.speed_s)
        v = st.speed_s
        if st.in_swing:
            st.peak = max(st.peak, v)
            if v < s.release_dps:
                st.in_swing = False
                if t - st.start <= s.max_swing_s:
                    out.steps.append(StepEvent(st.start, t, st.peak))
                    st.last_end = t
        elif v > s.swing_dps and t - st.last_end >= s.min_interval_s:
            st.in_swing, st.start, st.peak = True, t, v
    return st, out


def count_steps(settings: StepSettings, t_s: np.ndarray, speed_dps: np.ndarray) -> StepOutput:
    """Batch form: init, one step over everything."""
    _, out = count_steps_step(settings, count_steps_init(settings), t_s, speed_dps)
    return out

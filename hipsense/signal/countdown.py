"""Hold countdown: is the thigh holding now, how long is left, and when to say "5 … 1, relax".

Two small streaming kernels, each a pure step over a chunk of samples (see ``stream``):

* **live hold** — on the excursion angle from rest (the rep kernel's ``angle_deg``), says
  *while it happens* that the thigh is holding, and since when. A rep's own hold is only known
  when the rep ends; a countdown must start when the hold starts. A hold starts when the
  smoothed elevation changes slower than ``still_dps`` while at least ``min_level_deg`` from
  rest, and ends when the elevation leaves a band around the level it started at (so tremor
  and a slow sag do not restart the count; lowering the leg ends it).
* **countdown** — from the start of the current hold (any source: the live hold above, or a
  stillness timer for a timed exercise) and the prescribed hold, the seconds left on every
  sample and the cues: each whole second from ``say_from_s`` down to 1 once, then 0 ("relax")
  when the time is up. A gap in the data skips to the latest number: a stale count is worse
  than a skipped one.

Both are per-sample recurrences, so any chunking gives the same output. Work O(1) per sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .stream import Kernel, shallow_copy

__all__ = [
    "COUNTDOWN", "LIVE_HOLD", "CountdownCue", "CountdownOutput", "CountdownSettings", "CountdownState",
    "LiveHoldSettings", "LiveHoldState", "countdown_init", "countdown_step", "live_hold_init", "live_hold_step",
]


# -- live hold -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveHoldSettings:
    # Below this the thigh is at rest, not holding (the caller passes the exercise's smallest
    # counted range: a hold lower than that cannot be the top of a counted rep).
    min_level_deg: float = 3.0
    # Still = the smoothed elevation changes slower than this: the rep kernel's own hold rule
    # (RepSettings.hold_speed_dps), so the countdown and the rep's reported hold agree.
    still_dps: float = 5.0
    smooth_s: float = 0.2  # the rep kernel's speed_smooth_s / peak_smooth_s
    # The hold ends when the elevation moves further than this from where it started: a
    # fraction of the level (a leg sagging a little during a 10 s hold still holds), but never
    # less than release_deg (accelerometer tilt noise and tremor are about 1°).
    release_fraction: float = 0.3
    release_deg: float = 3.0

    def __post_init__(self) -> None:
        if self.min_level_deg <= 0 or self.still_dps <= 0 or self.smooth_s <= 0:
            raise ValueError("min_level_deg, still_dps and smooth_s must be > 0")
        if not 0 < self.release_fraction < 1 or self.release_deg <= 0:
            raise ValueError("need 0 < release_fraction < 1 and release_deg > 0")


@dataclass
class LiveHoldState:
    t: float | None = None
    level: float | None = None  # elevation smoothed over smooth_s
    rate: float = 0.0  # |d level / dt| smoothed over smooth_s, deg/s
    hold_start: float | None = None
    hold_level: float = 0.0


def live_hold_init(settings: LiveHoldSettings) -> LiveHoldState:
    return LiveHoldState()


def live_hold_step(
    settings: LiveHoldSettings, state: LiveHoldState, t_s: np.ndarray, angle_deg: np.ndarray
) -> tuple[LiveHoldState, np.ndarray]:
    """One chunk: ``angle_deg`` (m,) the excursion from rest (NaN: unknown, not holding).
    Returns the hold's start time on every sample, NaN where the thigh is not holding."""
    st = shallow_copy(state)
    s = settings
    ts = np.asarray(t_s, dtype=float).tolist()
    angles = np.asarray(angle_deg, dtype=float).tolist()
    starts = [math.nan] * len(ts)
    inv_tau = 1.0 / s.smooth_s
    for i, (t, ang) in enumerate(zip(ts, angles)):
        if ang != ang:  # NaN: no rest pose yet
            st.t, st.level, st.rate, st.hold_start = t, None, 0.0, None
            continue
        dt = 0.0 if st.t is None else t - st.t
        if dt < 0 or dt > 1.0:  # a gap: start smoothing afresh
            dt = 0.0
        st.t = t
        if st.level is None:
            st.level = ang
        elif dt > 0:
            k = min(1.0, dt * inv_tau)
            prev = st.level
            st.level += k * (ang - st.level)
            st.rate += k * (abs(st.level - prev) / dt - st.rate)
        if st.hold_start is not None:
            if abs(ang - st.hold_level) > max(s.release_deg, s.release_fraction * abs(st.hold_level)):
                st.hold_start = None
        # still: the smoothed elevation barely changes, and the raw one has caught up with it
        # (on the way up the smoothing lags the angle by rate × smooth_s)
        if (st.hold_start is None and dt > 0 and st.rate < s.still_dps and ang >= s.min_level_deg
                and abs(ang - st.level) < 0.5 * s.release_deg):
            st.hold_start, st.hold_level = t, st.level
        if st.hold_start is not None:
            starts[i] = st.hold_start
    return st, np.array(starts, dtype=float)


LIVE_HOLD: Kernel[LiveHoldSettings, LiveHoldState] = Kernel("live_hold", live_hold_init, live_hold_step)


# -- countdown -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountdownSettings:
    target_s: float  # the prescribed hold
    say_from_s: int = 5  # "5, 4, 3, 2, 1, relax": counting down from further is noise

    def __post_init__(self) -> None:
        if not self.target_s > 0:
            raise ValueError(f"target_s must be > 0 (got {self.target_s})")
        if self.say_from_s < 1:
            raise ValueError("say_from_s must be >= 1")


@dataclass(frozen=True)
class CountdownCue:
    t_s: float  # the sample on which it is due
    hold_start_t_s: float
    seconds_left: int  # say_from_s … 1; 0 = time is up ("relax")


@dataclass
class CountdownState:
    hold_start: float | None = None
    said: int | None = None  # the last number cued for this hold


@dataclass
class CountdownOutput:
    remaining_s: np.ndarray = field(default_factory=lambda: np.empty(0))  # NaN: not holding
    cues: list[CountdownCue] = field(default_factory=list)


def countdown_init(settings: CountdownSettings) -> CountdownState:
    return CountdownState()


def countdown_step(
    settings: CountdownSettings, state: CountdownState, t_s: np.ndarray, hold_start_t_s: np.ndarray
) -> tuple[CountdownState, CountdownOutput]:
    """One chunk: ``hold_start_t_s`` (m,) when the current hold started, NaN when none."""
    st = shallow_copy(state)
    target, say_from = settings.target_s, settings.say_from_s
    ts = np.asarray(t_s, dtype=float).tolist()
    starts = np.asarray(hold_start_t_s, dtype=float).tolist()
    remaining = [math.nan] * len(ts)
    out = CountdownOutput()
    for i, (t, start) in enumerate(zip(ts, starts)):
        if start != start:  # NaN: not holding
            st.hold_start = st.said = None
            continue
        if start != st.hold_start:  # a new hold
            st.hold_start, st.said = start, None
        left = target - (t - start)
        remaining[i] = left if left > 0.0 else 0.0
        whole = math.ceil(left) if left > 0.0 else 0
        if whole <= say_from and (st.said is None or whole < st.said):
            out.cues.append(CountdownCue(t, start, whole))
            st.said = whole
    out.remaining_s = np.array(remaining, dtype=float)
    return st, out


COUNTDOWN: Kernel[CountdownSettings, CountdownState] = Kernel("countdown", countdown_init, countdown_step)

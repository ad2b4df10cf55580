"""Hold countdown: is the thigh holding now, how long is left, and when to say "5 … 1, relax".

Two small streaming kernels, each a pure step over a chunk of samples (see ``stream``):

* **live hold** — on the excursion angle from rest (the rep kernel's ``angle_deg``), says
  *while it happens* that the thigh is holding, and since when. A rep's own hold is only known
  when the rep ends; a countdown must start when the hold starts. A hold is a dwell: the
  elevation stays within ``dwell_deg`` for ``dwell_s`` at least ``min_level_deg`` from rest;
  it starts where the dwell began (no smoothing lag) and ends when the elevation leaves a band
  around that level (so tremor and a slow sag do not restart the count; lowering ends it).
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

from .stream import shallow_copy

__all__ = [
    "CountdownCue", "CountdownOutput", "CountdownSettings", "CountdownState",
    "LiveHoldSettings", "LiveHoldState", "countdown_init", "countdown_lists", "countdown_step", "live_hold_init",
    "live_hold_lists", "live_hold_step",
]


# -- live hold -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveHoldSettings:
    # Below this the thigh is at rest, not holding (the caller passes the exercise's smallest
    # counted range: a hold lower than that cannot be the top of a counted rep).
    min_level_deg: float = 3.0
    # Holding = the elevation has stayed within ±dwell_deg of where it was for dwell_s: slower
    # than dwell_deg / dwell_s = 5 °/s, the rep kernel's own hold rule (RepSettings.
    # hold_speed_dps). The hold starts where that dwell began, without a smoothing lag.
    dwell_deg: float = 1.5
    dwell_s: float = 0.3
    # The hold ends when the elevation moves further than this from where it started: a
    # fraction of the level (a leg sagging a little during a 10 s hold still holds), but never
    # less than release_deg (accelerometer tilt noise and tremor are about 1°).
    release_fraction: float = 0.3
    release_deg: float = 3.0

    def __post_init__(self) -> None:
        if self.min_level_deg <= 0 or self.dwell_deg <= 0 or self.dwell_s <= 0:
            raise ValueError("min_level_deg, dwell_deg and dwell_s must be > 0")
        if not 0 < self.release_fraction < 1 or self.release_deg < self.dwell_deg:
            raise ValueError("need 0 < release_fraction < 1 and release_deg >= dwell_deg")


@dataclass
class LiveHoldState:
    dwell_start: float | None = None  # the current dwell: since when, and around which angle
    dwell_angle: float = 0.0
    hold_start: float | None = None
    hold_level: float = 0.0


def live_hold_init(settings: LiveHoldSettings) -> LiveHoldState:
    return LiveHoldState()


def live_hold_step(
    settings: LiveHoldSettings, state: LiveHoldState, t_s: np.ndarray, angle_deg: np.ndarray
) -> tuple[LiveHoldState, np.ndarray]:
    """One chunk: ``angle_deg`` (m,) the excursion from rest (NaN: unknown, not holding).
    Returns the hold's start time on every sample, NaN where the thigh is not holding."""
    st, starts = live_hold_lists(settings, state, np.asarray(t_s, dtype=float).tolist(),
                                 np.asarray(angle_deg, dtype=float).tolist())
    return st, np.array(starts, dtype=float)


def live_hold_lists(
    settings: LiveHoldSettings, state: LiveHoldState, ts: list[float], angles: list[float]
) -> tuple[LiveHoldState, list[float]]:
    """:func:`live_hold_step` on plain lists, for a caller that chains kernels without numpy
    between them (the tracker)."""
    st = shallow_copy(state)
    s = settings
    starts = [math.nan] * len(ts)
    for i, (t, ang) in enumerate(zip(ts, angles)):
        if ang != ang:  # NaN: no rest pose yet
            st.dwell_start = st.hold_start = None
            continue
        if st.hold_start is not None:
            if abs(ang - st.hold_level) <= max(s.release_deg, s.release_fraction * abs(st.hold_level)):
                starts[i] = st.hold_start
                continue
            st.hold_start = st.dwell_start = None  # lowered (or raised further): over
        if st.dwell_start is None or abs(ang - st.dwell_angle) > s.dwell_deg:
            st.dwell_start, st.dwell_angle = t, ang
        elif t - st.dwell_start >= s.dwell_s and st.dwell_angle >= s.min_level_deg:
            st.hold_start, st.hold_level = st.dwell_start, st.dwell_angle
            starts[i] = st.hold_start
    return st, starts


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
    st, remaining, cues = countdown_lists(settings, state, np.asarray(t_s, dtype=float).tolist(),
                                          np.asarray(hold_start_t_s, dtype=float).tolist())
    return st, CountdownOutput(np.array(remaining, dtype=float), cues)


def countdown_lists(
    settings: CountdownSettings, state: CountdownState, ts: list[float], starts: list[float]
) -> tuple[CountdownState, list[float], list[CountdownCue]]:
    """:func:`countdown_step` on plain lists: the new state, the seconds left per sample (NaN:
    not holding) and the cues."""
    st = shallow_copy(state)
    target, say_from = settings.target_s, settings.say_from_s
    remaining = [math.nan] * len(ts)
    cues: list[CountdownCue] = []
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
            cues.append(CountdownCue(t, start, whole))
            st.said = whole
    return st, remaining, cues


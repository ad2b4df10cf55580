"""Impacts: landings of jumps and hops, from the accelerometer norm.

A landing shows as a short spike of the specific force well above 1 g. An impact is counted
when ``|a|`` rises above ``impact_g`` and the spike's peak is taken until ``|a|`` falls back
below ``release_g``; a refractory time ``min_interval_s`` keeps one landing's ringing from
counting twice. With ``require_flight`` a landing counts only if a flight phase (``|a|`` below
``flight_g``, i.e. near free fall) came within ``flight_window_s`` before it — which tells a
jump from a stamp of the foot.

This kernel runs on the raw samples (before resampling): interpolating onto a coarser grid
would clip the very spikes it looks for. Work: O(1) per sample (vectorised search for
candidates; a Python loop only over samples above threshold). Latency: the end of the spike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .stream import shallow_copy

G_MS2 = 9.80665


@dataclass(frozen=True)
class ImpactSettings:
    impact_g: float = 2.0
    release_g: float = 1.5
    min_interval_s: float = 0.35
    require_flight: bool = True
    flight_g: float = 0.6  # a thigh in flight reads 0.3–0.5 g, not 0: it is turning
    flight_window_s: float = 0.3  # the landing follows the flight directly

    def __post_init__(self) -> None:
        if not 0 < self.release_g <= self.impact_g:
            raise ValueError("need 0 < release_g <= impact_g")


@dataclass(frozen=True)
class ImpactEvent:
    t_s: float  # time of the peak
    peak_g: float
    flight_s: float | None  # length of the flight phase before it, if one was seen


@dataclass
class ImpactState:
    in_spike: bool = False
    peak_t: float = 0.0
    peak_g: float = 0.0
    last_impact_t: float = -1e18
    flight_start: float | None = None  # current/last flight phase
    flight_end: float | None = None


@dataclass
class ImpactOutput:
    impacts: list[ImpactEvent] = field(default_factory=list)


def detect_impacts_init(settings: ImpactSettings) -> ImpactState:
    return ImpactState()


def detect_impacts_step(
    settings: ImpactSettings, state: ImpactState, t_s: np.ndarray, acc_ms2: np.ndarray
) -> tuple[ImpactState, ImpactOutput]:
    st = shallow_copy(state)
    s = settings
    out = ImpactOutput()
    acc = np.asarray(acc_ms2, dtype=float).reshape(-1, 3)
    t_arr = np.asarray(t_s, dtype=float)
    if len(t_arr) == 0:
        return st, out
    norm_g = np.sqrt(np.einsum("ij,ij->i", acc, acc)) / G_MS2
    # Only samples that can change the state need the loop: above release (spikes) or in
    # flight; while inside a spike every sample matters until it is released.
    interesting = (norm_g >= s.release_g) | (norm_g <= s.flight_g)
    if st.in_spike:
        interesting[0] = True
    idx = np.flatnonzero(interesting | np.r_[False, interesting[:-1]])  # and the sample after
    ts = t_arr[idx].tolist()
    ns = norm_g[idx].tolist()
    for t, n in zip(ts, ns):
        if n <= s.flight_g:
            if st.flight_end is None or t - st.flight_end > 0.1:
                st.flight_start = t
            st.flight_end = t
        if st.in_spike:
            if n > st.peak_g:
                st.peak_t, st.peak_g = t, n
            if n < s.release_g:
                st.in_spike = False
                _emit(s, st, out)
        elif n >= s.impact_g and t - st.last_impact_t >= s.min_interval_s:
            st.in_spike, st.peak_t, st.peak_g = True, t, n
    return st, out


def _emit(s: ImpactSettings, st: ImpactState, out: ImpactOutput) -> None:
    flight = None
    if st.flight_end is not None and 0 <= st.peak_t - st.flight_end <= s.flight_window_s:
        flight = st.flight_end - (st.flight_start or st.flight_end)
    if s.require_flight and flight is None:
        return
    st.last_impact_t = st.peak_t
    st.flight_start = st.flight_end = None  # one flight, one landing
    out.impacts.append(ImpactEvent(st.peak_t, st.peak_g, flight))


def detect_impacts(settings: ImpactSettings, t_s: np.ndarray, acc_ms2: np.ndarray) -> ImpactOutput:
    """Batch form: init, one step over everything."""
    _, out = detect_impacts_step(settings, detect_impacts_init(settings), t_s, acc_ms2)
    return out

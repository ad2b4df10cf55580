"""Causal resampling of irregular samples onto a uniform time grid.

Sensors deliver samples at 25–200 Hz with jitter, dropped packets and rate changes. Every
later kernel runs on one uniform grid (``rate_hz``, 50 Hz by default), so their filter
constants mean the same thing whatever the sensor. Grid values are linear interpolations
between the two real samples around each grid time — never extrapolated, and never across a
gap longer than ``max_gap_s``: there the grid stops, the gap is reported, and the grid restarts
at the first sample after it. Nothing is invented to fill a gap.

Latency: one input sample (a grid point is emitted once the sample after it has arrived).
Work: O(1) per sample (vectorised per chunk).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ResamplerSettings:
    rate_hz: float = 50.0
    max_gap_s: float = 0.25

    def __post_init__(self) -> None:
        if not 1.0 <= self.rate_hz <= 1000.0:
            raise ValueError(f"rate_hz must be within 1..1000, got {self.rate_hz}")
        if self.max_gap_s <= 0:
            raise ValueError(f"max_gap_s must be > 0, got {self.max_gap_s}")


@dataclass
class ResamplerState:
    last_t: float | None = None  # time of the last real sample seen
    last_x: np.ndarray | None = None  # its values, (k,)
    grid_origin: float | None = None  # grid times are origin + index / rate_hz (exact,
    next_i: int = 0  # never accumulated, so any chunking yields bit-identical times)
    n_out_of_order: int = 0  # samples dropped because their time did not advance


@dataclass
class Resampled:
    t_s: np.ndarray  # (m,)
    x: np.ndarray  # (m, k)
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (last before, first after)
    n_out_of_order: int = 0


def resample_init(settings: ResamplerSettings) -> ResamplerState:
    return ResamplerState()


def _empty(k: int) -> Resampled:
    return Resampled(np.empty(0), np.empty((0, k)))


def resample_step(
    settings: ResamplerSettings, state: ResamplerState, t_s: np.ndarray, x: np.ndarray
) -> tuple[ResamplerState, Resampled]:
    """Resample one chunk. ``t_s`` (n,) seconds, ``x`` (n, k) values."""
    t_s = np.asarray(t_s, dtype=float).reshape(-1)
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or len(x) != len(t_s):
        raise ValueError(f"x must be (n, k) with n == len(t_s); got {x.shape} and {t_s.shape}")
    state = copy.copy(state)
    k = x.shape[1]
    if len(t_s) == 0:
        return state, _empty(k)

    # Drop samples whose time does not advance (duplicates, clock glitches): they cannot be
    # placed on the grid without inventing an order. Counted, never silently merged.
    prev = -np.inf if state.last_t is None else state.last_t
    keep = np.empty(len(t_s), dtype=bool)
    running = np.maximum.accumulate(np.concatenate(([prev], t_s)))[:-1]
    keep = t_s > running
    dropped = int(len(t_s) - keep.sum())
    state.n_out_of_order += dropped
    t_s, x = t_s[keep], x[keep]
    if len(t_s) == 0:
        out = _empty(k)
        out.n_out_of_order = dropped
        return state, out

    if state.last_t is None:
        tt, xx = t_s, x
        state.grid_origin, state.next_i = float(t_s[0]), 0
    else:
        tt = np.concatenate(([state.last_t], t_s))
        xx = np.vstack((state.last_x[None, :], x))

    period = 1.0 / settings.rate_hz
    gaps: list[tuple[float, float]] = []
    seg_t: list[np.ndarray] = []
    seg_x: list[np.ndarray] = []
    # Split at gaps; within each gap-free run, interpolate the grid points it covers.
    gap_idx = np.flatnonzero(np.diff(tt) > settings.max_gap_s)
    starts = np.concatenate(([0], gap_idx + 1))
    ends = np.concatenate((gap_idx, [len(tt) - 1]))
    origin, next_i = state.grid_origin, state.next_i
    for s, e in zip(starts, ends):
        if s > 0:  # a gap precedes this run: restart the grid at the first sample after it
            gaps.append((float(tt[s - 1]), float(tt[s])))
            origin, next_i = float(tt[s]), 0
        # Emit only grid times at or before the last sample: decided on the grid times
        # themselves (not a rounded index) so a chunk boundary never changes the result.
        last_i = int(np.floor((tt[e] - origin) * settings.rate_hz)) + 1
        if last_i < next_i:
            continue
        grid = origin + np.arange(next_i, last_i + 1) * period
        grid = grid[grid <= tt[e]]
        if len(grid) == 0:
            continue
        last_i = next_i + len(grid) - 1
        run_t = tt[s : e + 1]
        run_x = xx[s : e + 1]
        seg_t.append(grid)
        seg_x.append(_interpolate(grid, run_t, run_x))
        next_i = last_i + 1
    state.grid_origin, state.next_i = origin, next_i
    state.last_t = float(tt[-1])
    state.last_x = xx[-1].copy()
    if seg_t:
        out = Resampled(np.concatenate(seg_t), np.vstack(seg_x), gaps, dropped)
    else:
        out = Resampled(np.empty(0), np.empty((0, k)), gaps, dropped)
    return state, out


def _interpolate(grid: np.ndarray, run_t: np.ndarray, run_x: np.ndarray) -> np.ndarray:
    """Linear interpolation whose bracket is fixed by the data, not by where a chunk ends:
    the sample at or before each grid time, so a grid time that lands exactly on a sample
    takes that sample's value bit for bit, whichever chunk it arrived in."""
    j = np.searchsorted(run_t, grid, side="right") - 1
    last = len(run_t) - 1
    j_next = np.minimum(j + 1, last)
    span = run_t[j_next] - run_t[j]
    frac = np.divide(grid - run_t[j], span, out=np.zeros_like(grid), where=span > 0)
    return run_x[j] + (run_x[j_next] - run_x[j]) * frac[:, None]


def resample(settings: ResamplerSettings, t_s: np.ndarray, x: np.ndarray) -> Resampled:
    """Batch form: init, one step over everything."""
    _, out = resample_step(settings, resample_init(settings), t_s, x)
    return out

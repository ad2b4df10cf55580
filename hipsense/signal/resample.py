"""Causal resampling of irregular samples onto a uniform time grid.

Sensors deliver samples at 25–200 Hz with jitter, dropped packets and rate changes. Every
later kernel runs on one uniform grid (``rate_hz``, 50 Hz by default), so their filter
constants mean the same thing whatever the sensor. Grid values are linear interpolations
between the two real samples around each grid time — never extrapolated, and never across a
gap longer than ``max_gap_s``: there the grid stops, the gap is reported, and the grid restarts
at the first sample after it. Nothing is invented to fill a gap.

Latency: none beyond the sample itself (a grid point is emitted once a sample at or after it
has arrived). Work: O(1) per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .stream import shallow_copy


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
    last_x: tuple[float, ...] | None = None  # its values, (k,)
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


def resample_step(
    settings: ResamplerSettings, state: ResamplerState, t_s: np.ndarray, x: np.ndarray
) -> tuple[ResamplerState, Resampled]:
    """Resample one chunk. ``t_s`` (n,) seconds, ``x`` (n, k) values.

    A plain loop over the samples: chunks from a BLE link hold a handful of samples, where
    numpy's per-call overhead would cost more than the arithmetic (measured: 3× faster for
    5-sample chunks, as fast for whole recordings).
    """
    t_arr = np.asarray(t_s, dtype=float).reshape(-1)
    x_arr = np.asarray(x, dtype=float)
    if x_arr.ndim != 2 or len(x_arr) != len(t_arr):
        raise ValueError(f"x must be (n, k) with n == len(t_s); got {x_arr.shape} and {t_arr.shape}")
    k = x_arr.shape[1]
    state, out_t, out_x, gaps, dropped = resample_lists(settings, state, t_arr.tolist(), x_arr.tolist())
    x_out = np.array(out_x, dtype=float).reshape(len(out_t), k)
    return state, Resampled(np.array(out_t, dtype=float), x_out, gaps, dropped)


def resample_lists(
    settings: ResamplerSettings, state: ResamplerState, ts: list[float], xs_rows: list[list[float]]
) -> tuple[ResamplerState, list[float], list[list[float]], list[tuple[float, float]], int]:
    """:func:`resample_step` on plain lists (``ndarray.tolist()``), for a caller that chains
    kernels without going through numpy between them (``pipeline``). Returns the new state,
    the grid times, the grid rows, the gaps and the number of samples dropped."""
    state = shallow_copy(state)
    period = 1.0 / settings.rate_hz
    max_gap = settings.max_gap_s
    out_t: list[float] = []
    out_x: list[list[float]] = []
    gaps: list[tuple[float, float]] = []
    dropped = 0
    last_t = state.last_t
    last_x = state.last_x
    origin, next_i = state.grid_origin, state.next_i
    for t, xs in zip(ts, xs_rows):
        if last_t is not None and not t > last_t:
            # time does not advance (duplicate, clock glitch): cannot be placed without
            # inventing an order — counted, never silently merged
            dropped += 1
            continue
        if last_t is None or t - last_t > max_gap:
            if last_t is not None:
                gaps.append((last_t, t))
            origin, next_i = t, 1  # the grid restarts on this sample
            out_t.append(t)
            out_x.append(xs)
        else:
            span = t - last_t
            g = origin + next_i * period
            while g <= t:
                if g == t:
                    out_x.append(xs)
                else:
                    f = (g - last_t) / span
                    out_x.append([a + (b - a) * f for a, b in zip(last_x, xs)])
                out_t.append(g)
                next_i += 1
                g = origin + next_i * period
        last_t, last_x = t, xs
    state.n_out_of_order += dropped
    state.last_t = last_t
    # the last real sample's values, as a tuple (immutable: a later step cannot change them)
    state.last_x = None if last_x is None else tuple(last_x)
    state.grid_origin, state.next_i = origin, next_i
    return state, out_t, out_x, gaps, dropped


def resample(settings: ResamplerSettings, t_s: np.ndarray, x: np.ndarray) -> Resampled:
    """Batch form: init, one step over everything."""
    _, out = resample_step(settings, resample_init(settings), t_s, x)
    return out

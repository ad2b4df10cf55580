"""Gravity direction in the sensor frame, with online gyroscope-bias tracking.

Why our own filter rather than imufusion: ``signal/`` imports numpy and scipy only, and a thigh
rep counter needs the *gravity direction* (tilt), not heading — there is no magnetometer we
could trust indoors next to furniture. The filter is a complementary filter on the gravity
vector, the tilt half of Mahony's filter:

* predict: the gravity vector seen from the sensor turns opposite to the sensor's rotation,
  ``dg/dt = g × ω`` (ω the bias-corrected gyroscope, rad/s);
* correct: pull ``g`` toward the measured accelerometer direction with time constant
  ``acc_tau_s``, weaker when ``|a|`` is far from 1 g (the thigh is accelerating);
* bias: while the sensor is still for ``still_min_s``, the gyroscope reads its bias; track it
  with time constant ``bias_tau_s`` (the idea of Fusion's FusionOffset, implemented here).
  "Still" must not depend on the bias being known already — a gyro whose offset exceeds the
  still threshold (UCI subject 2's reads 3.4 deg/s at rest) would never be seen still and its
  bias never learned. So still means: the accelerometer's direction and norm hold steady
  (nothing turns, nothing accelerates — judged against their own recent means, whatever the
  sensor's scale), and the raw gyro stays within ``still_gyro_dps`` of its recent mean
  (tremor of a leg resting on a chair averages out of the bias; a movement does not).
* the accelerometer's own scale: cheap sensors read 1 g as 0.97–1.05 g. The norm it reads
  while still is learned (``norm_tau_s``), and "accelerating" is judged against that.

Without a gyroscope (accelerometer-only sensors) only the correction runs: a first-order
low-pass of the accelerometer direction with ``acc_only_tau_s``.

Input must be on a uniform grid (``resample``); dt is still taken from the timestamps, and a
step longer than ``max_dt_s`` restarts the estimate from the accelerometer (after a gap the
old state means nothing).

Outputs per sample: the gravity axis ``g`` (m, 3) as the unit vector an accelerometer at rest
reads (pointing *up*, away from the floor, in the sensor frame),
and ``speed_dps`` (m,): the angular speed in deg/s — the bias-corrected gyroscope norm, or the
rate of change of the gravity direction without a gyroscope.
Latency: none (causal, per sample). Work: O(1) per sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .stream import shallow_copy

GRAVITY_MS2 = 9.80665


@dataclass(frozen=True)
class GravitySettings:
    acc_tau_s: float = 0.15
    acc_only_tau_s: float = 0.15
    acc_norm_tolerance: float = 0.15  # |a|/g outside 1 ± this: trust the accelerometer less
    bias_tau_s: float = 3.0
    still_gyro_dps: float = 10.0  # raw gyro within this of its recent mean: tremor, not motion
    still_min_s: float = 1.0
    max_bias_dps: float = 10.0
    max_dt_s: float = 0.3
    gyro_mean_tau_s: float = 0.5  # recent mean of the raw gyro, for stillness
    acc_mean_tau_s: float = 1.0  # recent mean of the accelerometer direction and norm
    acc_steady_deg: float = 1.0  # accelerometer direction within this of its recent mean
    norm_tau_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("acc_tau_s", "acc_only_tau_s", "bias_tau_s", "max_dt_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")


@dataclass
class GravityState:
    t: float | None = None
    g: tuple[float, float, float] = (0.0, 0.0, -1.0)
    bias: tuple[float, float, float] = (0.0, 0.0, 0.0)  # rad/s
    still_s: float = 0.0
    w_mean: tuple[float, float, float] | None = None  # raw gyro, recent mean, rad/s
    u_mean: tuple[float, float, float, float] | None = None  # accelerometer direction and norm, recent means
    g_norm: float = GRAVITY_MS2  # what this accelerometer reads at rest, m/s²
    bias_known: bool = False  # False until the first still spell: then its mean is the bias
    spell_sum: tuple[float, float, float, int] = (0.0, 0.0, 0.0, 0)  # raw gyro over the spell


@dataclass
class GravityOutput:
    t_s: np.ndarray  # (m,)
    g: np.ndarray  # (m, 3) unit vectors
    speed_dps: np.ndarray  # (m,) gyro norm (bias-corrected), or tilt rate without a gyro
    tilt_rate_dps: np.ndarray  # (m,) rate of change of the gravity direction, deg/s
    bias_rad_s: np.ndarray  # (3,) bias at the end of the chunk


def gravity_init(settings: GravitySettings) -> GravityState:
    return GravityState()


def gravity_step(
    settings: GravitySettings,
    state: GravityState,
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
) -> tuple[GravityState, GravityOutput]:
    """One chunk: ``t_s`` (m,), ``acc_ms2`` (m, 3), ``gyr_rad_s`` (m, 3) or None."""
    m = len(t_s)
    ts = np.asarray(t_s, dtype=float).tolist()
    acc = np.asarray(acc_ms2, dtype=float).reshape(m, 3)
    if gyr_rad_s is None:
        rows = acc.tolist()
    else:
        rows = np.concatenate((acc, np.asarray(gyr_rad_s, dtype=float).reshape(m, 3)), axis=1).tolist()
    state, out_g, out_w, out_tilt = gravity_lists(settings, state, ts, rows, gyr_rad_s is not None)
    g_arr = np.array(out_g, dtype=float).reshape(m, 3)
    return state, GravityOutput(
        np.asarray(t_s, dtype=float), g_arr, np.array(out_w, dtype=float), np.array(out_tilt, dtype=float),
        np.array(state.bias),
    )


def gravity_lists(
    settings: GravitySettings,
    state: GravityState,
    ts: list[float],
    rows: list,
    has_gyro: bool,
) -> tuple[GravityState, list[tuple[float, float, float]], list[float], list[float]]:
    """:func:`gravity_step` on plain lists, for a caller that chains kernels without numpy
    between them (``pipeline``): ``rows`` are ``[ax, ay, az, gx, gy, gz]`` per sample, or
    ``[ax, ay, az]`` without a gyroscope. Returns the new state and, per sample, ``g``,
    ``speed_dps`` and ``tilt_rate_dps``."""
    gyr = True if has_gyro else None  # only tested against None below: the rates are in the rows
    state = shallow_copy(state)
    m = len(ts)
    # plain lists, turned into arrays once by the caller: numpy item assignment costs more per sample
    out_g: list[tuple[float, float, float]] = []
    out_w: list[float] = []
    out_tilt: list[float] = []

    t_prev = state.t
    gx, gy, gz = state.g
    bx, by, bz = state.bias
    still_s = state.still_s
    w_mean, u_mean, g_norm = state.w_mean, state.u_mean, state.g_norm
    bias_known, spell_sum = state.bias_known, state.spell_sum
    s = settings
    # settings as locals: attribute lookups cost, per sample, on a Pi
    still_rad2 = math.radians(s.still_gyro_dps) ** 2
    max_bias = math.radians(s.max_bias_dps)
    chord2_steady = (2.0 * math.sin(math.radians(s.acc_steady_deg) / 2.0)) ** 2
    g_lo, g_hi = 0.8 * GRAVITY_MS2, 1.2 * GRAVITY_MS2
    max_dt, still_min = s.max_dt_s, s.still_min_s
    inv_acc_mean_tau, inv_gyro_mean_tau = 1.0 / s.acc_mean_tau_s, 1.0 / s.gyro_mean_tau_s
    inv_acc_tau, inv_acc_only_tau, tolerance = 1.0 / s.acc_tau_s, 1.0 / s.acc_only_tau_s, s.acc_norm_tolerance
    deg = 180.0 / math.pi
    for i in range(m):
        t = ts[i]
        if gyr is None:
            ax, ay, az = rows[i]
        else:
            ax, ay, az, rx, ry, rz = rows[i]
        an = math.sqrt(ax * ax + ay * ay + az * az)
        if an > 1e-6:
            ux, uy, uz = ax / an, ay / an, az / an
        else:
            ux, uy, uz = gx, gy, gz
        dt = -1.0 if t_prev is None else t - t_prev
        t_prev = t
        if dt <= 0.0 or dt > max_dt:
            # first sample, or after a gap: start from the accelerometer direction
            gx, gy, gz = ux, uy, uz
            still_s = 0.0
            w_mean = None if gyr is None else (rx, ry, rz)
            u_mean = (ux, uy, uz, an)
            out_g.append((gx, gy, gz))
            out_w.append(0.0)
            out_tilt.append(0.0)
            continue
        norm_err = abs(an / g_norm - 1.0)
        # The accelerometer direction and norm against their recent means: steady means
        # neither turning nor accelerating (judged without assuming the sensor's 1 g scale).
        # (the mean of unit vectors is not renormalised: while steady it stays within 1e-4 of
        # unit length, and the squared chord to it is the test — no sqrt per sample)
        mx, my, mz, mn = u_mean
        dx, dy, dz = ux - mx, uy - my, uz - mz
        steady = dx * dx + dy * dy + dz * dz < chord2_steady and abs(an - mn) < 0.02 * mn and g_lo < an < g_hi
        ku = dt * inv_acc_mean_tau
        if ku > 1.0:
            ku = 1.0
        u_mean = (mx + ku * dx, my + ku * dy, mz + ku * dz, mn + ku * (an - mn))
        ku = dt * inv_gyro_mean_tau
        if ku > 1.0:
            ku = 1.0
        if gyr is not None:
            wx, wy, wz = rx - bx, ry - by, rz - bz
            wn = math.sqrt(wx * wx + wy * wy + wz * wz)
            # predict: dg/dt = g × ω
            px = gx + dt * (gy * wz - gz * wy)
            py = gy + dt * (gz * wx - gx * wz)
            pz = gz + dt * (gx * wy - gy * wx)
            k = dt * inv_acc_tau
            if norm_err > tolerance:
                k *= 0.1
            # still (see the module doc): nothing turns or accelerates, the gyro only trembles
            mwx, mwy, mwz = w_mean
            ex, ey, ez = rx - mwx, ry - mwy, rz - mwz
            w_mean = (mwx + ku * ex, mwy + ku * ey, mwz + ku * ez)
            if steady and ex * ex + ey * ey + ez * ez < still_rad2:
                still_s += dt
                sx, sy, sz, sn = spell_sum
                spell_sum = (sx + rx, sy + ry, sz + rz, sn + 1)
                if still_s >= still_min:
                    if bias_known:
                        kb = dt / s.bias_tau_s
                        bx += kb * (rx - bx)
                        by += kb * (ry - by)
                        bz += kb * (rz - bz)
                    else:  # the first still spell: its mean is the bias, no slow start from 0
                        sx, sy, sz, sn = spell_sum
                        bx, by, bz = sx / sn, sy / sn, sz / sn
                        bias_known = True
                    bn = math.sqrt(bx * bx + by * by + bz * bz)
                    if bn > max_bias:  # a "bias" this large is motion, not offset
                        f = max_bias / bn
                        bx, by, bz = bx * f, by * f, bz * f
                    g_norm += min(1.0, dt / s.norm_tau_s) * (an - g_norm)
            else:
                still_s = 0.0
                spell_sum = (0.0, 0.0, 0.0, 0)
            speed = wn * deg
        else:
            px, py, pz = gx, gy, gz
            k = dt * inv_acc_only_tau
            if norm_err > tolerance:
                k *= 0.3
            if steady:
                still_s += dt
                if still_s >= still_min:
                    g_norm += min(1.0, dt / s.norm_tau_s) * (an - g_norm)
            else:
                still_s = 0.0
            speed = -1.0  # filled below from the change of direction
        if k > 1.0:
            k = 1.0
        nx = px + k * (ux - px)
        ny = py + k * (uy - py)
        nz = pz + k * (uz - pz)
        nn = math.sqrt(nx * nx + ny * ny + nz * nz)
        if nn < 1e-9:
            nx, ny, nz, nn = ux, uy, uz, 1.0
        nx, ny, nz = nx / nn, ny / nn, nz / nn
        dot = nx * gx + ny * gy + nz * gz
        dot = 1.0 if dot > 1.0 else (-1.0 if dot < -1.0 else dot)
        tilt = math.acos(dot) * deg / dt
        if speed < 0.0:
            speed = tilt
        gx, gy, gz = nx, ny, nz
        out_g.append((gx, gy, gz))
        out_w.append(speed)
        out_tilt.append(tilt)
    state.t = t_prev
    state.g = (gx, gy, gz)
    state.bias = (bx, by, bz)
    state.still_s = still_s
    state.w_mean, state.u_mean, state.g_norm = w_mean, u_mean, g_norm
    state.bias_known, state.spell_sum = bias_known, spell_sum
    return state, out_g, out_w, out_tilt


def estimate_gravity(
    settings: GravitySettings,
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
) -> GravityOutput:
    """Batch form: init, one step over everything."""
    _, out = gravity_step(settings, gravity_init(settings), t_s, acc_ms2, gyr_rad_s)
    return out

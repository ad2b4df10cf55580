"""Gravity direction in the sensor frame, with online gyroscope-bias tracking.

Why our own filter rather than imufusion: ``signal/`` imports numpy and scipy only, and a thigh
rep counter needs the *gravity direction* (tilt), not heading — there is no magnetometer we
could trust indoors next to furniture. The filter is a complementary filter on the gravity
vector, the tilt half of Mahony's filter:

* predict: the gravity vector seen from the sensor turns opposite to the sensor's rotation,
  ``dg/dt = g × ω`` (ω the bias-corrected gyroscope, rad/s);
* correct: pull ``g`` toward the measured accelerometer direction with time constant
  ``acc_tau_s``, weaker when ``|a|`` is far from 1 g (the thigh is accelerating);
* bias: while the sensor is still (low gyro rate, ``|a|`` ≈ 1 g, for ``still_min_s``), the
  gyroscope reads its bias; track it with time constant ``bias_tau_s`` (the idea of Fusion's
  FusionOffset, implemented here).

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

import copy
import math
from dataclasses import dataclass

import numpy as np

GRAVITY_MS2 = 9.80665


@dataclass(frozen=True)
class GravitySettings:
    acc_tau_s: float = 0.15
    acc_only_tau_s: float = 0.15
    acc_norm_tolerance: float = 0.15  # |a|/g outside 1 ± this: trust the accelerometer less
    bias_tau_s: float = 3.0
    still_gyro_dps: float = 3.0
    still_min_s: float = 1.0
    max_bias_dps: float = 10.0
    max_dt_s: float = 0.3

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
    state = copy.copy(state)
    m = len(t_s)
    out_g = np.empty((m, 3))
    out_w = np.empty(m)
    out_tilt = np.empty(m)
    ts = np.asarray(t_s, dtype=float).tolist()
    acc = np.asarray(acc_ms2, dtype=float).reshape(m, 3).tolist()
    gyr = None if gyr_rad_s is None else np.asarray(gyr_rad_s, dtype=float).reshape(m, 3).tolist()

    t_prev = state.t
    gx, gy, gz = state.g
    bx, by, bz = state.bias
    still_s = state.still_s
    s = settings
    still_rad = math.radians(s.still_gyro_dps)
    max_bias = math.radians(s.max_bias_dps)
    deg = 180.0 / math.pi
    for i in range(m):
        t = ts[i]
        ax, ay, az = acc[i]
        an = math.sqrt(ax * ax + ay * ay + az * az)
        if an > 1e-6:
            ux, uy, uz = ax / an, ay / an, az / an
        else:
            ux, uy, uz = gx, gy, gz
        dt = -1.0 if t_prev is None else t - t_prev
        t_prev = t
        if dt <= 0.0 or dt > s.max_dt_s:
            # first sample, or after a gap: start from the accelerometer direction
            gx, gy, gz = ux, uy, uz
            still_s = 0.0
            out_g[i] = (gx, gy, gz)
            out_w[i] = 0.0
            out_tilt[i] = 0.0
            continue
        norm_err = abs(an / GRAVITY_MS2 - 1.0)
        if gyr is not None:
            wx, wy, wz = gyr[i]
            wx -= bx
            wy -= by
            wz -= bz
            wn = math.sqrt(wx * wx + wy * wy + wz * wz)
            # predict: dg/dt = g × ω
            px = gx + dt * (gy * wz - gz * wy)
            py = gy + dt * (gz * wx - gx * wz)
            pz = gz + dt * (gx * wy - gy * wx)
            k = dt / s.acc_tau_s
            if norm_err > s.acc_norm_tolerance:
                k *= 0.1
            # bias: learn only while still; the raw reading then *is* the bias
            if wn < still_rad and norm_err < 0.05:
                still_s += dt
                if still_s >= s.still_min_s:
                    kb = dt / s.bias_tau_s
                    rx, ry, rz = gyr[i]
                    bx += kb * (rx - bx)
                    by += kb * (ry - by)
                    bz += kb * (rz - bz)
                    bn = math.sqrt(bx * bx + by * by + bz * bz)
                    if bn > max_bias:  # a "bias" this large is motion, not offset
                        f = max_bias / bn
                        bx, by, bz = bx * f, by * f, bz * f
            else:
                still_s = 0.0
            speed = wn * deg
        else:
            px, py, pz = gx, gy, gz
            k = dt / s.acc_only_tau_s
            if norm_err > s.acc_norm_tolerance:
                k *= 0.3
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
        out_g[i] = (gx, gy, gz)
        out_w[i] = speed
        out_tilt[i] = tilt
    state.t = t_prev
    state.g = (gx, gy, gz)
    state.bias = (bx, by, bz)
    state.still_s = still_s
    return state, GravityOutput(np.asarray(t_s, dtype=float), out_g, out_w, out_tilt, np.array(state.bias))


def estimate_gravity(
    settings: GravitySettings,
    t_s: np.ndarray,
    acc_ms2: np.ndarray,
    gyr_rad_s: np.ndarray | None = None,
) -> GravityOutput:
    """Batch form: init, one step over everything."""
    _, out = gravity_step(settings, gravity_init(settings), t_s, acc_ms2, gyr_rad_s)
    return out

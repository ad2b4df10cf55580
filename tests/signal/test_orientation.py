from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from hipsense.signal.orientation import GRAVITY_MS2, GravitySettings, estimate_gravity


def test_static_tilt_gives_the_gravity_direction():
    down = Rotation.from_euler("xyz", [30, -20, 10], degrees=True).apply([0, 0, -1.0])
    n = 500
    t = np.arange(n) / 50
    acc = np.tile(-GRAVITY_MS2 * down, (n, 1))  # the accelerometer reads "up"
    out = estimate_gravity(GravitySettings(), t, acc, np.zeros((n, 3)))
    # g is the direction of the specific force an accelerometer at rest reads: up
    assert np.allclose(out.g[-1], -down, atol=1e-6)


def test_gyro_bias_is_learned_while_still():
    rng = np.random.default_rng(1)
    n = 50 * 30
    t = np.arange(n) / 50
    bias = np.array([0.01, -0.02, 0.015])  # rad/s, ~1 deg/s
    acc = np.tile([0, 0, GRAVITY_MS2], (n, 1)) + rng.normal(0, 0.02, (n, 3))
    gyr = bias + rng.normal(0, 0.002, (n, 3))
    out = estimate_gravity(GravitySettings(), t, acc, gyr)
    assert np.allclose(out.bias_rad_s, bias, atol=2e-3)


def test_rotation_is_tracked_with_the_gyroscope():
    # rotate 60 deg about x in 1 s, then hold; the filter follows without lag-induced error
    fs = 100
    t = np.arange(0, 3, 1 / fs)
    w = np.where(t < 1, np.radians(60), 0.0)
    ang = np.cumsum(w) / fs
    rot = Rotation.from_rotvec(np.column_stack([ang, np.zeros_like(ang), np.zeros_like(ang)]))
    acc = rot.inv().apply([0, 0, GRAVITY_MS2])
    gyr = np.column_stack([w, np.zeros_like(w), np.zeros_like(w)])
    out = estimate_gravity(GravitySettings(), t, acc, gyr)
    truth = acc / GRAVITY_MS2  # g is the "up" direction the accelerometer reads at rest
    err = np.degrees(np.arccos(np.clip(np.sum(out.g * truth, axis=1), -1, 1)))
    assert err.max() < 2.0

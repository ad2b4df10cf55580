"""The calibrated angle filter, written out for speed (``angles._thigh_filter``), gives exactly
what the readable per-sample reference gives (``_orientation_update`` then ``_track_bias``,
the kernel as it was written before issue 14's speed work): bit for bit, on synthetic motion
with gaps and jitter, on noise, and on hostile input (NaN, zero and huge readings, repeated
and backwards times), with and without a gyroscope, on either leg. And the live view's
newest-reading form agrees with the full kernel's last finite sample. Each test runs against the
pure-Python filter and the compiled one (``hipsense/signal/_anglefilter.c``; skipped where it is
not built — tests/signal/test_compiled_angle_filter.py fails if it should have been)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hipsense.exercises.catalogue import get_exercise
from hipsense.service.live_angle import CalibratedAngle
from hipsense.signal import angles as A
from hipsense.signal.calibration import Calibration
from tests.synth import synthesize

MOUNTING = ((0.0, 0.0, 1.0), (-1.0, 0.0, 0.0), (0.0, -1.0, 0.0))
KERNELS = [pytest.param(False, id="python"),
           pytest.param(True, id="compiled",
                        marks=pytest.mark.skipif(not A.COMPILED_FILTER_AVAILABLE, reason="compiled filter not built"))]


def _reference_step(settings, state, t_s, acc_ms2, gyr_rad_s=None):
    """thigh_angles_step as it was: one _orientation_update and _track_bias per sample."""
    t_s = np.asarray(t_s, dtype=float).reshape(-1)
    acc = A._rows(t_s, acc_ms2, "acc_ms2")
    gyr = A._rows(t_s, gyr_rad_s, "gyr_rad_s")
    o = A.shallow_copy(state.orientation)
    bias = state.bias
    fs = settings.filter
    (m00, m01, m02), (m10, m11, m12), (m20, m21, m22) = settings.calibration.mounting
    mirror_a, mirror_r = (-1.0, 1.0) if settings.calibration.side == "right" else (1.0, -1.0)
    tilt_cos = math.cos(math.radians(fs.rotation_tilt_deg))
    n = len(t_s)
    out = np.empty((n, 3))
    observable = np.zeros(n, dtype=bool)
    speed = np.empty(n)
    ups = np.empty((n, 3))
    ts = t_s.tolist()
    for i in range(n):
        ax, ay, az = acc[i]
        a = (m00 * ax + m01 * ay + m02 * az, m10 * ax + m11 * ay + m12 * az,
             m20 * ax + m21 * ay + m22 * az)
        w = None
        if gyr is not None:
            gx, gy, gz = gyr[i][0] - bias[0], gyr[i][1] - bias[1], gyr[i][2] - bias[2]
            w = (m00 * gx + m01 * gy + m02 * gz, m10 * gx + m11 * gy + m12 * gz,
                 m20 * gx + m21 * gy + m22 * gz)
        t_prev = o.t
        sp, _ = A._orientation_update(fs, o, ts[i], a, w)
        if gyr is not None and t_prev is not None:
            bias = A._track_bias(fs, bias, tuple(gyr[i]), ts[i] - t_prev, o.still_s)
        f, ab, r = A._euler_zxy(o.q)
        u = A._qrot_inv(o.q, o.up_ref)
        out[i] = (f * A._DEG, mirror_a * ab * A._DEG, mirror_r * r * A._DEG if w is not None else math.nan)
        long_vertical = abs(u[1]) > tilt_cos
        observable[i] = w is not None and (not long_vertical or o.since_rezero_s <= fs.rotation_trust_s)
        speed[i] = sp * A._DEG
        ups[i] = u
    return (A.ThighAngleState(o, bias),
            A.ThighAngles(t_s, out[:, 0], out[:, 1], out[:, 2], observable, speed, ups))


FIELDS = ("flexion_deg", "abduction_deg", "rotation_deg", "rotation_observable", "speed_dps", "up_thigh")


def _same(a, b):
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def _recordings():
    syn = synthesize(get_exercise("hip_abductor"), seed=5, reps=3, drop_fraction=0.02, timestamp_jitter_s=0.002)
    yield "synthetic", syn.t_s, syn.acc_ms2, syn.gyr_rad_s
    rng = np.random.default_rng(7)
    n = 3000
    t = np.cumsum(rng.choice([0.01, 0.01, 0.01, 0.02, 0.5, 0.0, -0.01], size=n, p=[.7, .25, .04, .005, .003, .001, .001]))
    # blocks of 2-3 s: still in the rest pose (heading re-zero, bias tracking), still
    # elsewhere, and moving (no tilt correction)
    block = np.repeat(rng.integers(0, 3, size=n // 200 + 1), 200)[:n, None]
    rest = np.tile([-9.80665, 0.0, 0.0], (n, 1)) + rng.normal(0, 0.01, (n, 3))  # thigh "up" = rest up
    tilted = np.tile([-6.0, 7.0, 3.0], (n, 1)) + rng.normal(0, 0.01, (n, 3))
    acc = np.where(block == 0, rest, np.where(block == 1, tilted, rng.normal(0, 6, (n, 3))))
    gyr = np.where(block < 2, rng.normal(0.01, 0.002, (n, 3)), rng.normal(0, 2, (n, 3)))
    yield "noise", t, acc, gyr
    hostile_acc, hostile_gyr, hostile_t = acc.copy(), gyr.copy(), t.copy()
    hostile_acc[100:110] = 0.0
    hostile_acc[200] = np.nan
    hostile_gyr[300] = np.inf
    hostile_acc[400] = 1e6  # far out of range (1e300 overflows ** 2 in both)
    hostile_t[500] = np.nan
    hostile_gyr[600:620] = 0.5  # a constant "bias" far above the cap
    yield "hostile", hostile_t, hostile_acc, hostile_gyr


@pytest.mark.parametrize("compiled", KERNELS)
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("with_gyro", [True, False])
def test_fast_filter_equals_the_reference_bit_for_bit(side, with_gyro, compiled):
    calibration = Calibration(mounting=MOUNTING, side=side, gyro_bias_rad_s=(0.01, -0.02, 0.005),
                              acc_one_g_ms2=9.9)
    settings = A.ThighAngleSettings(calibration)
    rng = np.random.default_rng(1)
    for name, t, acc, gyr in _recordings():
        gyr = gyr if with_gyro else None
        ref_state, fast_state = A.thigh_angles_init(settings), A.thigh_angles_init(settings)
        cuts = np.r_[0, np.sort(rng.choice(np.arange(1, len(t)), size=60, replace=False)), len(t)]
        for a, b in zip(cuts[:-1], cuts[1:]):
            g = None if gyr is None else gyr[a:b]
            ref_state, ref = _reference_step(settings, ref_state, t[a:b], acc[a:b], g)
            fast_state, fast = A.thigh_angles_step(settings, fast_state, t[a:b], acc[a:b], g, compiled=compiled)
            _same(ref, fast)
            assert str(ref_state) == str(fast_state), name  # NaN-tolerant equality, floats printed exactly


@pytest.mark.parametrize("compiled", KERNELS)
@pytest.mark.parametrize("with_gyro", [True, False])
def test_the_live_reading_is_the_full_kernels_newest_finite_sample(with_gyro, compiled):
    calibration = Calibration(mounting=MOUNTING, side="right")
    settings = A.ThighAngleSettings(calibration)
    for _, t, acc, gyr in _recordings():
        gyr = gyr if with_gyro else None
        live = CalibratedAngle(calibration, compiled=compiled)
        state = A.thigh_angles_init(settings)
        expected = None
        for a in range(0, len(t), 12):
            g = None if gyr is None else gyr[a:a + 12]
            state, out = A.thigh_angles_step(settings, state, t[a:a + 12], acc[a:a + 12], g)
            finite = np.flatnonzero(np.isfinite(out.flexion_deg))
            if len(finite):
                i = finite[-1]
                ab = float(out.abduction_deg[i])
                expected = (float(out.t_s[i]), float(out.flexion_deg[i]), ab if math.isfinite(ab) else None)
            reading = live.push(t[a:a + 12], acc[a:a + 12], g)
            got = None if reading is None else (reading.t_s, reading.thigh_angle_deg, reading.abduction_deg)
            assert str(got) == str(expected)

"""Thigh angles: with a calibration from a synthetic session (random mounting), the angles of
the synthetic generator's thigh match its truth within 2°; without one, the principal-axis
fallback follows the main motion; every kernel gives the same output for any chunking."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hipsense.exercises.catalogue import get_exercise
from hipsense.signal.angles import (
    COMPILED_FILTER_AVAILABLE,
    PrincipalAngleSettings,
    ThighAngleSettings,
    principal_angle,
    principal_angle_init,
    principal_angle_step,
    thigh_angles,
    thigh_angles_init,
    thigh_angles_step,
)
from hipsense.signal.calibration import (
    fit_calibration,
    fit_flexion_axis,
    fit_long_axis,
    fit_still,
)
from tests.calibration.sessions import session
from tests.synth import synthesize


def _calibrate(mounting, bias, side, seed):
    s = session(mounting, seed=seed, gyro_bias_rad_s=bias)
    still = fit_still(*s.part("still"))
    long_axis = fit_long_axis(*s.part("stand"))
    t, acc, gyr = s.part("swing")
    flexion = fit_flexion_axis(t, acc, gyr, gyro_bias_rad_s=still.gyro_bias_rad_s,
                               standing_up_sensor=long_axis.axis_sensor)
    fit = fit_calibration(still, long_axis, flexion, side=side)
    assert fit.ok, fit.problems
    return fit.calibration


def _standing_flexion():
    abductor = get_exercise("hip_abductor")
    motion = dataclasses.replace(abductor.motion, kind="flexion", axis_thigh=(0.0, 0.0, 1.0),
                                 rom_deg_min=30.0, rom_deg_max=70.0)
    return dataclasses.replace(abductor, id="standing_hip_flexion", motion=motion)


CASES = [
    # (exercise, side, seed): standing (the calibration's own posture) and lying postures
    ("hip_abductor", "right", 0),
    ("hip_abductor", "left", 1),
    ("standing_hip_flexion", "right", 2),
    ("standing_hip_flexion", "left", 3),
    ("straight_leg_raise", "right", 4),
    ("side_lying_hip_abduction", "left", 5),
    ("reverse_clam_shell", "right", 6),
]


@pytest.mark.parametrize(("exercise", "side", "seed"), CASES)
def test_calibrated_angles_match_the_truth_within_2_degrees(exercise, side, seed):
    spec = _standing_flexion() if exercise == "standing_hip_flexion" else get_exercise(exercise)
    rng = np.random.default_rng(100 + seed)
    mounting = Rotation.from_quat(rng.normal(size=4))  # uniform random mounting
    bias = rng.normal(0.0, 0.01, 3)  # the same sensor: same bias in both recordings
    calibration = _calibrate(mounting, bias, side, seed)
    syn = synthesize(spec, side=side, seed=seed, mounting=mounting, gyro_bias_rad_s=bias)
    settings = ThighAngleSettings(calibration, rest_gravity_thigh=spec.rest_gravity_for(side))
    out = thigh_angles(settings, syn.t_s, syn.acc_ms2, syn.gyr_rad_s)
    estimated = np.stack([out.flexion_deg, out.abduction_deg, out.rotation_deg], axis=1)
    error = np.abs(estimated - syn.thigh_angles_deg)
    assert error.max() < 2.0, f"max error per angle {error.max(axis=0)}"
    # And the motion is really there: the test is not passing on a thigh that stays put.
    assert np.ptp(syn.thigh_angles_deg, axis=0).max() > 10.0


def test_without_a_gyroscope_rotation_is_not_observable():
    spec = get_exercise("hip_abductor")
    mounting = Rotation.random(random_state=11)
    calibration = _calibrate(mounting, np.zeros(3), "right", 11)
    syn = synthesize(spec, seed=11, mounting=mounting)
    out = thigh_angles(ThighAngleSettings(calibration), syn.t_s, syn.acc_ms2, None)
    assert np.isnan(out.rotation_deg).all() and not out.rotation_observable.any()
    # Tilt alone still gives abduction, within what a low-pass of the accelerometer allows.
    assert np.abs(out.abduction_deg - syn.thigh_angles_deg[:, 1]).max() < 8.0


@pytest.mark.parametrize(("exercise", "column"), [("hip_abductor", 1), ("straight_leg_raise", 0),
                                                   ("reverse_clam_shell", 2)])
def test_fallback_follows_the_principal_motion_without_calibration(exercise, column):
    syn = synthesize(get_exercise(exercise), seed=1)  # random mounting, no calibration
    out = principal_angle(PrincipalAngleSettings(), syn.t_s, syn.acc_ms2, syn.gyr_rad_s)
    known = np.isfinite(out.angle_deg)
    assert known.mean() > 0.9
    error = np.abs(out.angle_deg[known] - syn.thigh_angles_deg[known, column])
    assert error.max() < 2.0


def _chunked(step, init, settings, syn, gyr, rng):
    state = init(settings)
    cuts = np.sort(rng.choice(np.arange(1, len(syn.t_s)), size=40, replace=False))
    outs = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(syn.t_s)]):
        state, out = step(settings, state, syn.t_s[a:b], syn.acc_ms2[a:b],
                          None if gyr is None else gyr[a:b])
        outs.append(out)
    # Empty chunks too: they must change nothing.
    state, empty = step(settings, state, syn.t_s[:0], syn.acc_ms2[:0],
                        None if gyr is None else gyr[:0])
    assert len(empty.t_s) == 0
    return outs


@pytest.mark.parametrize("compiled", [
    pytest.param(False, id="python"),
    pytest.param(True, id="compiled", marks=pytest.mark.skipif(not COMPILED_FILTER_AVAILABLE, reason="not built"))])
@pytest.mark.parametrize("with_gyro", [True, False])
def test_streaming_equals_batch_for_any_chunking(with_gyro, compiled):
    """The chunks through the compiled filter when ``compiled``, the batch always in Python."""
    spec = get_exercise("hip_abductor")
    syn = synthesize(spec, seed=5, reps=3, drop_fraction=0.02, timestamp_jitter_s=0.002)
    gyr = syn.gyr_rad_s if with_gyro else None
    mounting = syn.mounting
    calibration = _calibrate(mounting, syn.gyro_bias_rad_s, "right", 5)
    rng = np.random.default_rng(0)

    settings = ThighAngleSettings(calibration)
    batch = thigh_angles(settings, syn.t_s, syn.acc_ms2, gyr)
    outs = _chunked(functools.partial(thigh_angles_step, compiled=compiled), thigh_angles_init, settings, syn, gyr,
                    rng)
    for name in ("flexion_deg", "abduction_deg", "rotation_deg", "rotation_observable",
                 "speed_dps", "up_thigh"):
        np.testing.assert_array_equal(np.concatenate([getattr(o, name) for o in outs]),
                                      getattr(batch, name), err_msg=name)

    p_settings = PrincipalAngleSettings()
    p_batch = principal_angle(p_settings, syn.t_s, syn.acc_ms2, gyr)
    p_outs = _chunked(principal_angle_step, principal_angle_init, p_settings, syn, gyr, rng)
    np.testing.assert_array_equal(np.concatenate([o.angle_deg for o in p_outs]), p_batch.angle_deg)
    np.testing.assert_array_equal(p_outs[-1].axis, p_batch.axis)


G_SCALE = 1.05  # UCI subject 2's thigh accelerometer reads 1.05 g at rest in one session


def test_calibrated_angles_with_an_accelerometer_reading_5_percent_high():
    # The calibration records what this accelerometer reads at rest; "not accelerating" is
    # judged against that, so tilt correction and bias tracking still run. Were it judged
    # against 9.81, neither would, and a bias that wandered since calibration (here by
    # 0.4 deg/s) would turn into drift.
    spec, side, seed = get_exercise("hip_abductor"), "right", 21
    mounting = Rotation.random(random_state=seed)
    bias = np.radians([0.5, -0.3, 0.2])
    s = session(mounting, seed=seed, gyro_bias_rad_s=bias)
    parts = {name: s.part(name) for name in ("still", "stand", "swing")}
    parts = {k: (t, G_SCALE * acc, gyr) for k, (t, acc, gyr) in parts.items()}
    still = fit_still(*parts["still"])
    long_axis = fit_long_axis(*parts["stand"])
    t, acc, gyr = parts["swing"]
    flexion = fit_flexion_axis(t, acc, gyr, gyro_bias_rad_s=still.gyro_bias_rad_s,
                               standing_up_sensor=long_axis.axis_sensor)
    fit = fit_calibration(still, long_axis, flexion, side=side)
    assert fit.ok, fit.problems
    assert fit.calibration.acc_one_g_ms2 == pytest.approx(G_SCALE * 9.80665, rel=0.01)
    wandered = bias + np.radians([0.4, 0.0, -0.2])
    syn = synthesize(spec, side=side, seed=seed, mounting=mounting, gyro_bias_rad_s=wandered)
    settings = ThighAngleSettings(fit.calibration, rest_gravity_thigh=spec.rest_gravity_for(side))
    out = thigh_angles(settings, syn.t_s, G_SCALE * syn.acc_ms2, syn.gyr_rad_s)
    error = np.abs(np.stack([out.flexion_deg, out.abduction_deg], axis=1) - syn.thigh_angles_deg[:, :2])
    assert error.max() < 3.0, f"max error {error.max(axis=0)}"


def test_fallback_with_an_accelerometer_reading_5_percent_high():
    # without a calibration the rest spell teaches the sensor's own 1 g
    syn = synthesize(get_exercise("straight_leg_raise"), seed=1)
    out = principal_angle(PrincipalAngleSettings(), syn.t_s, G_SCALE * syn.acc_ms2, syn.gyr_rad_s)
    known = np.isfinite(out.angle_deg)
    assert known.mean() > 0.9
    assert np.abs(out.angle_deg[known] - syn.thigh_angles_deg[known, 0]).max() < 2.0

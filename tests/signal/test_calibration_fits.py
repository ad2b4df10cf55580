"""Calibration fits on synthetic sessions with a random mounting: the rotation sensor → thigh is
recovered, and each quality check names what went wrong."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hipsense.signal.calibration import (
    Calibration,
    FlexionAxisFit,
    fit_calibration,
    fit_flexion_axis,
    fit_long_axis,
    fit_personal_rom,
    fit_still,
)
from tests.calibration.sessions import rotation_error_deg, session


def _fit(s, side="right", **swing_options):
    still = fit_still(*s.part("still"))
    long_axis = fit_long_axis(*s.part("stand"))
    t, acc, gyr = s.part("swing")
    flexion = fit_flexion_axis(t, acc, gyr, gyro_bias_rad_s=still.gyro_bias_rad_s,
                               standing_up_sensor=long_axis.axis_sensor, **swing_options)
    return fit_calibration(still, long_axis, flexion, side=side)


@pytest.mark.parametrize("seed", range(6))
def test_random_mounting_is_recovered_within_2_degrees(seed):
    mounting = Rotation.random(random_state=seed)
    s = session(mounting, seed=seed)
    fit = _fit(s)
    assert fit.ok, fit.problems
    assert rotation_error_deg(fit.calibration.matrix, mounting) < 2.0
    assert np.allclose(fit.calibration.gyro_bias_rad_s, s.gyro_bias_rad_s, atol=0.002)
    assert fit.flexion_axis.forward_deg > fit.flexion_axis.backward_deg
    assert abs(fit.calibration.axis_angle_deg - 90.0) < 2.0


def test_without_a_gyroscope_the_swing_plane_gives_the_axis():
    mounting = Rotation.random(random_state=42)
    s = session(mounting, seed=42)
    long_axis = fit_long_axis(s.part("stand")[0], s.part("stand")[1])
    t, acc, _ = s.part("swing")
    flexion = fit_flexion_axis(t, acc, None, standing_up_sensor=long_axis.axis_sensor)
    still = fit_still(s.part("still")[0], s.part("still")[1])
    fit = fit_calibration(still, long_axis, flexion, side="left")
    assert fit.ok, fit.problems
    assert fit.calibration.gyro_bias_rad_s is None
    assert rotation_error_deg(fit.calibration.matrix, mounting) < 2.0


def test_a_symmetric_swing_takes_its_first_move_as_forward():
    mounting = Rotation.random(random_state=7)
    s = session(mounting, seed=7, forward_deg=25.0, backward_deg=25.0)
    fit = _fit(s)
    assert fit.flexion_axis.sign_from == "first_move"
    assert rotation_error_deg(fit.calibration.matrix, mounting) < 2.0


def test_moving_during_the_still_spell_is_reported_in_plain_words():
    s = session(Rotation.random(random_state=1), seed=1, still_jiggle_deg=4.0)
    still = fit_still(*s.part("still"))
    assert [p.code for p in still.problems] == ["moved_while_still"]
    assert "moved while it should have been still" in still.problems[0].message


def test_a_tiny_swing_is_too_small():
    s = session(Rotation.random(random_state=2), seed=2, forward_deg=5.0, backward_deg=3.0)
    fit = _fit(s)
    assert "swing_too_small" in [p.code for p in fit.problems]
    assert not fit.ok


def test_a_sideways_swing_is_not_planar():
    s = session(Rotation.random(random_state=3), seed=3, sideways_deg=30.0)
    fit = _fit(s)
    assert "swing_not_planar" in [p.code for p in fit.problems]


def test_axes_far_from_perpendicular_are_reported():
    still = fit_still(*session(Rotation.identity(), seed=4).part("still"))
    long_axis = fit_long_axis(*session(Rotation.identity(), seed=4).part("stand"))
    tilted = np.array([0.0, np.sin(np.radians(30)), np.cos(np.radians(30))])  # 60° from y
    flexion = FlexionAxisFit(tuple(tilted), 40.0, 15.0, 0.01, "range")
    fit = fit_calibration(still, long_axis, flexion, side="right")
    assert [p.code for p in fit.problems] == ["axes_not_perpendicular"]
    # The matrix is still a proper rotation (Gram–Schmidt), so it can be shown to the user.
    m = fit.calibration.matrix
    assert np.allclose(m @ m.T, np.eye(3)) and np.linalg.det(m) > 0


def test_saturation_is_reported():
    s = session(Rotation.identity(), seed=5)
    t, acc, gyr = s.part("swing")
    flexion = fit_flexion_axis(t, acc, gyr, gyr_full_scale_rad_s=0.5)
    assert "saturated" in [p.code for p in flexion.problems]


def test_too_little_data_is_a_problem_not_an_exception():
    t = np.arange(5) / 100.0
    acc = np.tile([0.0, 0.0, 9.81], (5, 1))
    assert fit_still(t, acc, np.zeros((5, 3))).problems[0].code == "too_short"
    assert fit_long_axis(t, acc).problems[0].code == "too_short"
    assert fit_flexion_axis(t, acc).problems[0].code == "too_short"


def test_personal_rom_is_the_median_peak():
    t = np.arange(0, 20, 0.01)
    peaks = [30.0, 34.0, 32.0, 36.0, 31.0]
    angle = np.zeros_like(t)
    for k, peak in enumerate(peaks):
        centre = 2.0 + 3.5 * k
        angle += peak * np.exp(-0.5 * ((t - centre) / 0.5) ** 2)
    rom = fit_personal_rom("hip_abductor", t, angle, expected_reps=5)
    assert rom.ok and len(rom.peaks_deg) == 5
    assert rom.rom_deg == pytest.approx(32.0, abs=0.2)
    assert fit_personal_rom("hip_abductor", t, angle * 0.01).problems[0].code == "no_reps"


def test_calibration_value_rejects_a_non_rotation():
    with pytest.raises(ValueError):
        Calibration(mounting=((1, 0, 0), (0, 1, 0), (0, 0, -1)))
    with pytest.raises(ValueError):
        Calibration(mounting=tuple(map(tuple, np.eye(3))), side="middle")

"""Sanity of the synthetic thigh-IMU generator (tests/synth.py): physics and truth bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hipsense.exercises.catalogue import load_catalogue
from tests.synth import GRAVITY_MS2, SynthImu, synthesize

CATALOGUE = load_catalogue()
ALL_IDS = list(CATALOGUE)
EXACT = {"acc_noise_ms2": 0.0, "gyr_noise_rad_s": 0.0, "tremor_deg": 0.0}


def _at_rest(rec: SynthImu, seconds: float = 1.0) -> np.ndarray:
    return rec.t_s < seconds  # every recording opens with lead_s (3 s) of rest


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_accelerometer_reads_gravity_at_rest(exercise_id):
    rec = synthesize(CATALOGUE[exercise_id], seed=3, **EXACT)
    rest = _at_rest(rec)
    norms = np.linalg.norm(rec.acc_ms2[rest], axis=1)
    np.testing.assert_allclose(norms, GRAVITY_MS2, atol=1e-3)
    # In the thigh frame, the accelerometer points "up": opposite to the posture's gravity.
    in_thigh = rec.mounting.apply(rec.acc_ms2[rest])
    up = np.broadcast_to(-GRAVITY_MS2 * rec.rest_gravity_thigh, in_thigh.shape)
    np.testing.assert_allclose(in_thigh, up, atol=1e-3)
    bias = np.broadcast_to(rec.gyro_bias_rad_s, (rest.sum(), 3))
    np.testing.assert_allclose(rec.gyr_rad_s[rest], bias, atol=1e-6)


def test_accelerometer_norm_with_default_noise_is_close_to_gravity():
    rec = synthesize(CATALOGUE["bridge"], seed=4)
    norms = np.linalg.norm(rec.acc_ms2[_at_rest(rec)], axis=1)
    assert abs(norms.mean() - GRAVITY_MS2) < 0.05
    assert norms.std() < 0.2


def _integrate_gyro(rec: SynthImu, i0: int, i1: int) -> Rotation:
    """Sensor-frame orientation change from sample i0 to i1 (bias removed, midpoint rule)."""
    gyr = rec.gyr_rad_s - rec.gyro_bias_rad_s
    dt = np.diff(rec.t_s[i0:i1 + 1])
    mid = 0.5 * (gyr[i0:i1] + gyr[i0 + 1:i1 + 1])
    change = Rotation.identity()
    for w, step in zip(mid, dt):
        change = change * Rotation.from_rotvec(w * step)
    return change


@pytest.mark.parametrize(
    ("exercise_id", "rate_hz", "tolerance_deg"),
    [("straight_leg_raise", 100.0, 0.5), ("hip_abductor", 50.0, 0.5),
     ("single_leg_hip_circles", 100.0, 1.0), ("clam_shells", 25.0, 1.5),
     ("scorpion", 200.0, 0.5), ("speed_skaters", 100.0, 1.5)],
)
def test_gyro_integrates_to_the_true_orientation_change(exercise_id, rate_hz, tolerance_deg):
    rec = synthesize(CATALOGUE[exercise_id], rate_hz=rate_hz, reps=3, seed=5, **EXACT)
    i0 = int(np.searchsorted(rec.t_s, rec.reps[0].start_s)) - 1
    # End in the middle of the last rep, away from rest, so the change is a real movement.
    last = rec.reps[-1]
    i1 = int(np.searchsorted(rec.t_s, (last.start_s + last.end_s) / 2))
    sensor_to_world = rec.thigh_to_world * rec.mounting
    truth = sensor_to_world[i0].inv() * sensor_to_world[i1]
    error = truth.inv() * _integrate_gyro(rec, i0, i1)
    assert np.degrees(error.magnitude()) < tolerance_deg
    assert np.degrees(truth.magnitude()) > 1.0  # the window really contains a movement


def test_mounting_rotates_both_sensors():
    spec = CATALOGUE["hip_abductor"]
    mount = Rotation.from_euler("xyz", [30, -60, 120], degrees=True)
    aligned = synthesize(spec, seed=6, mounting=None, gyro_bias_rad_s=(0, 0, 0), **EXACT)
    mounted = synthesize(spec, seed=6, mounting=mount, gyro_bias_rad_s=(0, 0, 0), **EXACT)
    assert mounted.mounting is mount
    np.testing.assert_allclose(mounted.acc_ms2, mount.inv().apply(aligned.acc_ms2), atol=1e-9)
    np.testing.assert_allclose(mounted.gyr_rad_s, mount.inv().apply(aligned.gyr_rad_s),
                               atol=1e-9)
    assert not np.allclose(mounted.acc_ms2, aligned.acc_ms2)


def test_random_mounting_differs_between_seeds():
    spec = CATALOGUE["bridge"]
    first, second = synthesize(spec, seed=1), synthesize(spec, seed=2)
    assert (first.mounting.inv() * second.mounting).magnitude() > 0.1


@pytest.mark.parametrize("exercise_id", ALL_IDS)
def test_true_rep_count_equals_the_request(exercise_id):
    spec = CATALOGUE[exercise_id]
    rec = synthesize(spec, reps=4, sets=2, seed=7, rest_between_sets_s=5.0)
    per_set = 4 * max(1, len(spec.motion.directions))
    assert len(rec.reps) == 2 * per_set
    assert [r.set_index for r in rec.reps] == [0] * per_set + [1] * per_set
    for rep, following in zip(rec.reps, rec.reps[1:]):
        assert rep.end_s <= following.start_s
    for rep in rec.reps:
        assert rec.t_s[0] < rep.start_s < rep.end_s < rec.t_s[-1]
        if rep.hold_start_s is not None:
            assert rep.start_s <= rep.hold_start_s <= rep.hold_end_s <= rep.end_s


def test_default_rep_count_is_the_dose_minimum():
    rec = synthesize(CATALOGUE["bridge"], seed=8)
    assert len(rec.reps) == CATALOGUE["bridge"].dose.reps_min == 15
    # Bridge holds 2-5 s: every true rep carries a hold of about 2 s.
    holds = [r.hold_end_s - r.hold_start_s for r in rec.reps]
    assert min(holds) > 1.5 and max(holds) < 2.5


def test_thigh_angles_follow_the_motion_and_the_world():
    spec = CATALOGUE["straight_leg_raise"]
    rec = synthesize(spec, reps=2, seed=9, hold_s=3.0, **EXACT)
    rep = rec.reps[0]
    during_hold = (rec.t_s > rep.hold_start_s) & (rec.t_s < rep.hold_end_s)
    np.testing.assert_allclose(rec.thigh_angles_deg[during_hold, 0], rep.peak_deg, atol=1e-6)
    assert rep.peak_deg > 0  # flexion is positive
    # The knee (thigh -y) rises off the floor by the flexion angle.
    knee_up = rec.thigh_to_world.apply([0.0, -1.0, 0.0])[:, 2]
    np.testing.assert_allclose(np.degrees(np.arcsin(knee_up[during_hold])), rep.peak_deg,
                               atol=1e-6)


@pytest.mark.parametrize("side", ["right", "left"])
def test_abduction_is_positive_and_lifts_the_leg_on_both_sides(side):
    rec = synthesize(CATALOGUE["side_lying_hip_abduction"], side=side, reps=1, seed=10, **EXACT)
    rep = rec.reps[0]
    mid = np.argmin(np.abs(rec.t_s - (rep.hold_start_s + rep.hold_end_s) / 2))
    assert rec.thigh_angles_deg[mid, 1] == pytest.approx(rep.peak_deg, abs=1e-6)
    knee_height = rec.thigh_to_world.apply([0.0, -1.0, 0.0])[:, 2]
    assert knee_height[mid] > knee_height[0] + 0.2
    expected_up = (0.0, 0.0, 1.0) if side == "right" else (0.0, 0.0, -1.0)
    np.testing.assert_allclose(rec.mounting.apply(rec.acc_ms2[0]) / GRAVITY_MS2, expected_up,
                               atol=1e-3)


def test_hip_circles_go_round_in_the_requested_direction():
    spec = CATALOGUE["single_leg_hip_circles"]
    rec = synthesize(spec, reps=3, seed=11, **EXACT)
    axis = np.asarray(spec.motion.axis_for("right"))
    relative = (rec.thigh_to_world[0].inv() * rec.thigh_to_world)  # vs. the rest pose
    knee = relative.apply([0.0, -1.0, 0.0])
    for direction in spec.motion.directions:
        reps = [r for r in rec.reps if r.direction == direction]
        assert len(reps) == 3
        window = (rec.t_s >= reps[0].start_s) & (rec.t_s <= reps[-1].end_s)
        # Unwrapped angle of the knee around the cone's centre, seen along the axis.
        centre = knee[window].mean(axis=0)
        offset = knee[window] - centre
        e1 = np.cross(axis, [1.0, 0.0, 0.0])
        e2 = np.cross(axis, e1)
        turned = np.unwrap(np.arctan2(offset @ e2, offset @ e1))
        turns = (turned[-1] - turned[0]) / (2 * np.pi)
        sign = 1 if direction == "counterclockwise" else -1
        assert turns * sign == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize("exercise_id", ["half_jacks", "speed_skaters"])
def test_jumps_show_free_fall_and_a_landing_spike(exercise_id):
    rec = synthesize(CATALOGUE[exercise_id], reps=4, seed=12, **EXACT)
    norm = np.linalg.norm(rec.acc_ms2, axis=1)
    assert norm.max() > 3 * GRAVITY_MS2
    assert norm.min() < 0.2 * GRAVITY_MS2
    # Landings (~6 g) are sharper than push-offs (~3 g).
    spikes = np.flatnonzero((norm[1:] > 4 * GRAVITY_MS2) & (norm[:-1] <= 4 * GRAVITY_MS2))
    jumps_per_rep = 2 if exercise_id == "half_jacks" else 1
    assert len(spikes) == jumps_per_rep * 4


def test_monster_walk_steps_land():
    rec = synthesize(CATALOGUE["monster_walks"], reps=6, seed=13, **EXACT)
    norm = np.linalg.norm(rec.acc_ms2, axis=1)
    # Heel strikes (~2 g) stand above the swing of the leg (~1.3 g).
    high = norm > 1.7 * GRAVITY_MS2
    strikes = np.flatnonzero(high[1:] & ~high[:-1])
    assert len(strikes) == 2 * 6  # both feet land once per step of the sensor leg


def test_quadruped_punches_barely_move_the_thigh():
    rec = synthesize(CATALOGUE["quadruped_punches"], reps=3, seed=14, **EXACT)
    assert np.abs(rec.thigh_angles_deg).max() < 5.0


def test_jitter_and_dropped_samples():
    spec = CATALOGUE["bridge"]
    clean = synthesize(spec, reps=3, seed=15)
    rough = synthesize(spec, reps=3, seed=15, timestamp_jitter_s=0.002, drop_fraction=0.1)
    assert rough.dropped_samples == len(clean.t_s) - len(rough.t_s) > 0
    assert rough.dropped_samples == pytest.approx(0.1 * len(clean.t_s), abs=1)
    assert np.all(np.diff(rough.t_s) > 0)
    assert not np.allclose(np.diff(rough.t_s), 1 / rough.rate_hz)
    assert len(rough.acc_ms2) == len(rough.gyr_rad_s) == len(rough.thigh_angles_deg) == len(
        rough.t_s)


def test_same_seed_same_recording_and_rate_is_respected():
    spec = CATALOGUE["clam_shells"]
    a, b = synthesize(spec, reps=2, seed=16, rate_hz=60.0), synthesize(spec, reps=2, seed=16,
                                                                      rate_hz=60.0)
    np.testing.assert_array_equal(a.acc_ms2, b.acc_ms2)
    assert np.median(np.diff(a.t_s)) == pytest.approx(1 / 60.0)
    assert a.acc_ms2.shape == a.gyr_rad_s.shape == (len(a.t_s), 3)


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match="rate_hz"):
        synthesize(CATALOGUE["bridge"], rate_hz=10.0)
    with pytest.raises(ValueError, match="side"):
        synthesize(CATALOGUE["bridge"], side="both")

"""Catalogue-wide recognition for a calibrated sensor, on synthetic data (tests/synth.py) with
random mountings whose calibration is known. Synthetic: checks the logic, claims no accuracy."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from hipsense.exercises.catalogue import load_catalogue
from hipsense.exercises.posture_recognition import recognise_by_posture
from tests.synth import synthesize

CATALOGUE = load_catalogue()
MOVING = [i for i, s in CATALOGUE.items() if s.measure != "timed"]


def _distinct(a: str, b: str) -> bool:
    """Two exercises a thigh can tell apart by posture (≥ 45°) or working axis (≥ 45°)."""
    sa, sb = CATALOGUE[a], CATALOGUE[b]
    dp = np.degrees(np.arccos(np.clip(np.dot(sa.rest_gravity_thigh, sb.rest_gravity_thigh), -1, 1)))
    da = np.degrees(np.arccos(np.clip(abs(np.dot(sa.motion.axis_thigh, sb.motion.axis_thigh)), -1, 1)))
    return dp >= 45 or da >= 45 or (sa.measure == "impacts") != (sb.measure == "impacts")


@pytest.mark.parametrize("exercise_id", MOVING)
def test_true_exercise_is_among_the_best_of_the_whole_catalogue(exercise_id):
    d = synthesize(CATALOGUE[exercise_id], seed=11, rate_hz=50)
    r = recognise_by_posture(d.acc_ms2, d.gyr_rad_s, d.mounting.as_matrix(), "right", CATALOGUE)
    best = max(r.scores.values())
    assert r.scores[exercise_id] >= 0.9 * best
    # and it only commits to an answer when that answer is right
    assert r.exercise_id in (exercise_id, "unknown")


@pytest.mark.parametrize("exercise_id", MOVING)
def test_within_a_prescription_of_distinct_exercises_it_is_named(exercise_id):
    others = [o for o in MOVING if o != exercise_id and _distinct(o, exercise_id)]
    rng = np.random.default_rng(zlib.crc32(exercise_id.encode()))  # stable across runs
    picks = list(rng.choice(others, size=min(2, len(others)), replace=False))
    if len(picks) == 2 and not _distinct(picks[0], picks[1]):
        picks = picks[:1]
    d = synthesize(CATALOGUE[exercise_id], seed=5, rate_hz=100, side="left")
    r = recognise_by_posture(
        d.acc_ms2, d.gyr_rad_s, d.mounting.as_matrix(), "left", CATALOGUE, [exercise_id, *picks]
    )
    assert r.exercise_id == exercise_id, (r, picks)


def test_accelerometer_only_lying_exercises():
    for exercise_id in ("side_lying_hip_abduction", "side_to_side", "prone_hip_extension"):
        d = synthesize(CATALOGUE[exercise_id], seed=2, rate_hz=50)
        candidates = ["side_lying_hip_abduction", "side_to_side", "prone_hip_extension", "straight_leg_raise"]
        r = recognise_by_posture(d.acc_ms2, None, d.mounting.as_matrix(), "right", CATALOGUE, candidates)
        assert r.exercise_id == exercise_id


def test_a_pose_no_exercise_uses_is_unknown():
    # knee straight up above the hip (a shoulder stand): nothing in the catalogue goes there
    n = 500
    acc = np.tile([0.0, -9.81, 0.0], (n, 1))  # thigh frame = sensor frame; "up" reads -y
    r = recognise_by_posture(acc, np.zeros((n, 3)), np.eye(3), "right", CATALOGUE)
    assert r.exercise_id == "unknown"

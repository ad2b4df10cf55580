"""Exercise recognition (accelerometer only) on real MEx recordings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from hipsense.evaluation.mex import evaluate_mex, read_mex, read_mex_file
from hipsense.exercises.recognition import (
    FEATURE_NAMES,
    GRAVITY_MS2,
    MEX_EXERCISES,
    Recognition,
    RecognitionModel,
    Window,
    extract_features,
    load_model,
    recognise,
    recognise_recording,
    train_recognition_model,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "mex"
SHARED_MEX = Path("/work/shared/datasets/mex-thigh")


@pytest.fixture(scope="module")
def recordings():
    return read_mex(DATA)


def _one(recordings, rid):
    return next(r for r in recordings if r.id == rid)


def _resample(t, acc, t_new):
    return np.column_stack([np.interp(t_new, t, acc[:, k]) for k in range(3)])


# -- the shipped model -----------------------------------------------------------------------


def test_shipped_model_carries_citation_and_all_exercises():
    model = load_model()
    assert set(model.classes) == set(MEX_EXERCISES.values())
    assert model.feature_names == FEATURE_NAMES
    assert "arXiv:1908.08992" in model.meta["citation"]
    assert "CC BY 4.0" in model.meta["licence"]
    assert 0.5 < model.temperature < 50
    assert RecognitionModel.from_dict(json.loads(json.dumps(model.to_dict()))).to_dict() == (
        model.to_dict()
    )


def test_shipped_model_names_every_shipped_recording(recordings):
    assert len(recordings) == 16
    for r in recordings:
        rec = recognise_recording(r.t_s, r.acc_ms2)
        assert rec.exercise_id == r.exercise, (r.id, rec)
        assert 0.5 <= rec.confidence <= 1.0
        assert math.isclose(sum(rec.scores.values()), 1.0, rel_tol=1e-9)


def test_single_window_recognition(recordings):
    r = _one(recordings, "07/07_act_1")  # superman
    m = (r.t_s >= 10) & (r.t_s < 25)
    rec = recognise(Window(r.t_s[m], r.acc_ms2[m]))
    assert rec.exercise_id == "quadruped_opposite_arm_leg"
    assert rec.reason is None and rec.known
    # tuples and mappings are accepted as windows too
    assert recognise((r.t_s[m], r.acc_ms2[m])).exercise_id == rec.exercise_id
    assert recognise({"t_s": r.t_s[m], "acc_ms2": r.acc_ms2[m]}).exercise_id == rec.exercise_id


def test_restricted_candidates(recordings):
    r = _one(recordings, "10/01_act_1")  # knee rolling
    rec = recognise_recording(r.t_s, r.acc_ms2, candidates=["bridge", "side_to_side"])
    assert rec.exercise_id == "side_to_side"
    assert set(rec.scores) == {"bridge", "side_to_side"}
    # the answer never leaves the prescription: without the true exercise among the candidates
    # it is one of the candidates or "unknown"
    rec = recognise_recording(r.t_s, r.acc_ms2, candidates=["clam_shells", "press_ups"])
    assert rec.exercise_id in {"clam_shells", "press_ups", "unknown"}
    assert set(rec.scores) == {"clam_shells", "press_ups"}
    # ids the model does not know are ignored; none known → unknown
    rec = recognise_recording(r.t_s, r.acc_ms2, candidates=["side_to_side", "hip_circles"])
    assert rec.exercise_id == "side_to_side" and set(rec.scores) == {"side_to_side"}
    assert recognise_recording(r.t_s, r.acc_ms2, candidates=["hip_circles"]).reason == (
        "no_candidates"
    )


# -- unknown ---------------------------------------------------------------------------------


def test_still_window_is_unknown():
    rng = np.random.default_rng(1)
    t = np.arange(0, 15, 0.01)
    for g_dir in ([1.0, 0.0, 0.0], [0.3, 0.9, 0.3], [0.0, 0.0, 1.0]):
        g = np.asarray(g_dir) / np.linalg.norm(g_dir)
        acc = g * GRAVITY_MS2 + rng.normal(0, 0.005, (len(t), 3))
        rec = recognise(Window(t, acc))
        assert rec.exercise_id == "unknown" and rec.reason == "still"


def test_short_window_is_unknown(recordings):
    r = _one(recordings, "07/07_act_1")
    m = r.t_s < 3.0
    rec = recognise(Window(r.t_s[m], r.acc_ms2[m]))
    assert rec == Recognition("unknown", 0.0, {}, "too_short")
    assert recognise_recording(r.t_s[m], r.acc_ms2[m]).exercise_id == "unknown"
    assert recognise(Window(r.t_s[:1], r.acc_ms2[:1])).reason == "too_short"


def test_atypical_window_is_unknown():
    # violent shaking, ~3 g: nothing like an exercise on the floor
    t = np.arange(0, 15, 0.01)
    rng = np.random.default_rng(2)
    acc = np.array([0.0, 0.0, GRAVITY_MS2]) + rng.normal(0, 30.0, (len(t), 3))
    assert recognise(Window(t, acc)).exercise_id == "unknown"


# -- robustness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flip",
    [np.diag([-1.0, -1.0, 1.0]), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0])],
    ids=["upside-down", "other-leg", "face-flip"],
)
def test_features_ignore_axis_sign_conventions(recordings, flip):
    """A sensor strapped upside down or on the other thigh gives the same features."""
    r = _one(recordings, "10/02_act_1")
    m = r.t_s < 15
    a = extract_features(r.t_s[m], r.acc_ms2[m])
    b = extract_features(r.t_s[m], r.acc_ms2[m] @ flip.T)
    for k in FEATURE_NAMES:
        assert b[k] == pytest.approx(a[k], abs=1e-6), k


def test_small_mounting_rotation_keeps_the_answer(recordings):
    """The sensor turned 10° on the skin, any way: same exercise for every shipped recording."""
    rng = np.random.default_rng(3)
    from scipy.spatial.transform import Rotation

    for r in recordings:
        axis = rng.normal(size=3)
        rot = Rotation.from_rotvec(np.radians(10) * axis / np.linalg.norm(axis)).as_matrix()
        rec = recognise_recording(r.t_s, r.acc_ms2 @ rot.T)
        assert rec.exercise_id == r.exercise, r.id


def test_mounting_undoes_any_rotation(recordings):
    """The features are not invariant to an arbitrary rotation (posture needs the thigh axis);
    a known mounting (from calibration) undoes it exactly."""
    from scipy.spatial.transform import Rotation

    r = _one(recordings, "07/05_act_1")
    rot = Rotation.from_euler("xyz", [70, -40, 120], degrees=True).as_matrix()
    turned = r.acc_ms2 @ rot.T
    a = extract_features(r.t_s, r.acc_ms2)
    b = extract_features(r.t_s, turned, mounting=rot.T)
    for k in FEATURE_NAMES:
        assert b[k] == pytest.approx(a[k], abs=1e-6), k
    assert recognise_recording(r.t_s, turned, mounting=rot.T).exercise_id == "press_ups"


@pytest.mark.parametrize("rate_hz", [25.0, 52.0, 200.0])
def test_other_sampling_rates(recordings, rate_hz):
    for rid in ("07/01_act_1", "10/06_act_1", "07/04_act_2"):
        r = _one(recordings, rid)
        t_new = np.arange(0.0, r.t_s[-1], 1.0 / rate_hz)
        rec = recognise_recording(t_new, _resample(r.t_s, r.acc_ms2, t_new))
        assert rec.exercise_id == r.exercise, (rid, rate_hz, rec)


def test_irregular_sampling(recordings):
    """Jittered timestamps, 20 % of samples lost, a 1.5 s gap: same features, same answer."""
    rng = np.random.default_rng(4)
    r = _one(recordings, "07/07_act_1")
    t_new = np.sort(rng.uniform(0.0, r.t_s[-1], size=int(r.t_s[-1] * 50)))
    t_new = t_new[(t_new < 20.0) | (t_new > 21.5)]
    acc_new = _resample(r.t_s, r.acc_ms2, t_new)
    assert recognise_recording(t_new, acc_new).exercise_id == r.exercise
    m_old, m_new = r.t_s < 15, t_new < 15
    a = extract_features(r.t_s[m_old], r.acc_ms2[m_old])
    b = extract_features(t_new[m_new], acc_new[m_new])
    assert b["elevation_deg"] == pytest.approx(a["elevation_deg"], abs=2.0)
    assert b["tilt_range_deg"] == pytest.approx(a["tilt_range_deg"], rel=0.1)
    # unsorted input is sorted, not rejected
    perm = rng.permutation(len(t_new))
    assert recognise_recording(t_new[perm], acc_new[perm]).exercise_id == r.exercise


def test_gyroscope_is_accepted_and_ignored(recordings):
    r = _one(recordings, "10/07_act_1")
    m = r.t_s < 15
    gyr = np.ones((int(m.sum()), 3))
    assert recognise(Window(r.t_s[m], r.acc_ms2[m], gyr)).scores == (
        recognise(Window(r.t_s[m], r.acc_ms2[m])).scores
    )


# -- training and evaluation -----------------------------------------------------------------


def test_training_is_reproducible(recordings):
    by_subject: dict[str, list] = {}
    for r in recordings:
        by_subject.setdefault(r.subject, []).append((r.exercise, r.t_s, r.acc_ms2))
    m1 = train_recognition_model(by_subject)
    m2 = train_recognition_model(by_subject)
    assert m1.to_dict() == m2.to_dict()
    assert set(m1.classes) == set(MEX_EXERCISES.values())


def test_reader(tmp_path):
    f = tmp_path / "01_act_1.csv"
    f.write_text(
        "2018-11-08 11:34:51.474000,-0.5,-0.8,-0.1\n"
        "garbage line\n"
        "2018-11-08 11:34:51.484000,-0.5,-0.8,-0.1\n"
    )
    t, acc = read_mex_file(f)
    assert t.tolist() == pytest.approx([0.0, 0.01])
    assert acc[0] == pytest.approx(np.array([-0.5, -0.8, -0.1]) * GRAVITY_MS2)
    with pytest.raises(FileNotFoundError):
        read_mex(tmp_path / "nowhere")


def test_evaluation_report_shape():
    report = evaluate_mex(DATA)
    assert report["dataset"] == "mex"
    s = report["summary"]
    for k in ("exact_rate", "within1_rate", "mae", "reps_true", "reps_counted", "miss_rate",
              "false_rate", "f1", "hold_median_s", "hold_within_rate", "fast_flagged_rate",
              "low_rom_flagged_rate"):
        assert k in s and s[k] is None
    assert s["sets"] == 16 == len(report["sets"])
    assert 0.0 <= s["recognition_accuracy"] <= 1.0
    first = report["sets"][0]
    assert set(first) == {"id", "exercise", "predicted", "true", "counted", "error", "confidence"}
    assert first["id"] == "07/01_act_1" and first["exercise"] == "side_to_side"
    conf = report["confusion"]
    assert conf["labels"] == list(MEX_EXERCISES.values())
    assert sum(map(sum, conf["matrix"])) + sum(conf["unknown"]) == 16
    json.dumps(report)


@pytest.mark.skipif(
    not SHARED_MEX.is_dir(),
    reason=f"full MEx data set not present at {SHARED_MEX} (CI runs without it)",
)
def test_leave_one_subject_out_on_full_data_set():
    report = evaluate_mex(SHARED_MEX)
    assert report["summary"]["sets"] == 80
    assert report["summary"]["recognition_accuracy"] >= 0.90


@pytest.mark.skipif(
    not SHARED_MEX.is_dir(),
    reason=f"full MEx data set not present at {SHARED_MEX} (CI runs without it)",
)
def test_the_shipped_model_is_what_the_documented_command_rebuilds(tmp_path):
    """save_model's docstring gives the command; training is deterministic: byte for byte."""
    from hipsense.evaluation.mex import train_mex_model
    from hipsense.exercises.recognition import save_model

    rebuilt = tmp_path / "recognition_model.json"
    save_model(train_mex_model(SHARED_MEX), rebuilt)
    shipped = Path(__file__).resolve().parents[2] / "hipsense" / "exercises" / "recognition_model.json"
    assert rebuilt.read_bytes() == shipped.read_bytes()

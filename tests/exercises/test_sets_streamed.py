"""Sets are the same whether the tracker gets the samples in one batch or in pieces.

Where one set ends and the next begins is decided in one place (the tracker) from the times of
what happened — reps, rests, posture changes — never from where a chunk of samples happened to
end. Synthetic recordings (tests/synth.py, no accuracy claim) for every counted exercise with
holds longer than the rest that closes a set, and random chunkings of a real UCI session.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipsense.exercises.catalogue import get_exercise, load_catalogue
from hipsense.exercises.tracker import ExerciseTracker, TrackerOutput, TrackerSettings, track
from tests.synth import synthesize

COUNTED = [sid for sid, spec in load_catalogue().items() if spec.measure != "timed"]
LONG_HOLD_S = 25.0  # longer than TrackerSettings.set_rest_s: a hold is not a rest


def _long_hold_session(exercise_id: str, seed: int):
    """Two sets of three, 30 s apart; excursion exercises hold each rep 25 s with 6 s rests."""
    spec = get_exercise(exercise_id)
    excursion = spec.measure in ("reps", "holds")
    extra = {"hold_s": LONG_HOLD_S, "rest_s": 6.0} if excursion else {}
    data = synthesize(spec, seed=seed, rate_hz=50.0, reps=3, sets=2, rest_between_sets_s=30.0, **extra)
    return spec, data, TrackerSettings(hold_target_s=LONG_HOLD_S if excursion else None)


def _in_pieces(spec, settings, t, acc, gyr, sizes) -> TrackerOutput:
    """Push ``sizes[k]`` samples at a time (cycling through ``sizes``), then flush."""
    tracker = ExerciseTracker(spec, settings, has_gyro=gyr is not None)
    out = TrackerOutput()
    i = k = 0
    while i < len(t):
        n = sizes[k % len(sizes)]
        k += 1
        piece = tracker.push(t[i:i + n], acc[i:i + n], None if gyr is None else gyr[i:i + n])
        out.reps += piece.reps
        out.sets += piece.sets
        i += n
    tail = tracker.flush()
    out.reps += tail.reps
    out.sets += tail.sets
    return out


def _in_tenths(spec, settings, t, acc, gyr) -> TrackerOutput:
    """As the service feeds it: 0.1 s of samples at a time."""
    edges = np.searchsorted(t, np.arange(t[0], t[-1] + 0.1, 0.1))
    sizes = [int(n) for n in np.diff(np.append(edges, len(t)))]
    tracker = ExerciseTracker(spec, settings, has_gyro=gyr is not None)
    out = TrackerOutput()
    i = 0
    for n in sizes:
        piece = tracker.push(t[i:i + n], acc[i:i + n], gyr[i:i + n])
        out.reps += piece.reps
        out.sets += piece.sets
        i += n
    tail = tracker.flush()
    return TrackerOutput(out.reps + tail.reps, out.sets + tail.sets)


@pytest.mark.parametrize("exercise_id", COUNTED)
@pytest.mark.parametrize("seed", [1, 2])
def test_every_counted_exercise_gives_the_same_sets_streamed_or_batched(exercise_id, seed):
    spec, d, settings = _long_hold_session(exercise_id, seed)
    batch = track(spec, d.t_s, d.acc_ms2, d.gyr_rad_s, settings)
    streamed = _in_tenths(spec, settings, d.t_s, d.acc_ms2, d.gyr_rad_s)
    assert [s.reps for s in streamed.sets] == [s.reps for s in batch.sets]
    assert streamed.sets == batch.sets
    assert streamed.reps == batch.reps
    truth = [sum(1 for r in d.reps if r.set_index == k) for k in range(2)]
    if len(batch.reps) == len(d.reps) and spec.dose.sides != "alternating":
        # counted right, the sets are right too: a 25 s hold is not the rest between sets
        # (alternating exercises: the other leg's 25 s hold is a rest for this thigh)
        assert [s.reps for s in batch.sets] == truth


def test_the_stretch_of_the_issue_is_one_set_of_three():
    """Issue 10: hip flexor stretch, 30 s holds, 6 s rests: one set of 3, in 0.1 s chunks too."""
    spec = get_exercise("hip_flexor_stretch")
    d = synthesize(spec, seed=3, reps=3, hold_s=30.0, rest_s=6.0)
    batch = track(spec, d.t_s, d.acc_ms2, d.gyr_rad_s)
    streamed = _in_tenths(spec, TrackerSettings(), d.t_s, d.acc_ms2, d.gyr_rad_s)
    assert [s.reps for s in batch.sets] == [3]
    assert [s.reps for s in streamed.sets] == [3]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(min_value=0, max_value=80), min_size=1, max_size=10).filter(any))
def test_any_chunking_of_a_real_session_gives_identical_reps_and_sets(uci_s1_e3, sizes):
    t, acc, gyr = uci_s1_e3  # 3 blocks of 10 reps with rests between them
    spec = get_exercise("straight_leg_raise")
    tracker_settings = TrackerSettings(hold_target_s=5.0)
    batch = track(spec, t, acc, gyr, tracker_settings)
    pieces = _in_pieces(spec, tracker_settings, t, acc, gyr, sizes)
    assert [s.reps for s in batch.sets] == [10, 10, 10]
    assert pieces.reps == batch.reps
    assert pieces.sets == batch.sets


@settings(max_examples=4, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=6).filter(any),
       seed=st.sampled_from([1, 2]))
def test_any_chunking_of_long_holds_gives_identical_reps_and_sets(sizes, seed):
    spec, d, tracker_settings = _long_hold_session("clam_shells", seed)
    batch = track(spec, d.t_s, d.acc_ms2, d.gyr_rad_s, tracker_settings)
    pieces = _in_pieces(spec, tracker_settings, d.t_s, d.acc_ms2, d.gyr_rad_s, sizes)
    assert pieces.reps == batch.reps
    assert pieces.sets == batch.sets


def test_a_set_s_count_confidence_is_the_evaluation_s_streamed_or_batched():
    # the tracker keeps, rep by rep, what the confidence needs (the angle's spread in each gap
    # between reps), so the number the therapist gets is the one `hipsense eval mex` scores
    from pathlib import Path

    from hipsense.evaluation.mex import read_mex_file
    from hipsense.evaluation.mex_counts import count_recording
    from hipsense.exercises.confidence import CONFIDENT

    data = Path(__file__).resolve().parents[1] / "data" / "mex" / "act"
    seen = set()
    for name, exercise in (("07/02_act_1", "bridge"), ("10/03_act_1", "pelvic_tilt"), ("10/04_act_2", "clam_shells")):
        t, acc = read_mex_file(data / f"{name}.csv.gz")
        expected = count_recording(exercise, t, acc).confidence["confidence"]
        for chunk in (4, 37, len(t)):
            tr = ExerciseTracker(get_exercise(exercise), TrackerSettings(), has_gyro=False)
            sets = [s for a in range(0, len(t), chunk) for s in tr.push(t[a:a + chunk], acc[a:a + chunk]).sets]
            sets += tr.flush().sets
            assert len(sets) == 1
            assert sets[0].count_confidence == pytest.approx(expected, abs=1e-4), (name, chunk)
        seen.add(expected >= CONFIDENT)
    assert seen == {True, False}  # a clear set and sets the thigh barely shows


@pytest.mark.parametrize("rest_between_sets_s", [22.0, 25.0, 35.0])
def test_sets_of_one_small_rep_are_the_same_streamed_or_batched(rest_between_sets_s):
    # a first rep below the exercise's usual range waits for the second (signal/reps.py); with
    # sets of one it is emitted only after a wait, long after samples past its end were watched
    # for rest. The tracker watches them again as if it had come on time: before, streamed,
    # the wait delayed the set's rest and the next set's rep joined it ([2, 1] against [1, 1, 1])
    spec = get_exercise("straight_leg_raise")
    data = synthesize(spec, seed=1, rate_hz=50.0, reps=1, sets=3, rest_between_sets_s=rest_between_sets_s, rom_deg=20.0)
    settings = TrackerSettings()
    batch = track(spec, data.t_s, data.acc_ms2, data.gyr_rad_s, settings)
    streamed = _in_pieces(spec, settings, data.t_s, data.acc_ms2, data.gyr_rad_s, [5])
    assert [s.reps for s in batch.sets] == [1, 1, 1]
    assert [(s.reps, s.start_t_s, s.end_t_s) for s in streamed.sets] == [(s.reps, s.start_t_s, s.end_t_s) for s in batch.sets]
    assert [s.decided_t_s for s in streamed.sets] == pytest.approx([s.decided_t_s for s in batch.sets])


STARTS_AT_REST = [sid for sid, spec in load_catalogue().items() if spec.measure == "reps" and not spec.motion.bidirectional]


@pytest.mark.parametrize("exercise_id", STARTS_AT_REST)
@pytest.mark.parametrize("seed", [1, 2])
def test_a_recording_that_starts_just_before_the_first_raise_counts_every_rep(exercise_id, seed):
    """Issue 10's failure mode 1, on the synthetic generator (no accuracy claim): a recording
    that starts 0.2 s before the first raise, two sets 30 s apart. The first still spell long
    enough for a rest may be the first hold; the rest between the sets shows which pose is the
    rest, and the first set is read from there. (On the counter of the morning of 2026-12-03,
    14 of these 32 lost a rep.)"""
    spec = get_exercise(exercise_id)
    d = synthesize(spec, seed=seed, rate_hz=50.0, sets=2, rest_between_sets_s=30.0, lead_s=0.2)
    out = track(spec, d.t_s, d.acc_ms2, d.gyr_rad_s, TrackerSettings())
    assert len(out.reps) == len(d.reps)
    assert [s.reps for s in out.sets] == [sum(1 for r in d.reps if r.set_index == k) for k in range(2)]

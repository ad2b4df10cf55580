"""The independent hold reference (gyroscope lobes, offline) on signals whose holds are known,
and on a real UCI session (tests/data/uci-pt, see its README for the citation)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from hipsense.evaluation.hold_reference import ENDED_DPS, reference_reps, split_reference_blocks
from hipsense.evaluation.uci import evaluate_uci, read_uci_file

FS = 25.0
G = 9.81


def _leg(segments, fs=FS, gyro_sign=1.0, noise=0.0, seed=0, start_deg=0.0):
    """A UCI-like thigh unit (x along the thigh to the knee, turning about z): ``segments`` is
    a list of (kind, seconds, degrees): "rest"/"hold" keep the angle, "move" goes by
    ``degrees`` with a raised-cosine speed profile. Returns t, acc, gyr and each move's
    (start, first-below-15-°/s-at-end, last-above..., end) times for the truth."""
    theta, moves = [start_deg], []
    for kind, dur, deg in segments:
        n = int(round(dur * fs))
        if kind == "move":
            u = np.arange(1, n + 1) / n
            t0 = len(theta) / fs
            theta += list(theta[-1] + deg * (1 - np.cos(np.pi * u)) / 2)
            # the speed profile deg·π/(2T)·sin(πu) is above the lobe's threshold (15 °/s, or
            # half the peak for a slower lobe) between u0 and 1 − u0
            peak = abs(deg) * math.pi / (2 * dur)
            u0 = math.asin(min(ENDED_DPS, peak / 2) / peak) / math.pi
            moves.append((t0, dur, u0))
        else:
            theta += [theta[-1]] * n
    th = np.radians(np.array(theta))
    t = np.arange(len(th)) / fs
    rng = np.random.default_rng(seed)
    acc = G * np.column_stack([np.sin(th), np.cos(th), np.zeros_like(th)]) + rng.normal(0, noise, (len(th), 3))
    gyr = np.column_stack([np.zeros_like(th), np.zeros_like(th), gyro_sign * np.gradient(th, t)])
    return t, acc, gyr, moves


def _truth_holds(moves):
    """Reference hold of each (raise, lower) pair of moves, from the analytic speed profile."""
    out = []
    for (r0, rd, ru), (l0, ld, lu) in zip(moves[0::2], moves[1::2]):
        out.append((l0 + lu * ld) - (r0 + (1 - ru) * rd))
    return out


def _session(holds, amp=40.0, move_s=1.2, rest_s=3.0):
    segs = [("rest", 2.0, 0)]
    for h in holds:
        segs += [("move", move_s, amp), ("hold", h, 0), ("move", move_s, -amp), ("rest", rest_s, 0)]
    return segs


@pytest.mark.parametrize("gyro_sign", [1.0, -1.0])
def test_holds_are_the_time_between_the_lobes(gyro_sign):
    holds = [2.0, 3.0, 4.0, 5.0, 2.5, 4.5]
    t, acc, gyr, moves = _leg(_session(holds), gyro_sign=gyro_sign, noise=0.02)
    reps = reference_reps(t, acc, gyr, FS)
    assert len(reps) == len(holds)
    for got, want in zip(reps, _truth_holds(moves)):
        assert got.hold_s == pytest.approx(want, abs=0.12)
        assert got.rise_deg == pytest.approx(40.0, rel=0.1)


def test_an_overshoot_settling_back_is_part_of_the_raise():
    segs = [("rest", 2.0, 0)]
    for _ in range(4):  # fast raise past the target, settle 8° back at once, hold 3 s, lower
        segs += [("move", 0.5, 48.0), ("move", 0.4, -8.0), ("hold", 3.0, 0), ("move", 1.2, -40.0),
                 ("rest", 3.0, 0)]
    t, acc, gyr, moves = _leg(segs)
    reps = reference_reps(t, acc, gyr, FS)
    assert len(reps) == 4
    for k, rep in enumerate(reps):
        settle, lower = moves[3 * k + 1], moves[3 * k + 2]
        settle_end = settle[0] + (1 - settle[2]) * settle[1]
        lower_start = lower[0] + lower[2] * lower[1]
        assert rep.hold_s == pytest.approx(lower_start - settle_end, abs=0.12)


def test_a_recording_that_starts_in_a_hold_is_not_read_upside_down():
    # the first thing in the recording is the end of a hold, then its lowering
    segs = [("hold", 0.5, 0), ("move", 1.2, -40.0), *_session([3.0, 3.0, 3.0])]
    t, acc, gyr, moves = _leg(segs, start_deg=40.0)
    reps = reference_reps(t, acc, gyr, FS)
    assert len(reps) == 3
    assert [r.hold_s for r in reps] == pytest.approx(_truth_holds(moves[1:]), abs=0.12)


def test_a_slow_raise_is_timed_at_half_its_peak_speed():
    # 10° over 1.2 s peaks at 13 °/s (UCI e1's seated raise is like that): never 15 °/s
    t, acc, gyr, moves = _leg(_session([3.0, 4.0, 3.5], amp=10.0))
    reps = reference_reps(t, acc, gyr, FS)
    assert [r.hold_s for r in reps] == pytest.approx(_truth_holds(moves), abs=0.12)


def test_a_drift_slower_than_a_movement_gives_no_reference():
    # 5° over 2 s peaks at 4 °/s: a held leg's sag, not a raise; nothing is guessed
    t, acc, gyr, _ = _leg(_session([3.0, 3.0, 3.0], amp=5.0, move_s=2.0))
    assert reference_reps(t, acc, gyr, FS) == []


def test_blocks_by_order_or_by_the_two_longest_rests():
    t, acc, gyr, _ = _leg(_session([3.0] * 4, rest_s=2.0) + [("rest", 15.0, 0)] + _session([0.3] * 4, rest_s=2.0)
                          + [("rest", 15.0, 0)] + _session([3.0] * 3, amp=20.0, rest_s=2.0))
    correct, fast, low = split_reference_blocks(reference_reps(t, acc, gyr, FS))
    assert (len(correct), len(fast), len(low)) == (4, 4, 3)
    assert statistics.median(r.rise_deg for r in low) < 0.6 * statistics.median(r.rise_deg for r in correct)


def test_real_session_gives_the_documented_reference(uci_dir):
    # evaluation.md: the reference median for s1 is about 4.8 s
    t, acc, gyr = read_uci_file(uci_dir / "s1" / "e3" / "u3" / "test.txt.gz")
    correct, _fast, _low = split_reference_blocks(reference_reps(t, acc, gyr, 25.0))
    assert 8 <= len(correct) <= 12
    assert 4.5 <= statistics.median(r.hold_s for r in correct) <= 5.1


def test_uci_report_carries_the_hold_reference(uci_dir):
    report = evaluate_uci(uci_dir)
    assert {k: v["sets"] for k, v in report["by_subject"].items()} == {"s1": 3, "s2": 1}
    s = report["summary"]
    assert set(s["hold_reference_median_by_subject_s"]) >= {"s1"}
    assert s["hold_error_median_s"] is not None and s["hold_reference_reps_matched"] >= 5
    assert s["low_amplitude_reps_seen"] >= s["low_amplitude_visibly_smaller"] >= 0


def test_a_counted_rep_is_matched_to_the_hold_it_contains():
    from hipsense.evaluation.hold_reference import ReferenceRep
    from hipsense.evaluation.uci import match_holds

    refs = [ReferenceRep(12.2, 13.4, 16.2, 17.1, 40.0), ReferenceRep(19.2, 20.3, 22.9, 23.8, 40.0)]
    # the counter's reps start where the previous one ended: midpoints 1.2 s off, same holds
    detected = [(5.2, 9.9), (10.2, 16.8), (17.1, 23.5)]
    assert sorted(match_holds(detected, refs)) == [(1, 0), (2, 1)]
    assert match_holds([(0.0, 12.0)], refs) == []

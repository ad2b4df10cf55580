"""The count confidence: reps that look like a repeated movement, above the rest fluctuation."""

from __future__ import annotations

import numpy as np
import pytest

from hipsense.exercises.confidence import CONFIDENT, count_confidence

RATE = 100.0


def _set(roms, period_s=4.0, rep_s=2.0, noise_deg=0.2, seed=0, periods=None):
    """Square-ish excursions of the given heights on a noisy rest; returns reps and the trace."""
    rng = np.random.default_rng(seed)
    periods = periods or [period_s] * len(roms)
    starts = np.concatenate([[1.0], 1.0 + np.cumsum(periods[:-1])])
    t = np.arange(0, starts[-1] + periods[-1] + 1, 1 / RATE)
    angle = rng.normal(0, noise_deg, len(t))
    for s, h in zip(starts, roms):
        angle[(t >= s) & (t < s + rep_s)] += h
    return list(starts), list(starts + rep_s), list(roms), t, angle


def test_a_regular_set_well_above_the_noise_is_confident():
    c = count_confidence(*_set([10, 11, 10, 9.5, 10.5, 10]))
    assert c.confident and c.confidence > 0.8
    assert c.noise_deg == pytest.approx(0.2, rel=0.2)


def test_reps_barely_above_the_rest_sway_are_not():
    c = count_confidence(*_set([1.0, 1.1, 0.9, 1.0, 1.0], noise_deg=0.3))
    assert c.detectability < 0.1 and not c.confident


def test_irregular_amplitudes_or_tempo_are_not():
    amp = count_confidence(*_set([10, 2, 8, 1.5, 12, 3, 9]))
    assert amp.amplitude_consistency < 0.3 and not amp.confident
    tempo = count_confidence(*_set([10] * 6, periods=[3, 9, 2.5, 12, 3, 4]))
    assert tempo.tempo_consistency < 0.3 and not tempo.confident


def test_too_few_reps_show_no_pattern():
    c = count_confidence(*_set([20, 20]))
    assert c.confidence == 0.0 and not c.confident


def test_alternating_sides_are_judged_per_side():
    args = _set([30, 12, 31, 11, 30, 12, 29, 12])
    assert not count_confidence(*args).confident
    assert count_confidence(*args, alternating=True).confidence >= CONFIDENT


def test_regular_humps_at_the_counters_smallest_rep_are_not_trusted():
    # half-degree humps on a very quiet sensor: detectable and regular, but no bigger than
    # the leg settling the counter refuses to count below 1.8°
    args = _set([2.0, 2.1, 1.9, 2.0, 2.0, 2.1], noise_deg=0.02)
    assert count_confidence(*args).confident  # without the bar they would pass
    c = count_confidence(*args, min_rom_deg=1.8)
    assert c.size < 0.2 and not c.confident
    assert count_confidence(*_set([10, 11, 10, 9.5, 10.5]), min_rom_deg=1.8).size == 1.0


def test_a_long_gap_is_judged_on_its_last_window_only():
    # the tracker keeps a bounded trace, so the evaluation judges a gap the same way: a 40 s gap
    # whose first 10 s the leg was still settling (wild) and whose last 30 s were quiet
    from hipsense.exercises.confidence import GAP_WINDOW_S, gap_spread

    rng = np.random.default_rng(0)
    t = np.arange(0.0, 40.0, 0.02)
    angle = np.where(t < 40.0 - GAP_WINDOW_S, rng.normal(0.0, 5.0, t.size), rng.normal(0.0, 0.2, t.size))
    quiet = gap_spread(t, angle, 40.0 - GAP_WINDOW_S, 40.0)
    assert gap_spread(t, angle, 0.0, 40.0) == quiet
    assert quiet.all_deg == pytest.approx(0.2, rel=0.15)
    assert quiet.still_deg == pytest.approx(0.2, rel=0.15)  # 0.2 deg of noise is not movement


def _rolls(pause_s: float, n: int = 10, noise_deg: float = 0.3, seed: int = 1):
    """Side-to-side rolls, one after the other (each 25 deg up from the middle and back, 2 s),
    with ``pause_s`` still at the middle between them; the counter's reps end half-way down."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, n * (2.0 + pause_s) + 1.0, 1 / RATE)
    angle = rng.normal(0.0, noise_deg, t.size)
    starts = 0.5 + np.arange(n) * (2.0 + pause_s)
    for s in starts:
        k = (t >= s) & (t < s + 2.0)
        angle[k] += 25.0 * np.sin(np.pi * (t[k] - s) / 2.0)
    ends = starts + 2.0 - 2.0 / 6.0  # sin = 1/2 on the way down
    return list(starts), list(ends), [25.0] * n, t, angle


def test_the_rest_noise_is_the_still_moments_between_reps_not_the_lowering_tails():
    # knee rolling with a 0.4 s pause at the middle: each gap is the lower half of a lowering,
    # the pause and the start of the next raise. The noise floor is the pause's 0.3 deg, not
    # the 12 deg the tails sweep (MEx 02/01 and 10/01, counted exactly, read "not sure")
    c = count_confidence(*_rolls(pause_s=0.4), alternating=True)
    assert c.noise_deg == pytest.approx(0.3, rel=0.5)
    assert c.detectability == 1.0 and c.confident
    # no still moment between any two rolls: judged on the whole gaps, as before
    c = count_confidence(*_rolls(pause_s=0.0), alternating=True)
    assert c.noise_deg > 3.0 and c.detectability < 0.5

"""The hold countdown kernels: what is said and when, and the same for any chunking."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hipsense.signal.countdown import (
    CountdownSettings,
    LiveHoldSettings,
    countdown_init,
    countdown_step,
    live_hold_init,
    live_hold_step,
)


def _raise_hold_lower(hold_s: float, fs: float = 50.0) -> tuple[np.ndarray, np.ndarray]:
    """Rest 2 s, raise to 30° in 1 s, hold ``hold_s``, lower in 1 s, rest 3 s."""
    t = np.arange(0, 2 + 1 + hold_s + 1 + 3, 1 / fs)
    up = np.clip(t - 2.0, 0, 1)
    down = np.clip(t - (3.0 + hold_s), 0, 1)
    smooth = lambda u: u**3 * (10 - 15 * u + 6 * u**2)  # noqa: E731 (minimum jerk)
    angle = 30.0 * (smooth(up) - smooth(down))
    return t, angle + np.random.default_rng(0).normal(0, 0.3, len(t))


def _run(t, angle, target_s, sizes):
    hold_s, cd_s = LiveHoldSettings(), CountdownSettings(target_s)
    hold, cd = live_hold_init(hold_s), countdown_init(cd_s)
    cues, remaining = [], []
    i = k = 0
    while i < len(t):
        n = sizes[k % len(sizes)]
        k += 1
        hold, starts = live_hold_step(hold_s, hold, t[i:i + n], angle[i:i + n])
        cd, out = countdown_step(cd_s, cd, t[i:i + n], starts)
        cues += out.cues
        remaining.append(out.remaining_s)
        i += n
    return cues, np.concatenate(remaining)


def test_a_held_raise_counts_down_from_five_to_relax():
    t, angle = _raise_hold_lower(hold_s=8.0)
    cues, remaining = _run(t, angle, 6.0, [5])
    assert [c.seconds_left for c in cues] == [5, 4, 3, 2, 1, 0]
    start = cues[0].hold_start_t_s
    assert 2.8 < start < 3.1  # the leg is within 1.5° of the top at 2.88 s, there at 3.0 s
    for cue in cues:  # each number when that many whole seconds are left
        assert math.isclose(6.0 - (cue.t_s - start), cue.seconds_left, abs_tol=0.03)
    held = remaining[~np.isnan(remaining)]
    assert held.max() <= 6.0 and held.min() == 0.0
    assert np.isnan(remaining[t < 2.5]).all() and np.isnan(remaining[t > 12.5]).all()  # at rest


def test_lowering_early_stops_the_count_without_relax():
    t, angle = _raise_hold_lower(hold_s=2.0)  # lowered from 5.0 s: 2 s of the 5 left
    cues, _ = _run(t, angle, 5.0, [7])
    assert [c.seconds_left for c in cues] == [5, 4, 3]


def test_rest_never_counts_down():
    t = np.arange(0, 20, 0.02)
    angle = np.random.default_rng(1).normal(0, 0.5, len(t))
    cues, remaining = _run(t, angle, 5.0, [3])
    assert cues == [] and np.isnan(remaining).all()


@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=90), min_size=1, max_size=8).filter(any))
def test_any_chunking_gives_the_same_cues_and_times(sizes):
    t, angle = _raise_hold_lower(hold_s=7.0)
    cues, remaining = _run(t, angle, 5.0, [len(t)])
    chunked_cues, chunked_remaining = _run(t, angle, 5.0, sizes)
    assert chunked_cues == cues
    np.testing.assert_array_equal(chunked_remaining, remaining)

"""Streaming and batch are the same code: any chunking of a real recording gives identical
events, down to the last bit (chunks of 0 and 1 samples included)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hipsense.signal.pipeline import ThighPipeline, run_pipeline


def _chunked(t, acc, gyr, sizes):
    p = ThighPipeline(has_gyro=gyr is not None)
    reps, rests, gaps, angles = [], [], [], []
    i = 0
    k = 0
    while i < len(t):
        n = sizes[k % len(sizes)]
        k += 1
        out = p.push(t[i : i + n], acc[i : i + n], None if gyr is None else gyr[i : i + n])
        reps += out.reps
        rests += out.rests
        gaps += out.gaps
        angles.append(out.angle_deg)
        i += n
    tail = p.flush()
    return reps + tail.reps, rests, gaps, np.concatenate(angles)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=12).filter(any))
def test_any_chunking_gives_identical_events(uci_s1_e3, sizes):
    t, acc, gyr = uci_s1_e3
    t, acc, gyr = t[:1500], acc[:1500], gyr[:1500]  # 60 s: rest, 10 reps with holds
    batch = run_pipeline(t, acc, gyr)
    reps, rests, gaps, angles = _chunked(t, acc, gyr, sizes)
    assert len(batch.reps) >= 8
    assert reps == batch.reps
    assert rests == batch.rests
    assert gaps == batch.gaps
    np.testing.assert_array_equal(angles, batch.angle_deg)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=8).filter(any),
    seed=st.integers(0, 2**31),
)
def test_chunking_with_irregular_times_and_gaps(uci_s1_e3, sizes, seed):
    rng = np.random.default_rng(seed)
    t, acc, gyr = uci_s1_e3
    t, acc, gyr = t[:2000].copy(), acc[:2000], gyr[:2000]
    t += rng.uniform(-0.01, 0.01, len(t))  # jitter (keeps order: samples are 40 ms apart)
    keep = rng.random(len(t)) > 0.05  # lost packets
    keep[800:830] = False  # and a 1.2 s gap
    t, acc, gyr = t[keep], acc[keep], gyr[keep]
    batch = run_pipeline(t, acc, gyr)
    reps, _, gaps, angles = _chunked(t, acc, gyr, sizes)
    assert reps == batch.reps
    assert gaps == batch.gaps and len(gaps) >= 1
    np.testing.assert_array_equal(angles, batch.angle_deg)


def test_accelerometer_only_chunking(uci_s1_e3):
    t, acc, _ = uci_s1_e3
    batch = run_pipeline(t[:2000], acc[:2000], None)
    reps, _, _, _ = _chunked(t[:2000], acc[:2000], None, [1, 0, 7, 25])
    assert reps == batch.reps and len(reps) >= 8


def test_non_finite_samples_are_dropped_not_spread(uci_s1_e3):
    t, acc, gyr = uci_s1_e3
    t, acc, gyr = t[:1500].copy(), acc[:1500].copy(), gyr[:1500].copy()
    clean = run_pipeline(t, acc, gyr)
    acc[300, 1] = np.nan
    gyr[700, 0] = np.inf
    t[900] = np.nan
    p = ThighPipeline()
    out = p.push(t, acc, gyr)
    assert out.n_invalid == 3
    assert np.isfinite(out.g_sf).all()
    assert len(out.reps) == len(clean.reps)

"""Cycles, impacts and steps kernels: streaming == batch, and their physics."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hipsense.exercises.catalogue import get_exercise
from hipsense.signal.cycles import CycleSettings, count_cycles, count_cycles_init, count_cycles_step, count_cycles_flush
from hipsense.signal.impacts import ImpactSettings, detect_impacts, detect_impacts_init, detect_impacts_step
from hipsense.signal.pipeline import run_pipeline
from hipsense.signal.steps import StepSettings, count_steps, count_steps_init, count_steps_step
from tests.synth import synthesize

G = 9.80665


def _circles(n_turns: float, direction: int, fs: float = 50.0, radius_deg: float = 12.0):
    t = np.arange(0, n_turns * 1.5, 1 / fs)  # 1.5 s a circle
    phase = direction * 2 * np.pi * t / 1.5
    r = np.radians(radius_deg)
    g = np.column_stack([np.sin(r) * np.cos(phase), np.sin(r) * np.sin(phase), np.full_like(t, np.cos(r))])
    return t, g


def test_circles_are_counted_with_their_direction():
    for direction in (1, -1):
        t, g = _circles(6.0, direction)
        out = count_cycles(CycleSettings(), t, g)
        assert [c.direction for c in out.cycles] == [direction] * 6
        assert all(abs(c.radius_deg - 12.0) < 1.5 for c in out.cycles[1:])


def test_a_wobble_back_and_forth_is_not_a_circle():
    fs = 50.0
    t = np.arange(0, 20, 1 / fs)
    a = np.radians(10) * np.sin(2 * np.pi * t / 1.5)
    g = np.column_stack([np.sin(a), np.zeros_like(a), np.cos(a)])
    assert count_cycles(CycleSettings(), t, g).cycles == []


@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(0, 30), min_size=1, max_size=6).filter(any))
def test_cycles_streaming_equals_batch(sizes):
    t, g = _circles(4.3, 1)
    batch = count_cycles(CycleSettings(), t, g).cycles
    s = CycleSettings()
    state = count_cycles_init(s)
    got, i, k = [], 0, 0
    while i < len(t):
        n = sizes[k % len(sizes)]
        k += 1
        state, out = count_cycles_step(s, state, t[i : i + n], g[i : i + n])
        got += out.cycles
        i += n
    got += count_cycles_flush(s, state).cycles
    assert got == batch


def _jumps(with_flight: bool):
    fs = 200.0
    t = np.arange(0, 10, 1 / fs)
    norm = np.ones_like(t)
    for k in range(5):
        t0 = 1.0 + 1.5 * k
        if with_flight:
            norm[(t >= t0) & (t < t0 + 0.3)] = 0.05  # flight: near free fall
        norm[(t >= t0 + 0.3) & (t < t0 + 0.33)] = 4.0  # landing spike
    return t, np.column_stack([np.zeros_like(t), np.zeros_like(t), norm * G])


def test_landings_after_a_flight_are_impacts_stamps_are_not():
    t, acc = _jumps(True)
    assert len(detect_impacts(ImpactSettings(), t, acc).impacts) == 5
    t, acc = _jumps(False)
    assert detect_impacts(ImpactSettings(), t, acc).impacts == []
    assert len(detect_impacts(ImpactSettings(require_flight=False), t, acc).impacts) == 5


@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(0, 50), min_size=1, max_size=6).filter(any))
def test_impacts_streaming_equals_batch(sizes):
    t, acc = _jumps(True)
    batch = detect_impacts(ImpactSettings(), t, acc).impacts
    s = ImpactSettings()
    state = detect_impacts_init(s)
    got, i, k = [], 0, 0
    while i < len(t):
        n = sizes[k % len(sizes)]
        k += 1
        state, out = detect_impacts_step(s, state, t[i : i + n], acc[i : i + n])
        got += out.impacts
        i += n
    assert got == batch and len(got) == 5


@settings(max_examples=5, deadline=None)
@given(sizes=st.lists(st.integers(0, 30), min_size=1, max_size=6).filter(any))
def test_steps_streaming_equals_batch(sizes):
    d = synthesize(get_exercise("monster_walks"), seed=3, rate_hz=50)
    p = run_pipeline(d.t_s, d.acc_ms2, d.gyr_rad_s)
    batch = count_steps(StepSettings(), p.t_s, p.speed_dps).steps
    assert len(batch) == len(d.reps)
    s = StepSettings()
    state = count_steps_init(s)
    got, i, k = [], 0, 0
    while i < len(p.t_s):
        n = sizes[k % len(sizes)]
        k += 1
        state, out = count_steps_step(s, state, p.t_s[i : i + n], p.speed_dps[i : i + n])
        got += out.steps
        i += n
    assert got == batch
